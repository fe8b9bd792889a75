//! `#[authorize]` through the macros: a trait that requires a role refuses negotiate (401
//! anonymous, 403 without the role); its methods add their own requirements (a policy here);
//! `#[allow_anonymous]` opens one method of the trait; a hub requiring a policy the server does
//! not define fails to build; a per-hub authenticator replaces the server's.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{http, negotiate, result, TestServer, WsClient, PATH};
use http::{Method, StatusCode};
use hub_server::protocol::{HubMessage, Protocol};
use hub_server::{hub, HubEndpoint, HubServer, Principal, RequestInfo, ServerError, ROLE_CLAIM};

/// Staff tools.
#[hub]
#[authorize(role = "staff")]
pub trait Staff {
    /// Anyone on the staff.
    async fn ping(&self) -> String;
    /// Staff who also meet the `night-shift` policy.
    #[authorize(policy = "night-shift")]
    async fn night(&self) -> String;
    /// Open to every connection (they are all staff, as the trait requires to connect).
    #[allow_anonymous]
    async fn open(&self) -> String;
    /// Staff who meet the `slow` policy, whose decision takes a while.
    #[authorize(policy = "slow")]
    async fn slow(&self) -> String;
}

struct Tools;

impl Staff for Tools {
    async fn ping(&self) -> String {
        "pong".into()
    }
    async fn night(&self) -> String {
        "night".into()
    }
    async fn open(&self) -> String {
        "open".into()
    }
    async fn slow(&self) -> String {
        "slow".into()
    }
}

/// The bearer token is `user` or `user#roles`.
async fn authenticate(request: &RequestInfo) -> Result<Principal, hub_server::Unauthorized> {
    let Some(token) = request.bearer_token() else {
        return Ok(Principal::anonymous());
    };
    let (user, roles) = token.split_once('#').unwrap_or((&token, ""));
    let mut principal = Principal::user(user);
    if !roles.is_empty() {
        principal.claims.insert(ROLE_CLAIM.into(), roles.into());
    }
    Ok(principal)
}

fn builder() -> hub_server::HubServerBuilder {
    HubServer::builder()
        .hub(PATH, ServeStaff::new(Tools))
        .authenticator(|request: &RequestInfo| {
            let request = request.clone();
            async move { authenticate(&request).await }
        })
        .policy("night-shift", |principal: &Principal, _: &RequestInfo| {
            let night = principal.user_id.as_deref() == Some("owl");
            async move { night }
        })
        .policy("slow", |_: &Principal, _: &RequestInfo| async {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            true
        })
}

async fn negotiate_as(server: &TestServer, token: Option<&str>) -> (StatusCode, String) {
    let auth = token.map(|token| format!("Bearer {token}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let (status, _, body) = http(
        server.addr,
        Method::POST,
        &format!("{PATH}/negotiate?negotiateVersion=1"),
        &headers,
        b"",
    )
    .await;
    let token = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|body| body["connectionToken"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, token)
}

async fn connect_as(server: &TestServer, user: &str) -> WsClient {
    let (status, token) = negotiate_as(server, Some(user)).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    let auth = format!("Bearer {user}");
    let mut client = WsClient::try_connect(
        server.addr,
        &format!("{PATH}?id={token}"),
        &[("authorization", &auth)],
    )
    .await
    .unwrap_or_else(|_| panic!("{user} could not open the WebSocket"));
    client.handshake(Protocol::Json).await;
    client
}

/// Invokes `method` and returns its result, or the error text.
async fn call(client: &mut WsClient, method: &str) -> Result<String, String> {
    client.invoke("1", method, ()).await;
    let completion = client.expect_completion("1").await;
    match &completion.outcome {
        hub_server::protocol::CompletionOutcome::Error(text) => Err(text.to_string()),
        _ => Ok(result::<String>(&completion)),
    }
}

#[tokio::test]
async fn a_trait_that_requires_a_role_refuses_negotiate_then_methods_add_their_requirements() {
    let server = TestServer::start_with(builder()).await;
    assert_eq!(
        negotiate_as(&server, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        negotiate_as(&server, Some("bob")).await.0,
        StatusCode::FORBIDDEN
    );
    // Skipping negotiation does not get around it.
    let refused = WsClient::try_connect(server.addr, PATH, &[]).await;
    assert!(matches!(refused, Err((StatusCode::UNAUTHORIZED, _))));

    let mut staff = connect_as(&server, "ann#staff").await;
    assert_eq!(call(&mut staff, "Ping").await.unwrap(), "pong");
    assert_eq!(call(&mut staff, "Open").await.unwrap(), "open");
    assert_eq!(
        call(&mut staff, "Night").await.unwrap_err(),
        "Failed to invoke 'Night' because user is unauthorized"
    );
    let mut owl = connect_as(&server, "owl#staff").await;
    assert_eq!(call(&mut owl, "Night").await.unwrap(), "night");
    // A refused call leaves the connection as it was.
    assert_eq!(call(&mut staff, "Ping").await.unwrap(), "pong");
    assert!(!matches!(
        staff.try_recv_within(std::time::Duration::from_millis(50)).await,
        Some(received) if matches!(received.message, HubMessage::Close(_))
    ));
}

#[tokio::test]
async fn a_hub_that_requires_an_undefined_policy_is_not_served() {
    let error = HubServer::builder()
        .hub(PATH, ServeStaff::new(Tools))
        .into_service()
        .err()
        .expect("the service was built without the night-shift policy");
    assert!(
        matches!(&error, ServerError::UnknownPolicy { policy, method: Some(method), .. }
        if policy == "night-shift" && method == "Night"),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("HubServerBuilder::policy(\"night-shift\""),
        "{error}"
    );
}

#[tokio::test]
async fn a_hub_with_its_own_authenticator() {
    // The server lets everyone in anonymously; this hub turns away requests without a key.
    let endpoint = HubEndpoint::new(common::test_hub()).authenticator(|request: &RequestInfo| {
        let key = request
            .headers()
            .get("x-key")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        async move {
            match key.as_deref() {
                Some("sesame") => Ok(Principal::user("keyholder")),
                _ => Err(hub_server::Unauthorized),
            }
        }
    });
    let server = TestServer::start_with(HubServer::builder().endpoint(PATH, endpoint)).await;
    let (status, _) = negotiate(server.addr, PATH, "negotiateVersion=1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = http(
        server.addr,
        Method::POST,
        &format!("{PATH}/negotiate?negotiateVersion=1"),
        &[("x-key", "sesame")],
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_call_waiting_for_its_policy_holds_its_id() {
    let server = TestServer::start_with(builder()).await;
    let mut client = connect_as(&server, "ann#staff").await;
    client.invoke("1", "Slow", ()).await;
    // Sent while the policy decides: the id is in use.
    client.invoke("1", "Open", ()).await;
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        let completion = client.expect_completion("1").await;
        outcomes.push(match &completion.outcome {
            hub_server::protocol::CompletionOutcome::Error(text) => Err(text.to_string()),
            _ => Ok(result::<String>(&completion)),
        });
    }
    assert_eq!(
        outcomes,
        [
            Ok("slow".to_owned()),
            Err("Invocation ID '1' is already in use.".to_owned())
        ]
    );
}
