//! Typed errors: a method returning `Result<T, E>` where `E` is a `ClientError` answers with the
//! error's text (a `HubException`'s, as any client reads it) and, in the Completion's
//! `hubs-error` header, its value as JSON — in both protocols; other error types are unchanged;
//! the metadata tells generators which methods have a typed error.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::*;
use hub_core::hub::TYPED_ERROR_HEADER;
use hub_core::protocol::{CompletionOutcome, HubMessage, Protocol};
use hub_server::{hub, ClientError, HubError, HubServer};
use serde::Serialize;

/// Why joining a room failed.
#[derive(Debug, Serialize, ts_rs::TS)]
#[serde(tag = "kind")]
pub enum RoomError {
    /// The room has no seat left.
    RoomFull { room: String, capacity: u32 },
    /// The nickname is taken.
    NicknameTaken,
}

impl std::fmt::Display for RoomError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RoomError::RoomFull { room, capacity } => {
                write!(f, "{room} is full ({capacity} seats)")
            }
            RoomError::NicknameTaken => f.write_str("that nickname is taken"),
        }
    }
}

impl ClientError for RoomError {}

/// The hub under test.
#[hub(route = "/rooms")]
pub trait Rooms {
    /// Joins a room: full ones refuse with a typed error.
    async fn join(&self, room: String) -> Result<u32, RoomError>;
    /// An untyped hub error.
    async fn plain(&self) -> Result<(), HubError>;
    /// An internal error (hidden from the caller).
    async fn internal(&self, text: String) -> Result<i32, std::num::ParseIntError>;
}

struct RoomsHub;

impl Rooms for RoomsHub {
    async fn join(&self, room: String) -> Result<u32, RoomError> {
        match room.as_str() {
            "lobby" => Err(RoomError::RoomFull { room, capacity: 2 }),
            "taken" => Err(RoomError::NicknameTaken),
            _ => Ok(1),
        }
    }

    async fn plain(&self) -> Result<(), HubError> {
        Err(HubError::new("nope"))
    }

    async fn internal(&self, text: String) -> Result<i32, std::num::ParseIntError> {
        text.parse()
    }
}

async fn completion(
    client: &mut WsClient,
    id: &str,
) -> (Option<String>, Option<String>, Option<String>) {
    let received = client.recv_skip_pings().await;
    let HubMessage::Completion(completion) = received.message else {
        panic!("expected a Completion, got {:?}", received.raw);
    };
    assert_eq!(&*completion.invocation_id, id);
    let header = completion
        .headers
        .get(TYPED_ERROR_HEADER)
        .map(str::to_owned);
    match completion.outcome {
        CompletionOutcome::Error(text) => (Some(text.to_string()), header, None),
        CompletionOutcome::Result(raw) => (
            None,
            header,
            Some(raw.deserialize::<serde_json::Value>().unwrap().to_string()),
        ),
        CompletionOutcome::NoResult => (None, header, None),
    }
}

