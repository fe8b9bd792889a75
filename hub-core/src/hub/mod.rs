//! The hub model: what a hub's methods are and how an invocation reaches one.
//!
//! [`HubDispatch`] is the object-safe trait a server calls; the `#[hub]` macro generates
//! implementations of it, and [`HubMethods`] builds one by hand from closures (the macro is sugar
//! over this API, as jsonrpsee's is over `register_method`). Everything here is runtime-free: the
//! server supplies the context type `Cx` (connection, clients, groups, cancellation).
//!
//! ```
//! use hub_core::hub::{HubDispatch, HubError, HubMethods, MethodOutput};
//! use hub_core::protocol::{Arguments, Format, RawValue};
//!
//! let hub = HubMethods::<()>::new()
//!     .method("Add", |_cx, (a, b): (i64, i64)| async move { Ok::<_, HubError>(a + b) })
//!     .method("Fail", |_cx, (): ()| async move { Err::<(), _>(HubError::new("not today")) });
//!
//! let index = hub.find("add").expect("lookup is case-insensitive");
//! let args = Arguments::from(vec![RawValue::from_json("2")?, RawValue::from_json("3")?]);
//! let call = hub.call(index, (), args, Vec::new());
//! let output = futures_executor_like_block_on(call).expect("the method succeeds");
//! let MethodOutput::Value(value) = output else { unreachable!() };
//! assert_eq!(RawValue::encode(&*value, Format::Json)?.as_bytes(), b"5");
//! # fn futures_executor_like_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     let waker = std::task::Waker::noop();
//! #     let mut cx = std::task::Context::from_waker(&waker);
//! #     let mut f = std::pin::pin!(f);
//! #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
//! # }
//! # Ok::<(), hub_core::ProtocolError>(())
//! ```

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures_core::Stream;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::protocol::{Arguments, EncodeValue, RawValue};

mod authorization;
mod binding;
mod client_result;

pub use authorization::{Authorization, Requirement};
pub use binding::{
    bind_call, bind_context, fallible_stream_output, hook_result, result_output, stream_output,
    try_output, unknown_method, value_output, AsArgument, CallParts, ErrorProbe, FromCall,
    IntoHubError, ParameterSource, PlainErrorProbe, TypedErrorProbe,
};
pub use client_result::ClientResultError;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A value a method produced, ready to encode in whichever protocol the caller speaks.
pub type BoxValue = Box<dyn EncodeValue + Send + Sync>;

/// A boxed, sendable stream.
pub type BoxStream<T> = Pin<Box<dyn Stream<Item = T> + Send + 'static>>;

/// An upload stream as the server feeds it: the client's items, still raw, ended by the client's
/// Completion (an error Completion ends it with an `Err`).
pub type RawUpload = BoxStream<Result<RawValue, HubError>>;

/// An error a hub method returns.
///
/// Two kinds, as in ASP.NET Core: a **hub error** ([`HubError::new`], SignalR's `HubException`) is
/// meant for the caller and its message is always sent; any other error ([`HubError::internal`],
/// or anything converted with `?`) is logged and the caller gets a generic text, unless the server
/// enables detailed errors.
pub struct HubError {
    kind: HubErrorKind,
    type_name: Cow<'static, str>,
    message: String,
    /// A [`ClientError`]'s value, for clients that read it (see [`HubError::client_error`]).
    typed: Option<Box<TypedError>>,
}

/// A [`ClientError`] as it travels: the type's name and its value as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedError {
    /// The Rust type's name (without its path), which the generated client's guard checks.
    pub type_name: String,
    /// The value, serialised as JSON.
    pub json: String,
}

/// The Completion header that carries a [`ClientError`]'s value to the clients that read it
/// (the generated TypeScript client): JSON text `{"type": "<TypeName>", "error": <value>}`, in
/// both hub protocols. Other clients ignore headers and read the error text.
pub const TYPED_ERROR_HEADER: &str = "hubs-error";

