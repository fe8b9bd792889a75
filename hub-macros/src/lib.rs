//! The `#[hub]` and `#[hub_client]` attributes: Rust traits become SignalR hubs and typed client
//! callbacks. Use them through `hub_server` (`use hub_server::{hub, hub_client};`), whose docs and
//! README show them at work; everything they generate can be written by hand with the runtime API
//! (`HubDispatch`, `FromCall`, `ClientCallbacks`).
//!
//! The pipeline: `ast` (the typed model) → `attr` (attribute keys) → `valid` (spanned checks) →
//! `expand` (one generator per output) → `fallback` (on invalid input, the trait plus
//! `compile_error!`). `naming` is the only place a wire name or generated name is made.

mod ast;
mod attr;
mod authorize;
mod expand;
mod fallback;
mod naming;
mod valid;

use proc_macro::TokenStream;

/// Turns a trait of `async fn` methods into a hub that clients invoke.
///
/// ```ignore
/// #[hub(route = "/chat", client = ChatClient)]
/// pub trait Chat {
///     /// Sends a message to a room.
///     async fn send_message(&self, cx: Context<ChatClientProxy>, room: String, text: String) -> Result<(), HubError>;
/// }
/// ```
///
/// Generates, beside the trait (whose methods now return `Send` futures):
/// - `ServeChat<T>`: serves any `T: Chat` (`HubServer::builder().hub("/chat", ServeChat::new(t))`);
/// - `ServeChat::METADATA`, registered through `inventory` for code generators.
///
/// Wire names are the PascalCase of the Rust names (`send_message` → `SendMessage`), looked up
/// ignoring case; `#[hub(name = "Other")]` on a method overrides one. Parameters are bound by
/// type: values the client sends (`Deserialize` + `ts_rs::TS`), `UploadStream<T>` for
/// client-to-server streams, and context types the server provides (`Context<C>`,
/// `CallerClients<C>`, `Groups`, `HubContext<C>`, `Cancellation`, `RequestInfo`, `Principal`).
/// A method returns nothing, a value, `Result<T, E>` (`E: Into<HubError>`), or a server stream
/// `impl Stream<Item = T> + Send + 'static` (items may be `Result<T, E>`; the whole may be inside
/// `Result`). `#[hub(on_connected)]` and `#[hub(on_disconnected)]` mark connection hooks.
///
/// Trait keys: `route = "/path"` (for generated clients), `client = ClientTrait` (its callbacks
/// go in the metadata), `crate = path` (when `hub_server` is renamed).
#[proc_macro_attribute]
pub fn hub(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(ast::TraitKind::Hub, args.into(), item.into()).into()
}

/// Turns a trait of `async fn` callbacks into what the server may call on clients.
///
/// ```ignore
/// #[hub_client]
/// pub trait ChatClient {
///     /// A message arrived.
///     async fn receive_message(&self, room: String, text: String);
///     /// Asks the client; its answer is a client result.
///     async fn confirm(&self, question: String) -> bool;
/// }
/// ```
///
/// Generates `ChatClientProxy<K>`, a typed proxy for every target: `cx.clients().group("g")`
/// (in a `Context<ChatClientProxy>`) has `receive_message(room, text)`; callbacks that return a
/// value are client results and exist only on single-connection proxies (`clients.caller()`,
/// `clients.client(id)`), enforced by types. Arguments are taken as `impl AsArgument<T>`, so
/// `&str` works for `String`.
#[proc_macro_attribute]
pub fn hub_client(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(ast::TraitKind::Client, args.into(), item.into()).into()
}
