//! A hub written with `#[hub]` and `#[hub_client]`, over a real WebSocket: every method shape
//! (values, `Result`, void, context parameters by type, cancellation, server streams, upload
//! streams), wire names, typed callbacks to every target, client results, connection hooks, and
//! the metadata registered for code generators.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures_util::{Stream, StreamExt};
use hub_core::protocol::{CompletionOutcome, HubMessage};
use hub_server::{
    hub, hub_client, CallerClients, Cancellation, Context, Groups, HubError, HubServer,
    UploadStream,
};
use serde::{Deserialize, Serialize};

/// A chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct Note {
    pub room: String,
    pub text: String,
}

/// What the server calls on clients.
#[hub_client]
pub trait NoteClient {
    /// A note arrived.
    async fn receive_note(&self, note: Note);
    /// Someone joined.
    #[hub(name = "joined")]
    async fn user_joined(&self, room: String, who: String);
    /// Asks the client to confirm; a client result.
    async fn confirm(&self, question: String) -> bool;
}

/// The hub under test.
#[hub(route = "/notes", client = NoteClient)]
pub trait Notes {
    /// Echoes a text.
    async fn echo(&self, text: String) -> String;
    /// Adds two numbers.
    async fn add(&self, a: i64, b: i64) -> i64;
    /// Fails when `text` is empty.
    async fn check(&self, text: String) -> Result<usize, HubError>;
    /// Returns nothing.
    async fn touch(&self);
    /// Parses a number, failing with an internal error.
    async fn parse(&self, text: String) -> Result<i32, std::num::ParseIntError>;
    /// The caller's id, with the context anywhere in the parameter list.
    async fn whoami(&self, prefix: String, cx: Context<NoteClientProxy>) -> String;
    /// Joins a room and tells the others.
    async fn join(
        &self,
        clients: CallerClients<NoteClientProxy>,
        groups: Groups,
        cx: Context,
        room: String,
    );
    /// Sends a note to a room.
    async fn send(&self, cx: Context<NoteClientProxy>, note: Note) -> Result<(), HubError>;
    /// Asks the caller.
    async fn ask(&self, cx: Context<NoteClientProxy>, question: String) -> Result<bool, HubError>;
    /// Counts to `n`.
    async fn count_to(&self, n: u32) -> impl Stream<Item = u32> + Send + 'static;
    /// Counts, failing at `fail_at`.
    async fn count_failing(
        &self,
        n: u32,
        fail_at: u32,
    ) -> Result<impl Stream<Item = Result<u32, HubError>> + Send + 'static, HubError>;
    /// Sums an upload.
    async fn sum(&self, numbers: UploadStream<i64>) -> Result<i64, HubError>;
    /// Waits until cancelled.
    async fn wait(&self, cancel: Cancellation) -> bool;
    /// Renamed on the wire.
    #[hub(name = "Legacy_Name")]
    async fn renamed(&self) -> String;
    /// Counts connections.
    #[hub(on_connected)]
    async fn connected(&self, cx: Context) -> Result<(), HubError>;
    /// Counts disconnections.
    #[hub(on_disconnected)]
    async fn disconnected(&self, cx: Context, error: Option<String>);
}

#[derive(Default)]
struct NotesHub {
    connected: AtomicUsize,
    disconnected: AtomicUsize,
}

