//! TLS on the server's own listener (feature `tls`): negotiate over https and a hub connection
//! over wss with a certificate made by openssl for the test; a client speaking plain HTTP to the
//! TLS port is dropped without disturbing the server; bad PEM gives the errors that say what to
//! give.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::{test_hub, TIMEOUT};
use futures_util::{SinkExt, StreamExt};
use hub_server::{HubConfig, HubEndpoint, HubServer, TlsConfig, TlsError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;

/// A certificate for `localhost` and 127.0.0.1 and its key (paths), signed by a CA made for the
/// test ([`ca_of`]), in a temp dir.
fn certificate() -> (PathBuf, PathBuf) {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("hub-tls-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl runs (Debian's openssl package)");
        assert!(status.success(), "openssl {args:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-days",
                "1",
                "-subj",
                "/CN=hub test CA",
                "-keyout",
                "ca-key.pem",
                "-out",
                "ca.pem",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-subj",
                "/CN=localhost",
                "-keyout",
                "key.pem",
                "-out",
                "server.csr",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "server.ext",
        "-out",
        "cert.pem",
    ]);
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// The CA that signed [`certificate`]'s certificate.
fn ca_of(cert: &Path) -> PathBuf {
    cert.with_file_name("ca.pem")
}

async fn tls_server(cert: &Path, key: &Path) -> SocketAddr {
    let server = HubServer::builder()
        .endpoint(
            "/hub",
            HubEndpoint::new(test_hub()).config(HubConfig::new()),
        )
        .tls(TlsConfig::from_pem_files(cert, key).unwrap())
        .shutdown_on_signal(false)
        .bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = server.local_addr();
    tokio::spawn(server.serve());
    addr
}

/// A TLS connection to `addr` trusting only the CA that signed `cert`.
async fn connect_tls(addr: SocketAddr, cert: &Path) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_of(cert)).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(addr).await.unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_negotiate_and_a_wss_hub_connection() {
    let (cert, key) = certificate();
    let addr = tls_server(&cert, &key).await;

    // Negotiate over https.
    let mut stream = connect_tls(addr, &cert).await;
    stream
        .write_all(
            b"POST /hub/negotiate?negotiateVersion=1 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut response))
        .await
        .unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let body = &response[response.find("\r\n\r\n").unwrap() + 4..];
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    let token = json["connectionToken"].as_str().unwrap();

    // The hub over wss: handshake, then an invocation.
    let stream = connect_tls(addr, &cert).await;
    let url = format!("wss://localhost:{}/hub?id={token}", addr.port());
    let (mut ws, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::client_async(url, stream))
        .await
        .unwrap()
        .unwrap();
    ws.send(Message::text("{\"protocol\":\"json\",\"version\":1}\u{1e}"))
        .await
        .unwrap();
    let handshake = tokio::time::timeout(TIMEOUT, ws.next()).await.unwrap();
    assert_eq!(handshake.unwrap().unwrap().into_text().unwrap(), "{}\u{1e}");
    ws.send(Message::text(
        "{\"type\":1,\"invocationId\":\"1\",\"target\":\"Echo\",\"arguments\":[\"over tls\"]}\u{1e}",
    ))
    .await
    .unwrap();
    loop {
        let frame = tokio::time::timeout(TIMEOUT, ws.next()).await.unwrap();
        let text = frame.unwrap().unwrap().into_text().unwrap();
        if text.contains("\"type\":3") {
            assert!(text.contains("\"result\":\"over tls\""), "{text}");
            break;
        }
    }

    // Plain HTTP to the TLS port: that connection is dropped, the server serves on.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"POST /hub/negotiate HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut ignored = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, plain.read_to_end(&mut ignored)).await;
    assert!(!String::from_utf8_lossy(&ignored).contains("200 OK"));
    let mut again = connect_tls(addr, &cert).await;
    again
        .write_all(b"POST /hub/negotiate?negotiateVersion=1 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, again.read_to_end(&mut response)).await;
    assert!(String::from_utf8_lossy(&response).starts_with("HTTP/1.1 200"));
}

#[test]
fn bad_pem_says_what_to_give() {
    let (cert, key) = certificate();
    let cert_pem = std::fs::read(&cert).unwrap();
    let key_pem = std::fs::read(&key).unwrap();
    assert!(matches!(
        TlsConfig::from_pem(b"not a certificate", &key_pem),
        Err(TlsError::Certificate(_))
    ));
    assert!(matches!(
        TlsConfig::from_pem(&cert_pem, b"not a key"),
        Err(TlsError::PrivateKey(_))
    ));
    // The certificate given as its own key.
    assert!(TlsConfig::from_pem(&cert_pem, &cert_pem).is_err());
    let missing = TlsConfig::from_pem_files("/nonexistent/cert.pem", &key);
    assert!(
        matches!(&missing, Err(TlsError::Read { path, .. }) if path.ends_with("cert.pem")),
        "{missing:?}"
    );
    TlsConfig::from_pem(&cert_pem, &key_pem).unwrap();
}
