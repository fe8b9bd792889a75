//! TLS on the server's own listener (feature `tls`): `https` negotiate and long polling, `wss`
//! WebSockets, with rustls (and its `ring` provider). ALPN offers HTTP/2 and HTTP/1.1; WebSocket
//! upgrades use HTTP/1.1.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use hub_server::{HubMethods, HubServer, TlsConfig};
//!
//! HubServer::builder()
//!     .hub("/chat", HubMethods::new())
//!     .tls(TlsConfig::from_pem_files("cert.pem", "key.pem")?)
//!     .bind(("0.0.0.0", 443))
//!     .await?
//!     .serve()
//!     .await?;
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// The certificate and key a server presents (or a whole rustls configuration).
#[derive(Clone)]
pub struct TlsConfig {
    pub(crate) acceptor: TlsAcceptor,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key is a secret: never printed.
        f.write_str("TlsConfig(..)")
    }
}

/// Why a TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The certificate PEM holds no certificate, or one that does not parse.
    #[error("no usable certificate in the certificate PEM ({0}): give the server's certificate first, then its chain")]
    Certificate(String),
    /// The key PEM holds no private key rustls reads (PKCS#8, PKCS#1 or SEC1).
    #[error(
        "no usable private key in the key PEM ({0}): give a PKCS#8, PKCS#1 (RSA) or SEC1 (EC) key"
    )]
    PrivateKey(String),
    /// rustls refused the pair (e.g. the key does not match the certificate).
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(#[source] rustls::Error),
}

impl TlsConfig {
    /// A configuration from a PEM certificate chain (the server's certificate first) and a PEM
    /// private key.
    pub fn from_pem(cert_chain: &[u8], private_key: &[u8]) -> Result<Self, TlsError> {
        let certs = CertificateDer::pem_slice_iter(cert_chain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| TlsError::Certificate(error.to_string()))?;
        if certs.is_empty() {
            return Err(TlsError::Certificate("none found".to_owned()));
        }
        let key = PrivateKeyDer::from_pem_slice(private_key)
            .map_err(|error| TlsError::PrivateKey(error.to_string()))?;
        // ring, not rustls's newer default aws-lc-rs: it builds with a C compiler alone (no
        // cmake). rustls 0.23.48 deprecates ring's provider because it offers no post-quantum
        // key exchange; `from_rustls` takes a configuration on any provider.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(TlsError::Config)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self::from_rustls(Arc::new(config)))
    }

    /// A configuration from a PEM certificate chain file and a PEM private key file.
    pub fn from_pem_files(
        cert_chain: impl AsRef<Path>,
        private_key: impl AsRef<Path>,
    ) -> Result<Self, TlsError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                path: path.to_owned(),
                source,
            })
        };
        Self::from_pem(&read(cert_chain.as_ref())?, &read(private_key.as_ref())?)
    }

    /// A configuration of your own (client certificates, session resumption, another crypto
    /// provider…). Set its ALPN protocols to `h2` and `http/1.1` (or `http/1.1` alone).
    pub fn from_rustls(config: Arc<rustls::ServerConfig>) -> Self {
        TlsConfig {
            acceptor: TlsAcceptor::from(config),
        }
    }
}