/// An error type whose values a hub method's callers receive whole: implement it (no methods) for
/// an error enum that is `Serialize`, `Display` (the text every client sees, as a `HubException`
/// message) and, for the generated TypeScript, `ts_rs::TS`. A method returning
/// `Result<T, ChatError>` then rejects in the generated client with a typed, discriminated error
/// (`isChatError(e) && e.error.kind === "RoomFull"`), listed in the method's TSDoc.
///
/// ```
/// use hub_core::hub::{ClientError, HubError};
///
/// #[derive(serde::Serialize, Debug)]
/// #[serde(tag = "kind")]
/// enum ChatError {
///     RoomFull { room: String },
/// }
/// impl std::fmt::Display for ChatError {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         match self {
///             ChatError::RoomFull { room } => write!(f, "{room} is full"),
///         }
///     }
/// }
/// impl ClientError for ChatError {}
///
/// let error = HubError::typed(&ChatError::RoomFull { room: "lobby".into() });
/// assert_eq!(error.message(), "lobby is full");
/// assert_eq!(error.client_error().unwrap().json, r#"{"kind":"RoomFull","room":"lobby"}"#);
/// ```
pub trait ClientError: serde::Serialize + fmt::Display + Send + Sync + 'static {}

/// Whether a [`HubError`]'s message is for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubErrorKind {
    /// The message is always sent to the caller.
    Hub,
    /// The message is sent only when detailed errors are enabled.
    Internal,
}

impl HubError {
    /// An error whose message the caller always sees.
    pub fn new(message: impl Into<String>) -> Self {
        HubError {
            kind: HubErrorKind::Hub,
            type_name: Cow::Borrowed("HubException"),
            message: message.into(),
            typed: None,
        }
    }

    /// A [`ClientError`]: its `Display` text is sent to every caller (as a hub error's is), and
    /// its value, as JSON, to the clients that read it. A value serde cannot write as JSON (a
    /// map with non-string keys, a failing `Serialize`) is sent as text only.
    pub fn typed<E: ClientError>(error: &E) -> Self {
        let typed = serde_json::to_string(error).ok().map(|json| {
            Box::new(TypedError {
                type_name: short_type_name::<E>().to_owned(),
                json,
            })
        });
        HubError {
            typed,
            ..HubError::new(error.to_string())
        }
    }

    /// The typed value of an error made by [`typed`](Self::typed).
    pub fn client_error(&self) -> Option<&TypedError> {
        self.typed.as_deref()
    }

    /// An error whose details stay on the server unless detailed errors are enabled.
    pub fn internal<E: fmt::Display + ?Sized>(error: &E) -> Self {
        HubError {
            kind: HubErrorKind::Internal,
            type_name: Cow::Borrowed(short_type_name::<E>()),
            message: error.to_string(),
            typed: None,
        }
    }

    /// This error under another type name, the one detailed error texts show (`… on the
    /// server. <type name>: <message>`): by default the Rust type's own name for
    /// [`internal`](Self::internal) errors (e.g. `Error` for `std::io::Error`) and
    /// `HubException` for hub errors. Clients that match on the type a .NET server would name
    /// (`InvalidOperationException`, …) get it this way.
    ///
    /// ```
    /// use hub_core::hub::HubError;
    ///
    /// let error = HubError::internal("the cart is empty").named("InvalidOperationException");
    /// assert_eq!(
    ///     error.client_text("An unexpected error occurred invoking 'Checkout' on the server.", true),
    ///     "An unexpected error occurred invoking 'Checkout' on the server. InvalidOperationException: the cart is empty"
    /// );
    /// ```
    pub fn named(mut self, type_name: impl Into<Cow<'static, str>>) -> Self {
        self.type_name = type_name.into();
        self
    }

    /// Which kind of error this is.
    pub fn kind(&self) -> HubErrorKind {
        self.kind
    }

    /// The error's message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The name of the error's type, as it appears in detailed error texts.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The text a client receives for this error under `prefix` (e.g. `An unexpected error occurred
    /// invoking 'Foo' on the server.`): the prefix alone, or with ` Type: message` appended for hub
    /// errors and, when `detailed`, for any error. This is ASP.NET Core's rule.
    pub fn client_text(&self, prefix: &str, detailed: bool) -> String {
        if self.kind == HubErrorKind::Hub || detailed {
            format!("{prefix} {}: {}", self.type_name, self.message)
        } else {
            prefix.to_owned()
        }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for HubError {
    fn from(error: E) -> Self {
        // A client result's failure keeps its text for the caller (see `ClientResultError`).
        if let Some(client) = (&error as &dyn std::any::Any).downcast_ref::<ClientResultError>() {
            return client.to_hub_error();
        }
        HubError::internal(&error)
    }
}

impl fmt::Debug for HubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubError")
            .field("kind", &self.kind)
            .field("type_name", &self.type_name)
            .field("message", &self.message)
            .finish()
    }
}

