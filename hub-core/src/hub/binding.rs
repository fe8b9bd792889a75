//! How a typed method meets the wire: parameters bound from an invocation ([`FromCall`]), values a
//! caller passes where a callback expects a type ([`AsArgument`]), and the results a method
//! returns turned into a [`MethodOutput`].
//!
//! These are the pieces the `#[hub]` macro's generated code calls; each is public so a hub can be
//! written by hand the same way.
//!
//! ```
//! use hub_core::hub::{bind_call, value_output, HubError, MethodOutput, ParameterSource, UploadStream};
//! use hub_core::protocol::{Arguments, RawValue};
//!
//! // A parameter's source comes from its type: plain values are sent by the client, upload
//! // streams arrive through `streamIds`.
//! assert_eq!(<String as hub_core::hub::FromCall<()>>::SOURCE, ParameterSource::Argument);
//! assert_eq!(<UploadStream<i32> as hub_core::hub::FromCall<()>>::SOURCE, ParameterSource::Upload);
//!
//! let args = Arguments::from(vec![RawValue::from_json("2")?, RawValue::from_json("3")?]);
//! let _call = bind_call((), &args, Vec::new(), 2, |parts| {
//!     Ok((parts.bind::<i64>()?, parts.bind::<i64>()?))
//! }, |(a, b)| async move { value_output(a + b) });
//! # Ok::<(), hub_core::ProtocolError>(())
//! ```

use std::future::Future;

use futures_core::Stream;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{
    BindError, BoxFuture, CallError, ClientError, ErasedItems, HubError, MethodOutput, RawUpload,
    UploadStream,
};
use crate::protocol::Arguments;

/// Where a hub method parameter's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParameterSource {
    /// One element of the invocation's `arguments`, deserialized into the parameter's type.
    Argument,
    /// One of the invocation's upload streams (`streamIds`), in order.
    Upload,
    /// The server's context for the call (connection, clients, groups, cancellation, …); the
    /// client sends nothing for it.
    Context,
}

impl ParameterSource {
    /// 1 for arguments, else 0: summed over a method's parameters, the number of arguments a client
    /// sends.
    pub const fn arguments(self) -> usize {
        matches!(self, ParameterSource::Argument) as usize
    }

    /// 1 for upload streams, else 0: summed, the number of stream ids a client sends.
    pub const fn uploads(self) -> usize {
        matches!(self, ParameterSource::Upload) as usize
    }
}

/// The parts of one invocation that a method's parameters are bound from, in declaration order.
pub struct CallParts<'a, Cx> {
    cx: &'a Cx,
    arguments: &'a Arguments,
    next_argument: usize,
    uploads: std::vec::IntoIter<RawUpload>,
}

impl<'a, Cx> CallParts<'a, Cx> {
    /// The parts of an invocation whose argument count has been checked.
    pub fn new(cx: &'a Cx, arguments: &'a Arguments, uploads: Vec<RawUpload>) -> Self {
        CallParts {
            cx,
            arguments,
            next_argument: 0,
            uploads: uploads.into_iter(),
        }
    }

    /// The server's context for the call.
    pub fn context(&self) -> &'a Cx {
        self.cx
    }

    /// Deserializes the next argument into `T`.
    pub fn bind<T: DeserializeOwned>(&mut self) -> Result<T, BindError> {
        let index = self.next_argument;
        self.next_argument += 1;
        let raw = self.arguments.get(index).ok_or(BindError::Count {
            provided: self.arguments.len(),
            expected: index + 1,
        })?;
        raw.deserialize::<T>().map_err(|error| BindError::Type {
            index,
            message: error.to_string(),
        })
    }

    /// Takes the next upload stream.
    pub fn upload(&mut self) -> Result<RawUpload, BindError> {
        let provided = self.uploads.len();
        self.uploads.next().ok_or(BindError::Count {
            provided,
            expected: provided + 1,
        })
    }
}

/// A type a hub method parameter can have: it says where its value comes from and binds it.
///
/// Implemented for every `DeserializeOwned` type (an argument the client sends), for
/// [`UploadStream<T>`] (a client-to-server stream), and by the server for its context types.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a parameter of a hub method",
    label = "not something a client sends, nor a context the server provides",
    note = "a parameter is a value the client sends (derive `serde::Deserialize` for it), an `UploadStream<T>`, or one of the server's context types (`Context`, `CallerClients`, `Groups`, `HubContext`, `Cancellation`, `RequestInfo`)"
)]
pub trait FromCall<Cx>: Sized {
    /// Where the value comes from.
    const SOURCE: ParameterSource;