impl Notes for NotesHub {
    async fn echo(&self, text: String) -> String {
        text
    }
    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
    async fn check(&self, text: String) -> Result<usize, HubError> {
        if text.is_empty() {
            return Err(HubError::new("empty text"));
        }
        Ok(text.len())
    }
    async fn touch(&self) {}
    async fn parse(&self, text: String) -> Result<i32, std::num::ParseIntError> {
        text.parse()
    }
    async fn whoami(&self, prefix: String, cx: Context<NoteClientProxy>) -> String {
        format!("{prefix}{}", cx.connection_id())
    }
    async fn join(
        &self,
        clients: CallerClients<NoteClientProxy>,
        groups: Groups,
        cx: Context,
        room: String,
    ) {
        let _ = groups.add(cx.connection_id(), &room).await;
        let _ = clients
            .others_in_group(&room)
            .user_joined(&room, cx.connection_id())
            .await;
    }
    async fn send(&self, cx: Context<NoteClientProxy>, note: Note) -> Result<(), HubError> {
        if note.text.is_empty() {
            return Err(HubError::new("a note needs text"));
        }
        cx.clients().group(&note.room).receive_note(&note).await?;
        Ok(())
    }
    async fn ask(&self, cx: Context<NoteClientProxy>, question: String) -> Result<bool, HubError> {
        Ok(cx.clients().caller().confirm(question).await?)
    }
    async fn count_to(&self, n: u32) -> impl Stream<Item = u32> + Send + 'static {
        futures_util::stream::iter(1..=n)
    }
    async fn count_failing(
        &self,
        n: u32,
        fail_at: u32,
    ) -> Result<impl Stream<Item = Result<u32, HubError>> + Send + 'static, HubError> {
        if n == 0 {
            return Err(HubError::new("nothing to count"));
        }
        Ok(futures_util::stream::iter((1..=n).map(move |i| {
            if i == fail_at {
                Err(HubError::new("failed on purpose"))
            } else {
                Ok(i)
            }
        })))
    }
    async fn sum(&self, mut numbers: UploadStream<i64>) -> Result<i64, HubError> {
        let mut total = 0;
        while let Some(number) = numbers.next().await {
            total += number?;
        }
        Ok(total)
    }
    async fn wait(&self, cancel: Cancellation) -> bool {
        cancel.cancelled().await;
        true
    }
    async fn renamed(&self) -> String {
        "legacy".into()
    }
    async fn connected(&self, _cx: Context) -> Result<(), HubError> {
        self.connected.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn disconnected(&self, _cx: Context, _error: Option<String>) {
        self.disconnected.fetch_add(1, Ordering::SeqCst);
    }
}

async fn start() -> (TestServer, Arc<NotesHub>) {
    let hub = Arc::new(NotesHub::default());
    let server =
        TestServer::start_with(HubServer::builder().hub(PATH, ServeNotes::from_arc(hub.clone())))
            .await;
    (server, hub)
}

fn value(completion: &hub_core::protocol::Completion) -> serde_json::Value {
    match &completion.outcome {
        CompletionOutcome::Result(raw) => raw.deserialize().unwrap(),
        other => panic!("expected a result, got {other:?}"),
    }
}