impl fmt::Display for HubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.type_name, self.message)
    }
}

fn short_type_name<T: ?Sized>() -> &'static str {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

/// How a method answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodKind {
    /// One Completion with a result (null for methods that return nothing); invoked with type 1.
    Unary,
    /// StreamItems then a Completion; invoked with type 4 (StreamInvocation).
    ServerStream,
}

/// What a server needs to know about one method before calling it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodDescriptor {
    /// The name clients invoke (matched case-insensitively).
    pub name: String,
    /// Unary or streaming.
    pub kind: MethodKind,
    /// The number of arguments the client sends in `arguments` (upload streams excluded).
    pub arguments: usize,
    /// The number of upload streams the client sends in `streamIds`.
    pub upload_streams: usize,
    /// Who may call it (besides what the hub requires to connect).
    pub authorization: Authorization,
}

/// A method's answer: a value, or (for streaming methods) a stream of values.
pub enum MethodOutput {
    /// The result of a unary method.
    Value(BoxValue),
    /// The items of a streaming method; an `Err` item ends the stream with an error.
    Stream(BoxStream<Result<BoxValue, HubError>>),
}

impl fmt::Debug for MethodOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MethodOutput::Value(_) => f.write_str("Value(..)"),
            MethodOutput::Stream(_) => f.write_str("Stream(..)"),
        }
    }
}

/// A typed upload stream: a method parameter fed by the client's `StreamItem`s.
///
/// Yields each item deserialized into `T`; an item of the wrong shape yields an `Err` (and the
/// stream goes on). Ends when the client completes the stream; a client error ends it with `Err`.
pub struct UploadStream<T> {
    raw: RawUpload,
    item: std::marker::PhantomData<fn() -> T>,
}

impl<T> UploadStream<T> {
    /// Wraps a raw upload stream.
    pub fn new(raw: RawUpload) -> Self {
        UploadStream {
            raw,
            item: std::marker::PhantomData,
        }
    }
}

impl<T> fmt::Debug for UploadStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UploadStream(..)")
    }
}

impl<T: DeserializeOwned> Stream for UploadStream<T> {
    type Item = Result<T, HubError>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.raw.as_mut().poll_next(cx).map(|item| {
            item.map(|result| {
                result.and_then(|raw| {
                    raw.deserialize::<T>().map_err(|error| {
                        HubError::new(format!("an upload stream item has the wrong type: {error}"))
                    })
                })
            })
        })
    }
}

/// A tuple of upload stream parameters, bound in order from the invocation's `streamIds`.
pub trait FromUploads: Sized {
    /// How many upload streams the tuple takes.
    const COUNT: usize;
    /// Binds the streams; the caller has checked the count.
    fn from_uploads(uploads: Vec<RawUpload>) -> Option<Self>;
}

macro_rules! tuple_from_uploads {
    ($count:expr; $($name:ident),*) => {
        impl<$($name: DeserializeOwned),*> FromUploads for ($(UploadStream<$name>,)*) {
            const COUNT: usize = $count;
            #[allow(unused_variables, unused_mut, non_snake_case)]
            fn from_uploads(uploads: Vec<RawUpload>) -> Option<Self> {
                let mut uploads = uploads.into_iter();
                $( let $name = UploadStream::new(uploads.next()?); )*
                Some(($($name,)*))
            }
        }
    };
}

tuple_from_uploads!(0;);
tuple_from_uploads!(1; A);
tuple_from_uploads!(2; A, B);
tuple_from_uploads!(3; A, B, C);
tuple_from_uploads!(4; A, B, C, D);

/// Maps a method's stream of `Result<T, E>` to the erased items a server encodes.
struct ErasedItems<S> {
    inner: Pin<Box<S>>,
}

impl<S, T, E> Stream for ErasedItems<S>
where
    S: Stream<Item = Result<T, E>>,
    T: Serialize + Send + Sync + 'static,
    E: IntoHubError,
{
    type Item = Result<BoxValue, HubError>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx).map(|item| {
            item.map(|result| match result {
                Ok(value) => Ok(Box::new(value) as BoxValue),
                Err(error) => Err(error.into_hub_error()),
            })
        })
    }
}