    /// The type the client sees: the argument's own type, an upload stream's item type, `()` for
    /// context parameters. Code generators describe the parameter by it.
    type Wire;

    /// Binds the parameter from the call.
    fn from_call(parts: &mut CallParts<'_, Cx>) -> Result<Self, BindError>;
}

impl<Cx, T: DeserializeOwned> FromCall<Cx> for T {
    const SOURCE: ParameterSource = ParameterSource::Argument;
    type Wire = T;

    fn from_call(parts: &mut CallParts<'_, Cx>) -> Result<Self, BindError> {
        parts.bind()
    }
}

impl<Cx, T: DeserializeOwned> FromCall<Cx> for UploadStream<T> {
    const SOURCE: ParameterSource = ParameterSource::Upload;
    type Wire = T;

    fn from_call(parts: &mut CallParts<'_, Cx>) -> Result<Self, BindError> {
        parts.upload().map(UploadStream::new)
    }
}

/// Binds an invocation and starts a method: checks the argument count, runs `bind` over the
/// parameters in order, then `run` with what it bound. A binding error never starts the method;
/// the returned future yields it as [`CallError::Bind`].
pub fn bind_call<Cx, P, B, R, Fut>(
    cx: Cx,
    arguments: &Arguments,
    uploads: Vec<RawUpload>,
    expected_arguments: usize,
    bind: B,
    run: R,
) -> BoxFuture<Result<MethodOutput, CallError>>
where
    B: FnOnce(&mut CallParts<'_, Cx>) -> Result<P, BindError>,
    R: FnOnce(P) -> Fut,
    Fut: Future<Output = Result<MethodOutput, CallError>> + Send + 'static,
{
    if arguments.len() != expected_arguments {
        return bind_failed(BindError::Count {
            provided: arguments.len(),
            expected: expected_arguments,
        });
    }
    let mut parts = CallParts::new(&cx, arguments, uploads);
    match bind(&mut parts) {
        Ok(parameters) => Box::pin(run(parameters)),
        Err(error) => bind_failed(error),
    }
}

/// Binds the parameters of a connection hook, which the client sends nothing for: only context
/// parameters fit (anything else is an error naming it).
pub fn bind_context<Cx, P>(
    cx: &Cx,
    bind: impl FnOnce(&mut CallParts<'_, Cx>) -> Result<P, BindError>,
) -> Result<P, HubError> {
    let arguments = Arguments::from(Vec::new());
    let mut parts = CallParts::new(cx, &arguments, Vec::new());
    bind(&mut parts).map_err(|error| {
        HubError::new(format!(
            "a connection hook can take only context parameters: {error}"
        ))
    })
}

/// The result of a fallible connection hook.
pub fn hook_result<E: IntoHubError>(result: Result<(), E>) -> Result<(), HubError> {
    result.map_err(IntoHubError::into_hub_error)
}

/// The answer for a method index the hub does not have.
pub fn unknown_method() -> BoxFuture<Result<MethodOutput, CallError>> {
    Box::pin(std::future::ready(Err(CallError::Method(HubError::new(
        "Method does not exist.",
    )))))
}

fn bind_failed(error: BindError) -> BoxFuture<Result<MethodOutput, CallError>> {
    Box::pin(std::future::ready(Err(CallError::Bind(error))))
}

/// An error a hub method may return: anything that converts into [`HubError`], the text the
/// caller sees (every `std::error::Error`, whose `Display` text is sent, and `HubError` itself).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the error type of a hub method",
    label = "does not convert into `HubError`, the error text a caller sees",
    note = "return `Result<T, HubError>` and `Err(HubError::new(text))` (for a `String`: `.map_err(HubError::new)`), use an error type that implements `std::error::Error` or `Into<HubError>`, or an error enum the caller receives typed (`impl hub_server::ClientError for MyError {{}}`)"
)]
pub trait IntoHubError {
    /// The error as the caller will see it.
    fn into_hub_error(self) -> HubError;
}

impl<E: Into<HubError>> IntoHubError for E {
    fn into_hub_error(self) -> HubError {
        self.into()
    }
}

/// Picks how a hub method's error becomes a [`HubError`]: a [`ClientError`] with
/// [`HubError::typed`] (its value reaches the clients that read it), anything else as the
/// method's error type says ([`IntoHubError`]). Generated code calls
/// `(&ErrorProbe::new(error)).hub_error()` with [`TypedErrorProbe`] and [`PlainErrorProbe`] in
/// scope; the first applies when the type is a `ClientError` (autoref specialisation).
pub struct ErrorProbe<E>(std::cell::Cell<Option<E>>);

impl<E> ErrorProbe<E> {
    /// Holds `error` until it is converted.
    pub fn new(error: E) -> Self {
        ErrorProbe(std::cell::Cell::new(Some(error)))
    }