fn error(completion: &hub_core::protocol::Completion) -> String {
    match &completion.outcome {
        CompletionOutcome::Error(text) => text.to_string(),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn plain_values_results_and_void() {
    let (server, _) = start().await;
    let mut client = server.json_client().await;
    client.invoke("1", "Echo", ("hi",)).await;
    assert_eq!(value(&client.expect_completion("1").await), "hi");
    client.invoke("2", "add", (2, 3)).await;
    assert_eq!(value(&client.expect_completion("2").await), 5);
    client.invoke("3", "Check", ("four",)).await;
    assert_eq!(value(&client.expect_completion("3").await), 4);
    client.invoke("4", "Check", ("",)).await;
    assert_eq!(
        error(&client.expect_completion("4").await),
        "An unexpected error occurred invoking 'Check' on the server. HubException: empty text"
    );
    client.invoke("5", "Touch", ()).await;
    assert_eq!(
        value(&client.expect_completion("5").await),
        serde_json::Value::Null
    );
    client.invoke("6", "Parse", ("x",)).await;
    assert_eq!(
        error(&client.expect_completion("6").await),
        "An unexpected error occurred invoking 'Parse' on the server."
    );
    client.invoke("7", "Legacy_Name", ()).await;
    assert_eq!(value(&client.expect_completion("7").await), "legacy");
    client.invoke("8", "Renamed", ()).await;
    assert!(error(&client.expect_completion("8").await)
        .ends_with("HubException: Method does not exist."));
}

#[tokio::test]
async fn context_parameters_are_found_by_type_and_take_no_arguments() {
    let (server, _) = start().await;
    let mut client = server.json_client().await;
    client.invoke("1", "WhoAmI", ("id:",)).await;
    let id = value(&client.expect_completion("1").await);
    assert!(id.as_str().unwrap().starts_with("id:"));
    // The context is not an argument: sending one more is a binding error.
    client.invoke("2", "WhoAmI", ("id:", "extra")).await;
    assert!(error(&client.expect_completion("2").await)
        .starts_with("Failed to invoke 'WhoAmI' due to an error on the server."));
    client.invoke("3", "Add", ("two", 3)).await;
    assert!(error(&client.expect_completion("3").await).starts_with("Failed to invoke 'Add'"));
}

#[tokio::test]
async fn typed_callbacks_reach_groups_and_skip_the_caller() {
    let (server, _) = start().await;
    let mut alice = server.json_client().await;
    let mut bob = server.json_client().await;
    alice.invoke("1", "Join", ("lobby",)).await;
    alice.expect_completion("1").await;
    bob.invoke("1", "Join", ("lobby",)).await;
    bob.expect_completion("1").await;
    let joined = alice.recv_skip_pings().await;
    let HubMessage::Invocation(call) = joined.message else {
        panic!("expected an invocation, got {:?}", joined.raw)
    };
    assert_eq!(
        &*call.target, "joined",
        "the renamed callback keeps its wire name"
    );
    assert_eq!(
        call.arguments
            .get(0)
            .unwrap()
            .deserialize::<String>()
            .unwrap(),
        "lobby"
    );

    let note = Note {
        room: "lobby".into(),
        text: "hello".into(),
    };
    bob.invoke("2", "Send", (&note,)).await;
    for client in [&mut alice, &mut bob] {
        let received = client.recv_skip_pings().await;
        match received.message {
            HubMessage::Invocation(call) => {
                assert_eq!(&*call.target, "ReceiveNote");
                assert_eq!(
                    call.arguments
                        .get(0)
                        .unwrap()
                        .deserialize::<Note>()
                        .unwrap(),
                    note
                );
            }
            HubMessage::Completion(completion) => {
                assert_eq!(&*completion.invocation_id, "2");
                let again = client.recv_skip_pings().await;
                assert!(
                    matches!(again.message, HubMessage::Invocation(_)),
                    "{:?}",
                    again.raw
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn client_results_are_typed() {
    let (server, _) = start().await;
    let mut client = server.json_client().await;
    client.invoke("1", "Ask", ("ok?",)).await;
    let received = client.recv_skip_pings().await;
    let HubMessage::Invocation(call) = received.message else {
        panic!(
            "expected the client result invocation, got {:?}",
            received.raw
        )
    };
    assert_eq!(&*call.target, "Confirm");
    let id = call
        .invocation_id
        .clone()
        .expect("a client result has an id");
    client
        .send_json(&format!(
            r#"{{"type":3,"invocationId":"{id}","result":true}}"#
        ))
        .await;
    assert_eq!(value(&client.expect_completion("1").await), true);
}

#[tokio::test]
async fn server_streams_and_uploads() {
    let (server, _) = start().await;
    let mut client = server.json_client().await;
    client
        .send_json(r#"{"type":4,"invocationId":"s","target":"CountTo","arguments":[3]}"#)
        .await;
    let mut items = Vec::new();
    loop {
        let received = client.recv_skip_pings().await;
        match received.message {
            HubMessage::StreamItem(item) => items.push(item.item.deserialize::<u32>().unwrap()),
            HubMessage::Completion(completion) => {
                assert!(matches!(completion.outcome, CompletionOutcome::NoResult));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(items, [1, 2, 3]);

    client
        .send_json(r#"{"type":4,"invocationId":"f","target":"CountFailing","arguments":[0,1]}"#)
        .await;
    assert!(error(&client.expect_completion("f").await).ends_with("HubException: nothing to count"));
    client
        .send_json(r#"{"type":4,"invocationId":"g","target":"CountFailing","arguments":[3,2]}"#)
        .await;
    let first = client.recv_skip_pings().await;
    assert!(
        matches!(first.message, HubMessage::StreamItem(_)),
        "{:?}",
        first.raw
    );
    assert!(
        error(&client.expect_completion("g").await).ends_with("HubException: failed on purpose")
    );

    client
        .send_json(
            r#"{"type":1,"invocationId":"u","target":"Sum","arguments":[],"streamIds":["a"]}"#,
        )
        .await;
    for n in 1..=4 {
        client
            .send_json(&format!(r#"{{"type":2,"invocationId":"a","item":{n}}}"#))
            .await;
    }
    client.send_json(r#"{"type":3,"invocationId":"a"}"#).await;
    assert_eq!(value(&client.expect_completion("u").await), 10);
}

#[tokio::test]
async fn cancellation_parameter_fires_on_cancel_invocation() {
    let (server, _) = start().await;
    let mut client = server.json_client().await;
    client
        .send_json(r#"{"type":1,"invocationId":"w","target":"Wait","arguments":[]}"#)
        .await;
    client.send_json(r#"{"type":5,"invocationId":"w"}"#).await;
    // A cancelled unary call gets no reply; the connection goes on.
    client.expect_silence(Duration::from_millis(200)).await;
    client.echo_works("still here").await;
}

#[tokio::test]
async fn hooks_run_on_connect_and_disconnect() {
    let (server, hub) = start().await;
    let client = server.json_client().await;
    server.wait_for_connection_count(1).await;
    assert_eq!(hub.connected.load(Ordering::SeqCst), 1);
    drop(client);
    server.wait_for_connection_count(0).await;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while hub.disconnected.load(Ordering::SeqCst) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "on_disconnected never ran"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn metadata_describes_the_hub_for_code_generators() {
    let meta = ServeNotes::<()>::METADATA;
    assert_eq!(meta.name, "Notes");
    assert_eq!(meta.route, Some("/notes"));
    assert_eq!(meta.docs, "The hub under test.");
    let send = meta.methods.iter().find(|m| m.name == "send").unwrap();
    assert_eq!(send.wire_name, "Send");
    assert_eq!(send.typescript_name, "send");
    assert_eq!(send.docs, "Sends a note to a room.");
    assert_eq!(send.parameters.len(), 2);
    assert_eq!(
        send.parameters[0].source,
        hub_server::__private::ParameterSource::Context
    );
    assert_eq!(
        send.parameters[1].source,
        hub_server::__private::ParameterSource::Argument
    );
    let config = ts_rs::Config::new();
    let note = (send.parameters[1].ty.typescript)(&config);
    assert_eq!(note.name, "Note");
    assert_eq!(note.declarations.len(), 1);
    assert!(
        note.declarations[0].declaration.contains("room: string"),
        "{note:?}"
    );
    let count = meta.methods.iter().find(|m| m.name == "count_to").unwrap();
    assert!(count.output.stream);
    assert_eq!((count.output.ty.typescript)(&config).name, "number");
    let sum = meta.methods.iter().find(|m| m.name == "sum").unwrap();
    assert_eq!(
        sum.parameters[0].source,
        hub_server::__private::ParameterSource::Upload
    );
    assert!(
        meta.methods.iter().all(|m| m.name != "connected"),
        "hooks are not methods"
    );

    assert_eq!(meta.client.name, "NoteClient");
    let joined = meta
        .client
        .callbacks
        .iter()
        .find(|c| c.name == "user_joined")
        .unwrap();
    assert_eq!(joined.wire_name, "joined");
    assert!(joined.result.is_none());
    let confirm = meta
        .client
        .callbacks
        .iter()
        .find(|c| c.name == "confirm")
        .unwrap();
    assert_eq!(
        (confirm.result.unwrap().typescript)(&config).name,
        "boolean"
    );

    assert!(hub_server::registry::hubs()
        .iter()
        .any(|hub| hub.name == "Notes"));
}

// ------------------------------------------------------------------------------------------------
// The in-process test client, typed through the same traits
// ------------------------------------------------------------------------------------------------

use hub_server::testing::{TestError, TestHub};
use std::sync::Mutex;

/// A client that records what it receives and answers `confirm` with `answer`.
#[derive(Default)]
struct Recorder {
    notes: Mutex<Vec<Note>>,
    joined: Mutex<Vec<(String, String)>>,
    answer: bool,
}

impl NoteClient for Recorder {
    async fn receive_note(&self, note: Note) {
        self.notes.lock().unwrap().push(note);
    }
    async fn user_joined(&self, room: String, who: String) {
        self.joined.lock().unwrap().push((room, who));
    }
    async fn confirm(&self, _question: String) -> bool {
        self.answer
    }
}

#[tokio::test]
async fn test_client_calls_methods_and_receives_typed_callbacks() {
    let hub = TestHub::new(ServeNotes::new(NotesHub::default()));
    let mut alice = hub.connect().await.unwrap();
    let mut bob = hub
        .connect_with(
            hub_server::Principal::user("bob"),
            hub_core::protocol::Protocol::MessagePack,
        )
        .await
        .unwrap();
    assert_eq!(alice.invoke::<i64>("Add", (2, 40)).await.unwrap(), 42);
    assert_eq!(
        bob.invoke::<String>("Echo", ("msgpack",)).await.unwrap(),
        "msgpack"
    );
    assert!(matches!(
        alice.invoke::<usize>("Check", ("",)).await,
        Err(TestError::Hub(text)) if text.ends_with("HubException: empty text")
    ));
    assert_eq!(
        alice.stream::<u32>("CountTo", (4,)).await.unwrap(),
        [1, 2, 3, 4]
    );

    alice.invoke::<()>("Join", ("lobby",)).await.unwrap();
    bob.invoke::<()>("Join", ("lobby",)).await.unwrap();
    let recorder = Recorder::default();
    assert_eq!(alice.receive(&recorder).await.unwrap(), "joined");
    assert_eq!(recorder.joined.lock().unwrap()[0].1, bob.connection_id());

    let note = Note {
        room: "lobby".into(),
        text: "typed".into(),
    };
    bob.invoke::<()>("Send", (&note,)).await.unwrap();
    assert_eq!(alice.receive(&recorder).await.unwrap(), "ReceiveNote");
    let raw = bob.next_callback().await.unwrap();
    assert_eq!(raw.target, "ReceiveNote");
    assert_eq!(raw.argument::<Note>(0).unwrap(), note);
    assert_eq!(*recorder.notes.lock().unwrap(), [note]);
}

#[tokio::test]
async fn test_client_answers_client_results_through_its_handler() {
    let hub = TestHub::new(ServeNotes::new(NotesHub::default()));
    let mut client = hub.connect().await.unwrap();
    client
        .handle_with(Recorder {
            answer: true,
            ..Recorder::default()
        })
        .await
        .unwrap();
    assert!(client.invoke::<bool>("Ask", ("ok?",)).await.unwrap());

    // From outside hub methods, typed, to a user's connections.
    let bob = hub.connect_as("bob").await.unwrap();
    hub.context()
        .clients()
        .user("bob")
        .receive_note(Note {
            room: "r".into(),
            text: "to bob".into(),
        })
        .await
        .unwrap();
    let mut bob = bob;
    assert_eq!(bob.next_callback().await.unwrap().target, "ReceiveNote");
}

#[tokio::test]
async fn test_client_context_calls_the_trait_directly() {
    let hub = Arc::new(NotesHub::default());
    let test = TestHub::new(ServeNotes::from_arc(hub.clone()));
    let mut alice = test.connect().await.unwrap();
    let bob = test.connect().await.unwrap();
    alice.join("room").await.unwrap();
    bob.join("room").await.unwrap();
    let note = Note {
        room: "room".into(),
        text: "direct".into(),
    };
    hub.send(bob.context().unwrap(), note.clone())
        .await
        .unwrap();
    let callback = alice.next_callback().await.unwrap();
    assert_eq!(callback.argument::<Note>(0).unwrap(), note);
    assert_eq!(hub.connected.load(Ordering::SeqCst), 2);
    bob.close().await;
    assert_eq!(hub.disconnected.load(Ordering::SeqCst), 1);
}

#[test]
fn codegen_writes_a_typed_package() {
    let files = hub_server::codegen::TypeScriptPackage::new("notes-client")
        .only(&["Notes"])
        .runtime_dependency("file:../client-ts")
        .files()
        .unwrap();
    let file = |name: &str| {
        files
            .iter()
            .find(|file| file.path == name)
            .map(|file| file.contents.clone())
            .unwrap()
    };
    let dts = file("index.d.ts");
    let js = file("index.js");
    if let Ok(dir) = std::env::var("DUMP_TS") {
        for file in &files {
            std::fs::write(std::path::Path::new(&dir).join(&file.path), &file.contents).unwrap();
        }
    }
    assert!(
        dts.contains("export type Note = { room: string, text: string, };"),
        "{dts}"
    );
    assert!(
        dts.contains("  send(note: Note, signal?: AbortSignal): Promise<void>;"),
        "{dts}"
    );
    assert!(
        dts.contains("  countTo(n: number, signal?: AbortSignal): HubStream<number>;"),
        "{dts}"
    );
    assert!(
        dts.contains(
            "  sum(numbers: AsyncIterable<number>, signal?: AbortSignal): Promise<number>;"
        ),
        "{dts}"
    );
    assert!(
        dts.contains("  confirm(question: string): boolean | Promise<boolean>;"),
        "{dts}"
    );
    assert!(
        dts.contains("\"Legacy_Name\": { args: []; result: string; stream: false };"),
        "{dts}"
    );
    assert!(
        dts.contains("\"joined\": { args: [room: string, who: string]; result: void };"),
        "{dts}"
    );
    assert!(
        dts.contains("export declare function connectNotes(baseUrl: string"),
        "{dts}"
    );
    assert!(js.contains("export const notesRoute = \"/notes\";"), "{js}");
    assert!(
        js.contains("return this.connection.invoke(\"Send\", ...withSignal([note], signal));"),
        "{js}"
    );
    assert!(file("package.json").contains("\"@hubs/client\": \"file:../client-ts\""));
    assert!(js.contains("export * from \"@hubs/client\";"), "{js}");
    assert!(!files.iter().any(|file| file.path.starts_with("runtime/")));
}

/// By default the package carries its runtime: no dependency, `runtime/` holds it, and the
/// package re-exports it (builder, transport types, errors) and its MessagePack protocol.
#[test]
fn codegen_packages_carry_their_runtime() {
    let generated = hub_server::codegen::TypeScriptPackage::new("notes-client")
        .only(&["Notes"])
        .generate()
        .unwrap();
    let file = |name: &str| {
        generated
            .files
            .iter()
            .find(|file| file.path == name)
            .map(|file| file.contents.clone())
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let package: serde_json::Value = serde_json::from_str(&file("package.json")).unwrap();
    assert_eq!(package.get("dependencies"), None, "{package}");
    assert_eq!(
        package["exports"]["./msgpack"]["import"], "./msgpack.js",
        "{package}"
    );
    assert!(file("index.js").contains("export * from \"./runtime/index.js\";"));
    assert!(file("index.d.ts").contains("export * from \"./runtime/index.js\";"));
    assert!(file("msgpack.js").contains("export * from \"./runtime/msgpack.js\";"));
    let runtime = file("runtime/index.js");
    assert!(
        runtime.contains("HttpTransportType"),
        "runtime without transports"
    );
    assert!(file("runtime/msgpack.js").contains("MessagePackHubProtocol"));
    assert!(file("runtime/index.d.ts").contains("HubConnectionBuilder"));
    // `Notes.add` takes and returns i64: typed `number`, with a warning naming each place.
    assert!(file("index.d.ts")
        .contains("add(a: number, b: number, signal?: AbortSignal): Promise<number>;"));
    for place in ["`Notes.add(a)`", "`Notes.add(b)`", "`Notes.add → result`"] {
        assert!(
            generated
                .warnings
                .iter()
                .any(|warning| warning.starts_with(place) && warning.contains("2^53")),
            "no warning for {place}: {:#?}",
            generated.warnings
        );
    }
    // Strict generation refuses them, naming the same places.
    let error = hub_server::codegen::TypeScriptPackage::new("notes-client")
        .only(&["Notes"])
        .strict(true)
        .generate()
        .unwrap_err();
    assert!(matches!(error, hub_server::codegen::CodegenError::Lossy(_)));
    assert!(error.to_string().contains("`Notes.add(a)`"), "{error}");
}

/// `verify` accepts what `write` wrote and names what differs, is missing or is left over.
#[test]
fn codegen_verify_names_stale_files() {
    let package = hub_server::codegen::TypeScriptPackage::new("notes-client").only(&["Notes"]);
    let dir = std::env::temp_dir().join(format!("hubs-verify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    package.write(&dir).unwrap();
    package.verify(&dir).unwrap();
    std::fs::write(dir.join("index.js"), "// edited").unwrap();
    std::fs::remove_file(dir.join("runtime/index.js")).unwrap();
    std::fs::write(dir.join("runtime/old.js"), "").unwrap();
    let error = package.verify(&dir).unwrap_err().to_string();
    assert!(error.contains("index.js differs"), "{error}");
    assert!(error.contains("runtime/index.js is missing"), "{error}");
    assert!(
        error.contains("runtime/old.js is not generated any more"),
        "{error}"
    );
    // Writing again replaces the runtime folder: the leftover goes.
    package.write(&dir).unwrap();
    package.verify(&dir).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