/// Why an invocation could not start.
#[derive(Debug)]
pub enum CallError {
    /// The arguments do not fit the method: wrong count or wrong types.
    Bind(BindError),
    /// The method ran and failed.
    Method(HubError),
    /// The caller does not meet the method's [`Authorization`]; the method did not run.
    Unauthorized,
}

impl From<HubError> for CallError {
    fn from(error: HubError) -> Self {
        CallError::Method(error)
    }
}

/// Arguments that do not fit a method's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindError {
    /// The client sent a different number of arguments.
    Count {
        /// How many the client sent.
        provided: usize,
        /// How many the method takes.
        expected: usize,
    },
    /// An argument has the wrong type or shape.
    Type {
        /// The position of the argument.
        index: usize,
        /// What serde reported.
        message: String,
    },
}

impl BindError {
    /// The detail ASP.NET Core appends when detailed errors are on.
    pub fn detail(&self) -> String {
        match self {
            BindError::Count { provided, expected } => format!(
                "InvalidDataException: Invocation provides {provided} argument(s) but target expects {expected}."
            ),
            BindError::Type { .. } => "InvalidDataException: Error binding arguments. Make sure that the types of the provided values match the types of the hub method being invoked.".to_owned(),
        }
    }
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindError::Count { provided, expected } => {
                write!(
                    f,
                    "the client sent {provided} argument(s) but the method takes {expected}"
                )
            }
            BindError::Type { index, message } => {
                write!(f, "argument {index} has the wrong type: {message}")
            }
        }
    }
}

/// A tuple of parameter types that raw arguments bind to, each deserialized straight from its
/// raw bytes.
pub trait FromArguments: Sized {
    /// How many arguments the tuple takes.
    const COUNT: usize;
    /// Binds the arguments, checking the count first.
    fn from_arguments(arguments: &Arguments) -> Result<Self, BindError>;
}

macro_rules! tuple_from_arguments {
    ($count:expr; $($name:ident $index:tt),*) => {
        impl<$($name: DeserializeOwned),*> FromArguments for ($($name,)*) {
            const COUNT: usize = $count;
            #[allow(unused_variables)]
            fn from_arguments(arguments: &Arguments) -> Result<Self, BindError> {
                if arguments.len() != $count {
                    return Err(BindError::Count { provided: arguments.len(), expected: $count });
                }
                Ok(($(
                    match arguments.get($index) {
                        Some(raw) => raw.deserialize::<$name>().map_err(|e| BindError::Type {
                            index: $index,
                            message: e.to_string(),
                        })?,
                        None => return Err(BindError::Count { provided: arguments.len(), expected: $count }),
                    },
                )*))
            }
        }
    };
}