    fn take(&self) -> Option<E> {
        self.0.take()
    }
}

/// The conversion of [`ClientError`]s (see [`ErrorProbe`]).
pub trait TypedErrorProbe {
    /// The error as a typed [`HubError`].
    fn hub_error(&self) -> HubError;
}

impl<E: ClientError> TypedErrorProbe for ErrorProbe<E> {
    fn hub_error(&self) -> HubError {
        match self.take() {
            Some(error) => HubError::typed(&error),
            None => HubError::internal("a hub method's error was converted twice"),
        }
    }
}

/// The conversion of every other error type (see [`ErrorProbe`]).
pub trait PlainErrorProbe {
    /// The method's error type.
    type Error;
    /// The error through [`IntoHubError`].
    fn hub_error(&self) -> HubError
    where
        Self::Error: IntoHubError;
}

impl<E> PlainErrorProbe for &ErrorProbe<E> {
    type Error = E;
    fn hub_error(&self) -> HubError
    where
        E: IntoHubError,
    {
        match self.take() {
            Some(error) => error.into_hub_error(),
            None => HubError::internal("a hub method's error was converted twice"),
        }
    }
}

/// The output of a method that returns a plain value (`()` answers with a null result).
pub fn value_output<T>(value: T) -> Result<MethodOutput, CallError>
where
    T: Serialize + Send + Sync + 'static,
{
    Ok(MethodOutput::Value(Box::new(value)))
}

/// The output of a method that returns `Result<T, E>`.
pub fn result_output<T, E>(result: Result<T, E>) -> Result<MethodOutput, CallError>
where
    T: Serialize + Send + Sync + 'static,
    E: IntoHubError,
{
    match result {
        Ok(value) => value_output(value),
        Err(error) => Err(CallError::Method(error.into_hub_error())),
    }
}

/// The output of a streaming method whose items cannot fail.
pub fn stream_output<S, T>(stream: S) -> Result<MethodOutput, CallError>
where
    S: Stream<Item = T> + Send + 'static,
    T: Serialize + Send + Sync + 'static,
{
    fallible_stream_output(InfallibleItems {
        inner: Box::pin(stream),
    })
}

/// The output of a streaming method whose items are `Result<T, E>`; an `Err` ends the stream with
/// an error.
pub fn fallible_stream_output<S, T, E>(stream: S) -> Result<MethodOutput, CallError>
where
    S: Stream<Item = Result<T, E>> + Send + 'static,
    T: Serialize + Send + Sync + 'static,
    E: IntoHubError,
{
    Ok(MethodOutput::Stream(Box::pin(ErasedItems {
        inner: Box::pin(stream),
    })))
}

/// Lifts a method's `Result<S, E>` (a stream that may fail to start) into its output through
/// `output`.
pub fn try_output<V, E>(
    result: Result<V, E>,
    output: impl FnOnce(V) -> Result<MethodOutput, CallError>,
) -> Result<MethodOutput, CallError>
where
    E: IntoHubError,
{
    match result {
        Ok(value) => output(value),
        Err(error) => Err(CallError::Method(error.into_hub_error())),
    }
}

/// Wraps each item of a stream in `Ok`.
struct InfallibleItems<S> {
    inner: std::pin::Pin<Box<S>>,
}

impl<S: Stream> Stream for InfallibleItems<S> {
    type Item = Result<S::Item, HubError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx).map(|item| item.map(Ok))
    }
}

/// A value that goes on the wire as an argument of type `T`: `T` itself, a reference to it, or a
/// borrowed form (`&str` for `String`, `&[T]` for `Vec<T>`, `Option<&T>` for `Option<T>`).
///
/// Typed client proxies take their arguments as `impl AsArgument<T>`, so a broadcast can send
/// borrowed data without cloning it, while the type stays the one the callback declares.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be sent where the callback expects `{T}`",
    label = "expected `{T}`, a reference to it, or its borrowed form",
    note = "pass a `{T}` (or `&{T}`); `&str` works for `String`, `&[T]` for `Vec<T>`, `Option<&T>` for `Option<T>`"
)]
pub trait AsArgument<T: ?Sized>: Serialize {}

impl<T: Serialize> AsArgument<T> for T {}
impl<T: Serialize + ?Sized> AsArgument<T> for &T {}
impl AsArgument<String> for &str {}
impl AsArgument<String> for &mut str {}
impl<T: Serialize> AsArgument<Vec<T>> for &[T] {}
impl<T: Serialize> AsArgument<Option<T>> for Option<&T> {}
impl AsArgument<Option<String>> for Option<&str> {}
