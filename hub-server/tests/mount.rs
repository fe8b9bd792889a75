//! The hub service mounted inside an application's own hyper server, next to its routes.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use common::{http, negotiate_token, result, test_hub, WsClient, PATH};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hub_server::protocol::Protocol;
use hub_server::{HubConfig, HubServer, HubService, ResponseBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// The application: `GET /hello` itself, hub paths to the hub service, 404 for the rest.
async fn app(
    hubs: HubService,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let path = request.uri().path();
    if path == "/hello" && request.method() == Method::GET {
        return Ok(Response::new(
            Full::new(Bytes::from_static(b"hello")).boxed(),
        ));
    }
    if hubs.matches(path) {
        return hyper::service::Service::call(&hubs, request).await;
    }
    let mut response = Response::new(Full::new(Bytes::from_static(b"app 404")).boxed());
    *response.status_mut() = StatusCode::NOT_FOUND;
    Ok(response)
}

/// Serves `app` on a listener of our own; returns its address.
async fn serve_app(hubs: HubService) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let hubs = hubs.clone();
            let service = service_fn(move |request| app(hubs.clone(), request));
            tokio::spawn(async move {
                let builder = auto::Builder::new(TokioExecutor::new());
                let _ = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_routes_and_hubs_share_one_port() {
    let hubs = HubServer::builder()
        .hub(PATH, test_hub())
        .config(HubConfig::new())
        .into_service()
        .unwrap();
    assert!(hubs.matches("/hub"));
    assert!(hubs.matches("/HUB/negotiate"));
    assert!(!hubs.matches("/hello"));
    let context = hubs.hub_context(PATH).expect("the hub's context");
    let addr = serve_app(hubs).await;

    let (status, _, body) = http(addr, Method::GET, "/hello", &[], b"").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], b"hello");
    let (status, _, body) = http(addr, Method::GET, "/elsewhere", &[], b"").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(&body[..], b"app 404");

    let token = negotiate_token(addr, PATH).await;
    let mut client = WsClient::connect(addr, &format!("{PATH}?id={token}")).await;
    client.handshake(Protocol::Json).await;
    client.invoke("1", "Echo", ("mounted",)).await;
    assert_eq!(
        result::<String>(&client.expect_completion("1").await),
        "mounted"
    );
    assert_eq!(context.connection_count().await.unwrap(), 1);

    // The app's route still answers while the hub connection is open.
    let (status, _, body) = http(addr, Method::GET, "/hello", &[], b"").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], b"hello");
    client.echo_works("still mounted").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_is_a_tower_service_and_answers_unknown_paths_with_404() {
    fn assert_tower<S: tower_service::Service<Request<Full<Bytes>>>>(_: &S) {}
    let hubs = HubServer::builder()
        .hub(PATH, test_hub())
        .into_service()
        .unwrap();
    assert_tower(&hubs);
    let mut tower = hubs.clone();
    std::future::poll_fn(|cx| {
        tower_service::Service::<Request<Full<Bytes>>>::poll_ready(&mut tower, cx)
    })
    .await
    .unwrap();
    let response = tower_service::Service::call(
        &mut tower,
        Request::post("/hub/negotiate?negotiateVersion=1")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(json["connectionToken"].is_string());

    let response = hubs
        .handle(
            Request::get("/not-a-hub")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