tuple_from_arguments!(0;);
tuple_from_arguments!(1; A 0);
tuple_from_arguments!(2; A 0, B 1);
tuple_from_arguments!(3; A 0, B 1, C 2);
tuple_from_arguments!(4; A 0, B 1, C 2, D 3);
tuple_from_arguments!(5; A 0, B 1, C 2, D 3, E 4);
tuple_from_arguments!(6; A 0, B 1, C 2, D 3, E 4, F 5);
tuple_from_arguments!(7; A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_from_arguments!(8; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
tuple_from_arguments!(9; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
tuple_from_arguments!(10; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
tuple_from_arguments!(11; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
tuple_from_arguments!(12; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);

/// The object-safe interface a server dispatches invocations through.
///
/// `Cx` is the server's per-call context (cheap to clone). Implementations: [`HubMethods`] (built
/// from closures) and the code the `#[hub]` macro generates.
pub trait HubDispatch<Cx>: Send + Sync + 'static {
    /// The hub's methods; [`call`](Self::call) takes an index into this slice.
    fn methods(&self) -> &[MethodDescriptor];

    /// The index of the method a client named, compared case-insensitively as SignalR does.
    fn find(&self, name: &str) -> Option<usize>;

    /// Binds `arguments` (and the upload streams, one per stream id, in order) and runs method
    /// `index`. The server has checked the number of upload streams against the descriptor.
    fn call(
        &self,
        index: usize,
        cx: Cx,
        arguments: Arguments,
        uploads: Vec<RawUpload>,
    ) -> BoxFuture<Result<MethodOutput, CallError>>;

    /// What a connection must meet to connect at all (negotiate and every transport request
    /// are refused otherwise). Anyone by default.
    fn authorization(&self) -> Authorization {
        Authorization::anyone()
    }

    /// The hub's name in traces (`rpc.service`; spans are `{name}/{method}`), as .NET uses the
    /// hub's class name. `#[hub]` gives the trait's name; `None` (the default) lets the server
    /// use the path the hub is mapped at, without its leading `/`.
    fn name(&self) -> Option<&str> {
        None
    }

    /// Runs when a connection has completed its handshake. An error closes the connection.
    fn on_connected(&self, cx: Cx) -> BoxFuture<Result<(), HubError>> {
        let _ = cx;
        Box::pin(std::future::ready(Ok(())))
    }

    /// Runs when a connection has ended; `error` says why when the end was abnormal.
    fn on_disconnected(&self, cx: Cx, error: Option<String>) -> BoxFuture<()> {
        let _ = (cx, error);
        Box::pin(std::future::ready(()))
    }
}

type Handler<Cx> = Arc<
    dyn Fn(
            Cx,
            &Arguments,
            Vec<RawUpload>,
        ) -> Result<BoxFuture<Result<MethodOutput, CallError>>, BindError>
        + Send
        + Sync,
>;
type ConnectedHook<Cx> = Arc<dyn Fn(Cx) -> BoxFuture<Result<(), HubError>> + Send + Sync>;
type DisconnectedHook<Cx> = Arc<dyn Fn(Cx, Option<String>) -> BoxFuture<()> + Send + Sync>;

/// A hub's methods by name: descriptors in registration order, found case-insensitively.
#[derive(Debug, Clone, Default)]
pub struct MethodTable {
    descriptors: Vec<MethodDescriptor>,
    /// (case-folded name hash, method index), sorted: a lookup hashes the name once and
    /// compares the names of the methods with that hash.
    index: Vec<(u64, usize)>,
}

impl MethodTable {
    /// An empty table.
    pub fn new() -> Self {
        MethodTable::default()
    }

    /// A table of these methods, in order (a later name equal to an earlier one ignoring case
    /// replaces it).
    pub fn from_descriptors(descriptors: impl IntoIterator<Item = MethodDescriptor>) -> Self {
        let mut table = MethodTable::new();
        for descriptor in descriptors {
            table.insert(descriptor);
        }
        table
    }

    /// Adds a method, or replaces the one whose name equals it ignoring case; returns its index.
    pub fn insert(&mut self, descriptor: MethodDescriptor) -> usize {
        match self.find(&descriptor.name) {
            Some(existing) => {
                self.descriptors[existing] = descriptor;
                existing
            }
            None => {
                let index = self.descriptors.len();
                let entry = (fold_hash(&descriptor.name), index);
                let at = self.index.partition_point(|other| *other < entry);
                self.index.insert(at, entry);
                self.descriptors.push(descriptor);
                index
            }
        }
    }

    /// The methods, in order.
    pub fn descriptors(&self) -> &[MethodDescriptor] {
        &self.descriptors
    }

    /// The index of the method named `name`, compared case-insensitively as SignalR does.
    pub fn find(&self, name: &str) -> Option<usize> {
        let hash = fold_hash(name);
        let first = self.index.partition_point(|&(other, _)| other < hash);
        self.index[first..]
            .iter()
            .take_while(|&&(other, _)| other == hash)
            .map(|&(_, index)| index)
            .find(|&index| eq_ignore_case(&self.descriptors[index].name, name))
    }
}

/// A hub built from closures: register methods by name, then hand it to a server.
pub struct HubMethods<Cx> {
    table: MethodTable,
    handlers: Vec<Handler<Cx>>,
    /// What a connection must meet to connect.
    authorization: Authorization,
    on_connected: Option<ConnectedHook<Cx>>,
    on_disconnected: Option<DisconnectedHook<Cx>>,
}

impl<Cx> Default for HubMethods<Cx> {
    fn default() -> Self {
        HubMethods {
            table: MethodTable::new(),
            handlers: Vec::new(),
            authorization: Authorization::anyone(),
            on_connected: None,
            on_disconnected: None,
        }
    }
}

impl<Cx: Send + 'static> HubMethods<Cx> {
    /// A hub with no methods.
    pub fn new() -> Self {
        HubMethods::default()
    }

    /// Adds a unary method: `handler(cx, (arg1, arg2, …))` returns a future of `Result<T, E>`.
    ///
    /// A method returning `()` answers with a null result, as SignalR's void methods do. A second
    /// method whose name differs only in case replaces the first.
    pub fn method<Args, F, Fut, T, E>(self, name: impl Into<String>, handler: F) -> Self
    where
        Args: FromArguments + Send + 'static,
        F: Fn(Cx, Args) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Serialize + Send + Sync + 'static,
        E: Into<HubError> + 'static,
    {
        self.method_with_uploads(name, move |cx, args, (): ()| handler(cx, args))
    }

    /// Adds a unary method that also takes upload streams: `handler(cx, (args…), (uploads…))`,
    /// where each upload is an [`UploadStream<T>`] bound from the invocation's stream ids.
    pub fn method_with_uploads<Args, U, F, Fut, T, E>(
        self,
        name: impl Into<String>,
        handler: F,
    ) -> Self
    where
        Args: FromArguments + Send + 'static,
        U: FromUploads + Send + 'static,
        F: Fn(Cx, Args, U) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Serialize + Send + Sync + 'static,
        E: Into<HubError> + 'static,
    {
        self.register(name, MethodKind::Unary, handler, |value: T| {
            MethodOutput::Value(Box::new(value))
        })
    }

    /// Adds a streaming method: `handler(cx, (args…))` returns a future of a stream of
    /// `Result<T, E>` items. Clients call it with `stream()` (a StreamInvocation); an `Err` item
    /// ends the stream with an error.
    pub fn stream<Args, F, Fut, S, T, E, E2>(self, name: impl Into<String>, handler: F) -> Self
    where
        Args: FromArguments + Send + 'static,
        F: Fn(Cx, Args) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<S, E>> + Send + 'static,
        S: Stream<Item = Result<T, E2>> + Send + 'static,
        T: Serialize + Send + Sync + 'static,
        E: Into<HubError> + 'static,
        E2: Into<HubError> + 'static,
    {
        self.stream_with_uploads(name, move |cx, args, (): ()| handler(cx, args))
    }

    /// Adds a streaming method that also takes upload streams.
    pub fn stream_with_uploads<Args, U, F, Fut, S, T, E, E2>(
        self,
        name: impl Into<String>,
        handler: F,
    ) -> Self
    where
        Args: FromArguments + Send + 'static,
        U: FromUploads + Send + 'static,
        F: Fn(Cx, Args, U) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<S, E>> + Send + 'static,
        S: Stream<Item = Result<T, E2>> + Send + 'static,
        T: Serialize + Send + Sync + 'static,
        E: Into<HubError> + 'static,
        E2: Into<HubError> + 'static,
    {
        self.register(name, MethodKind::ServerStream, handler, |stream: S| {
            MethodOutput::Stream(Box::pin(ErasedItems {
                inner: Box::pin(stream),
            }))
        })
    }

    /// Registers a method whose handler's success value becomes a [`MethodOutput`] through
    /// `into_output`.
    fn register<Args, U, F, Fut, R, E>(
        mut self,
        name: impl Into<String>,
        kind: MethodKind,
        handler: F,
        into_output: fn(R) -> MethodOutput,
    ) -> Self
    where
        Args: FromArguments + Send + 'static,
        U: FromUploads + Send + 'static,
        F: Fn(Cx, Args, U) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
        R: 'static,
        E: Into<HubError> + 'static,
    {
        let descriptor = MethodDescriptor {
            name: name.into(),
            kind,
            arguments: Args::COUNT,
            upload_streams: U::COUNT,
            authorization: Authorization::anyone(),
        };
        let handler: Handler<Cx> = Arc::new(move |cx, arguments, uploads| {
            let args = Args::from_arguments(arguments)?;
            let uploads = bind_uploads::<U>(uploads)?;
            let future = handler(cx, args, uploads);
            Ok(Box::pin(async move {
                match future.await {
                    Ok(value) => Ok(into_output(value)),
                    Err(error) => Err(CallError::Method(error.into())),
                }
            }) as BoxFuture<_>)
        });
        self.insert(descriptor, handler);
        self
    }

    /// Requires `requirement` of whoever calls the method named `method` (registered before;
    /// requirements add up). An unknown name is a programming error and panics.
    ///
    /// # Panics
    ///
    /// When no method is named `method` (ignoring case).
    pub fn authorize(mut self, method: &str, requirement: Requirement) -> Self {
        match self.table.find(method) {
            Some(index) => {
                let descriptor = &mut self.table.descriptors[index];
                descriptor.authorization =
                    std::mem::take(&mut descriptor.authorization).and(requirement);
            }
            None => {
                panic!("HubMethods::authorize: no method is named `{method}`; register it first")
            }
        }
        self
    }

    /// Requires `requirement` of every connection: negotiate and transport requests are refused
    /// (401 for anonymous users, 403 for others) when it does not hold.
    pub fn authorize_hub(mut self, requirement: Requirement) -> Self {
        self.authorization = std::mem::take(&mut self.authorization).and(requirement);
        self
    }

    /// Runs `hook` after each connection's handshake; an error closes that connection.
    pub fn on_connected<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Cx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HubError>> + Send + 'static,
    {
        self.on_connected = Some(Arc::new(move |cx| Box::pin(hook(cx))));
        self
    }

    /// Runs `hook` when each connection ends, with the error when the end was abnormal.
    pub fn on_disconnected<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Cx, Option<String>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_disconnected = Some(Arc::new(move |cx, error| Box::pin(hook(cx, error))));
        self
    }

    fn insert(&mut self, descriptor: MethodDescriptor, handler: Handler<Cx>) {
        let index = self.table.insert(descriptor);
        if index == self.handlers.len() {
            self.handlers.push(handler);
        } else {
            self.handlers[index] = handler;
        }
    }
}

impl<Cx: Send + 'static> HubDispatch<Cx> for HubMethods<Cx> {
    fn methods(&self) -> &[MethodDescriptor] {
        self.table.descriptors()
    }

    fn authorization(&self) -> Authorization {
        self.authorization.clone()
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.table.find(name)
    }

    fn call(
        &self,
        index: usize,
        cx: Cx,
        arguments: Arguments,
        uploads: Vec<RawUpload>,
    ) -> BoxFuture<Result<MethodOutput, CallError>> {
        match self.handlers.get(index) {
            Some(handler) => match handler(cx, &arguments, uploads) {
                Ok(future) => future,
                Err(bind) => Box::pin(std::future::ready(Err(CallError::Bind(bind)))),
            },
            None => Box::pin(std::future::ready(Err(CallError::Method(HubError::new(
                "Method does not exist.",
            ))))),
        }
    }

    fn on_connected(&self, cx: Cx) -> BoxFuture<Result<(), HubError>> {
        match &self.on_connected {
            Some(hook) => hook(cx),
            None => Box::pin(std::future::ready(Ok(()))),
        }
    }

    fn on_disconnected(&self, cx: Cx, error: Option<String>) -> BoxFuture<()> {
        match &self.on_disconnected {
            Some(hook) => hook(cx, error),
            None => Box::pin(std::future::ready(())),
        }
    }
}

fn bind_uploads<U: FromUploads>(uploads: Vec<RawUpload>) -> Result<U, BindError> {
    let provided = uploads.len();
    U::from_uploads(uploads).ok_or(BindError::Count {
        provided,
        expected: U::COUNT,
    })
}

/// A hash of `name` that ignores case: equal for names equal under [`eq_ignore_case`] (FNV-1a
/// over the lowercase code points; ASCII names, the usual ones, without decoding chars). Not
/// keyed: the table holds the hub's own names, a client only looks names up.
fn fold_hash(name: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let step = |hash: u64, c: u32| (hash ^ u64::from(c)).wrapping_mul(PRIME);
    if name.is_ascii() {
        name.bytes().fold(OFFSET, |hash, b| {
            step(hash, u32::from(b.to_ascii_lowercase()))
        })
    } else {
        name.chars()
            .flat_map(char::to_lowercase)
            .fold(OFFSET, |hash, c| step(hash, u32::from(c)))
    }
}

/// Compares two names ignoring case (Unicode lowercase folding; ASCII fast path).
fn eq_ignore_case(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::protocol::{Format, RawValue};

    fn block_on<F: Future>(future: F) -> F::Output {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let std::task::Poll::Ready(value) = future.as_mut().poll(&mut cx) {
                return value;
            }
        }
    }

    fn args(values: &[&str]) -> Arguments {
        Arguments::from(
            values
                .iter()
                .map(|v| RawValue::from_json(v.to_string()).unwrap())
                .collect::<Vec<_>>(),
        )
    }

    fn hub() -> HubMethods<u32> {
        HubMethods::new()
            .method("SendMessage", |cx: u32, (text,): (String,)| async move {
                Ok::<_, HubError>(format!("{cx}:{text}"))
            })
            .method("Void", |_, (): ()| async { Ok::<_, HubError>(()) })
            .method("Parse", |_, (text,): (String,)| async move {
                Ok::<i32, HubError>(text.parse::<i32>()?)
            })
            .method("Ünïcode", |_, (): ()| async { Ok::<_, HubError>(1) })
    }

    fn json_of(output: MethodOutput) -> String {
        let MethodOutput::Value(value) = output else {
            panic!("a value")
        };
        String::from_utf8(
            RawValue::encode(&*value, Format::Json)
                .unwrap()
                .as_bytes()
                .to_vec(),
        )
        .unwrap()
    }

    #[test]
    fn names_equal_ignoring_case_hash_alike_whether_ascii_or_not() {
        // The Kelvin sign lowercases to an ASCII 'k': the ASCII fast path must agree with the
        // Unicode one.
        assert_eq!(fold_hash("Kick"), fold_hash("\u{212A}ick"));
        assert_eq!(fold_hash("SendMessage"), fold_hash("sendmessage"));
        assert_eq!(fold_hash("ÜNÏCODE"), fold_hash("ünïcode"));
        assert_ne!(fold_hash("send"), fold_hash("sned"));
        let table = MethodTable::from_descriptors(["Kick", "Other", "ünïcode"].map(|name| {
            MethodDescriptor {
                name: name.to_owned(),
                kind: MethodKind::Unary,
                arguments: 0,
                upload_streams: 0,
                authorization: Authorization::anyone(),
            }
        }));
        assert_eq!(table.find("\u{212A}ICK"), Some(0));
        assert_eq!(table.find("OTHER"), Some(1));
        assert_eq!(table.find("ÜNÏCODE"), Some(2));
        assert_eq!(table.find("Kicks"), None);
    }

    #[test]
    fn lookup_ignores_case() {
        let hub = hub();
        assert_eq!(hub.find("sendmessage"), Some(0));
        assert_eq!(hub.find("SENDMESSAGE"), Some(0));
        assert_eq!(hub.find("ÜNÏCODE"), Some(3));
        assert_eq!(hub.find("SendMessages"), None);
        assert_eq!(hub.methods()[0].arguments, 1);
    }

    #[test]
    fn arguments_bind_straight_into_parameters() {
        let hub = hub();
        let out = block_on(hub.call(0, 7, args(&[r#""hi""#]), Vec::new())).unwrap();
        assert_eq!(json_of(out), r#""7:hi""#);
        let out = block_on(hub.call(1, 7, args(&[]), Vec::new())).unwrap();
        assert_eq!(
            json_of(out),
            "null",
            "void methods answer with a null result"
        );
    }

    #[test]
    fn binding_errors_say_what_went_wrong() {
        let hub = hub();
        let Err(CallError::Bind(count)) = block_on(hub.call(0, 7, args(&["1", "2"]), Vec::new()))
        else {
            panic!()
        };
        assert_eq!(
            count,
            BindError::Count {
                provided: 2,
                expected: 1
            }
        );
        assert_eq!(
            count.detail(),
            "InvalidDataException: Invocation provides 2 argument(s) but target expects 1."
        );
        let Err(CallError::Bind(BindError::Type { index: 0, .. })) =
            block_on(hub.call(0, 7, args(&["1"]), Vec::new()))
        else {
            panic!()
        };
    }

    #[test]
    fn errors_render_like_asp_net() {
        let prefix = "An unexpected error occurred invoking 'Parse' on the server.";
        let Err(CallError::Method(error)) =
            block_on(hub().call(2, 0, args(&[r#""x""#]), Vec::new()))
        else {
            panic!()
        };
        assert_eq!(error.kind(), HubErrorKind::Internal);
        assert_eq!(error.client_text(prefix, false), prefix);
        assert_eq!(
            error.client_text(prefix, true),
            format!("{prefix} ParseIntError: invalid digit found in string")
        );
        let hub_error = HubError::new("nope");
        assert_eq!(
            hub_error.client_text(prefix, false),
            format!("{prefix} HubException: nope")
        );
    }
}