#[tokio::test]
async fn a_client_error_travels_as_text_and_as_a_typed_header() {
    let server =
        TestServer::start_with(HubServer::builder().hub(PATH, ServeRooms::new(RoomsHub))).await;
    for protocol in [Protocol::Json, Protocol::MessagePack] {
        let mut client = server.client(protocol).await;
        client.invoke("1", "Join", ("lobby",)).await;
        let (text, header, _) = completion(&mut client, "1").await;
        assert_eq!(
            text.as_deref(),
            Some("An unexpected error occurred invoking 'Join' on the server. HubException: lobby is full (2 seats)"),
            "{protocol:?}"
        );
        let header: serde_json::Value = serde_json::from_str(&header.unwrap()).unwrap();
        assert_eq!(
            header,
            serde_json::json!({
                "type": "RoomError",
                "error": { "kind": "RoomFull", "room": "lobby", "capacity": 2 }
            })
        );

        client.invoke("2", "Join", ("taken",)).await;
        let (_, header, _) = completion(&mut client, "2").await;
        assert_eq!(
            header.as_deref(),
            Some(r#"{"type":"RoomError","error":{"kind":"NicknameTaken"}}"#)
        );

        // Success, untyped hub errors and internal errors carry no header.
        client.invoke("3", "Join", ("garden",)).await;
        assert_eq!(
            completion(&mut client, "3").await,
            (None, None, Some("1".into()))
        );
        client.invoke("4", "Plain", ()).await;
        assert_eq!(
            completion(&mut client, "4").await,
            (
                Some("An unexpected error occurred invoking 'Plain' on the server. HubException: nope".into()),
                None,
                None
            )
        );
        client.invoke("5", "Internal", ("x",)).await;
        assert_eq!(
            completion(&mut client, "5").await,
            (
                Some("An unexpected error occurred invoking 'Internal' on the server.".into()),
                None,
                None
            )
        );
    }
}

#[test]
fn the_metadata_names_typed_errors_only() {
    let meta = ServeRooms::<()>::METADATA;
    let error = |name: &str| {
        let method = meta.methods.iter().find(|m| m.name == name).unwrap();
        (method.error)().map(|ty| ty.rust)
    };
    assert!(error("join").unwrap().ends_with("RoomError"));
    assert_eq!(error("plain"), None);
    assert_eq!(error("internal"), None);
}

/// Connects and sends a JSON handshake presenting `contract`; returns the client and the text of
/// every frame that arrives until the server closes or goes quiet.
async fn handshake_with(server: &TestServer, contract: Option<&str>) -> (WsClient, Vec<String>) {
    let token = negotiate_token(server.addr, PATH).await;
    let mut client = WsClient::connect(server.addr, &format!("{PATH}?id={token}")).await;
    let mut request = hub_core::protocol::handshake::HandshakeRequest::new("json", 1);
    if let Some(contract) = contract {
        request = request.with_contract(contract);
    }
    let mut bytes = Vec::new();
    request.encode(&mut bytes);
    client.send_text(std::str::from_utf8(&bytes).unwrap()).await;
    let mut texts = Vec::new();
    while let Some(Frame::Data { bytes, .. }) = client
        .recv_frame_within(std::time::Duration::from_millis(300))
        .await
    {
        texts.push(String::from_utf8(bytes.to_vec()).unwrap());
    }
    (client, texts)
}

/// The connection works: an invocation is answered.
async fn joins(client: &mut WsClient) {
    client
        .send_json(r#"{"type":1,"invocationId":"1","target":"Join","arguments":["garden"]}"#)
        .await;
    let Frame::Data { bytes, .. } = client.recv_frame().await else {
        panic!("no answer");
    };
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(
        text.contains(r#""invocationId":"1""#) && text.contains(r#""result":1"#),
        "{text}"
    );
}

#[tokio::test]
async fn the_contract_hash_is_checked_at_the_handshake() {
    let ours = hub_server::codegen::contract_hash(ServeRooms::<()>::METADATA);
    assert_eq!(ours.len(), 16);
    let refusing = TestServer::start_with(
        HubServer::builder()
            .hub(PATH, ServeRooms::new(RoomsHub))
            .config(hub_server::HubConfig::new().contract_check(hub_server::ContractCheck::Refuse)),
    )
    .await;

    // The same contract: accepted, and told the server's.
    let (mut client, texts) = handshake_with(&refusing, Some(&ours)).await;
    assert_eq!(texts, vec![format!("{{\"contract\":\"{ours}\"}}{RS}")]);
    joins(&mut client).await;

    // Another contract: the handshake is answered, then a Close that says what to do.
    let (_, texts) = handshake_with(&refusing, Some("0123456789abcdef")).await;
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert_eq!(texts[0], format!("{{\"contract\":\"{ours}\"}}{RS}"));
    let close: serde_json::Value = serde_json::from_str(texts[1].trim_end_matches(RS)).unwrap();
    assert_eq!(close["type"], 7);
    assert_ne!(
        close["allowReconnect"], true,
        "no reconnect (the field is left out)"
    );
    let error = close["error"].as_str().unwrap();
    assert!(
        error.contains("another version of the `Rooms` hub")
            && error.contains("0123456789abcdef")
            && error.contains(&ours)
            && error.contains("regenerate"),
        "{error}"
    );

    // No contract (the official clients): exactly `{}`, whatever the setting.
    let (_, texts) = handshake_with(&refusing, None).await;
    assert_eq!(texts, vec![format!("{{}}{RS}")]);

    // Logging (the default) accepts another contract.
    let logging =
        TestServer::start_with(HubServer::builder().hub(PATH, ServeRooms::new(RoomsHub))).await;
    let (mut client, texts) = handshake_with(&logging, Some("0123456789abcdef")).await;
    assert_eq!(texts, vec![format!("{{\"contract\":\"{ours}\"}}{RS}")]);
    joins(&mut client).await;
}
