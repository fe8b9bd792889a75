//! An in-process client of a [`TestHub`](super::TestHub): invokes through the real protocol and
//! receives callbacks.

use std::collections::VecDeque;

use std::marker::PhantomData;

use std::sync::Arc;

use bytes::Bytes;
use hub_core::hub::{BindError, BoxValue, HubError};

use hub_core::protocol::handshake::{HandshakeRequest, HandshakeResponse};
use hub_core::protocol::{
    Completion, CompletionOutcome, EncodeArguments, EncodeMessage, FrameDecoder, Headers,
    HubMessage, HubProtocol, Invocation, MessageRef, OutcomeRef, Protocol, StreamInvocation,
};

use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clients::{ClientCallbacks, ClientProxy};
use crate::clients::{Context, InvocationCancellation};

use crate::endpoint::Endpoint;
use crate::lifetime::LifetimeError;

use super::*;

/// One connection to a [`TestHub`].
pub struct TestClient<C: ClientCallbacks = ClientProxy> {
    pub(super) id: String,
    pub(super) endpoint: Arc<Endpoint>,
    pub(super) protocol: Protocol,
    pub(super) to_server: Option<mpsc::Sender<Bytes>>,
    pub(super) from_server: mpsc::Receiver<Bytes>,
    pub(super) decoder: FrameDecoder,
    pub(super) callbacks: VecDeque<Callback>,
    pub(super) handler: Option<ErasedHandler>,
    pub(super) next_id: u64,
    /// The connection's lifecycle on the hub's side.
    pub(super) task: Option<tokio::task::JoinHandle<()>>,
    pub(super) family: PhantomData<fn() -> C>,
    /// Headers every invocation carries (e.g. a `traceparent`).
    pub(super) headers: Headers,
}

impl<C: ClientCallbacks> TestClient<C> {
    /// Sends `headers` with every later invocation, as a client sends its trace context
    /// (`traceparent`).
    pub fn set_invocation_headers(&mut self, headers: Headers) {
        self.headers = headers;
    }

    /// The connection id (`cx.connection_id()` in the hub).
    pub fn connection_id(&self) -> &str {
        &self.id
    }

    /// A context for this connection, to call the hub trait's methods directly
    /// (`hub.send(client.context(), …)`) with the callbacks still reaching this client.
    pub fn context<D: ClientCallbacks>(&self) -> Result<Context<D>, TestError> {
        let connection = self
            .endpoint
            .manager
            .connection(&self.id)
            .ok_or(TestError::Closed(None))?;
        Ok(Context::new(
            connection.inner,
            self.endpoint.context.clone(),
            Arc::new(InvocationCancellation::from_token(CancellationToken::new())),
        )
        .typed())
    }

    /// Adds this connection to `group`.
    pub async fn join(&self, group: &str) -> Result<(), LifetimeError> {
        self.endpoint.manager.add_to_group(&self.id, group).await
    }

    /// Removes this connection from `group`.
    pub async fn leave(&self, group: &str) -> Result<(), LifetimeError> {
        self.endpoint
            .manager
            .remove_from_group(&self.id, group)
            .await
    }

    /// Hands every callback from now on (and those already received) to `handler`, an
    /// implementation of the hub's `#[hub_client]` trait; client results are answered with what
    /// it returns.
    pub async fn handle_with<H>(&mut self, handler: H) -> Result<(), TestError>
    where
        C: Deliver<H>,
        H: Send + Sync + 'static,
    {
        let handler = Arc::new(handler);
        self.handler = Some(Box::new(move |target, arguments| {
            let handler = handler.clone();
            let arguments = arguments.clone();
            let target = target.to_owned();
            let delivery: Delivery<'static> = Box::pin(async move {
                match C::deliver(&*handler, &target, &arguments) {
                    Some(delivery) => delivery.await,
                    None => Err(BindError::Type {
                        index: 0,
                        message: format!("the client trait has no callback `{target}`"),
                    }),
                }
            });
            Some(delivery)
        }));
        while let Some(callback) = self.callbacks.pop_front() {
            self.deliver(callback).await?;
        }
        Ok(())
    }

    /// Calls `method` and waits for its result (`()` for methods that return nothing).
    /// Callbacks that arrive meanwhile go to the handler, or wait in order for
    /// [`next_callback`](Self::next_callback).
    pub async fn invoke<R: DeserializeOwned>(
        &mut self,
        method: &str,
        arguments: impl EncodeArguments,
    ) -> Result<R, TestError> {
        let id = self.new_id();
        let mut invocation = Invocation::new(method, arguments).with_id(id.as_str());
        invocation.headers = self.headers.clone();
        self.send_message(&invocation).await?;
        loop {
            match self.next_message().await? {
                HubMessage::Completion(completion) if *completion.invocation_id == *id => {
                    return match completion.outcome {
                        CompletionOutcome::Result(raw) => raw
                            .deserialize()
                            .map_err(|error| TestError::WrongType(error.to_string())),
                        CompletionOutcome::NoResult => serde_json::from_str("null")
                            .map_err(|error| TestError::WrongType(error.to_string())),
                        CompletionOutcome::Error(text) => Err(TestError::Hub(text.to_string())),
                    };
                }
                other => self.unexpected(other).await?,
            }
        }
    }

    /// Calls `method` without waiting (a non-blocking invocation: the hub answers nothing).
    pub async fn send(
        &mut self,
        method: &str,
        arguments: impl EncodeArguments,
    ) -> Result<(), TestError> {
        let mut invocation = Invocation::new(method, arguments);
        invocation.headers = self.headers.clone();
        self.send_message(&invocation).await
    }

    /// Calls streaming `method` and collects its items until the stream completes.
    pub async fn stream<T: DeserializeOwned>(
        &mut self,
        method: &str,
        arguments: impl EncodeArguments,
    ) -> Result<Vec<T>, TestError> {
        let id = self.new_id();
        let mut invocation = StreamInvocation::new(id.as_str(), method, arguments);
        invocation.headers = self.headers.clone();
        self.send_message(&invocation).await?;
        let mut items = Vec::new();
        loop {
            match self.next_message().await? {
                HubMessage::StreamItem(item) if *item.invocation_id == *id => items.push(
                    item.item
                        .deserialize()
                        .map_err(|error| TestError::WrongType(error.to_string()))?,
                ),
                HubMessage::Completion(completion) if *completion.invocation_id == *id => {
                    return match completion.outcome {
                        CompletionOutcome::Error(text) => Err(TestError::Hub(text.to_string())),
                        _ => Ok(items),
                    };
                }
                other => self.unexpected(other).await?,
            }
        }
    }

    /// The next callback the hub sent this client (waiting up to five seconds), when no handler
    /// is set.
    pub async fn next_callback(&mut self) -> Result<Callback, TestError> {
        loop {
            if let Some(callback) = self.callbacks.pop_front() {
                return Ok(callback);
            }
            let message = self.next_message().await?;
            self.unexpected(message).await?;
        }
    }

    /// The next callback already received, without waiting.
    pub fn try_next_callback(&mut self) -> Option<Callback> {
        while let Ok(bytes) = self.from_server.try_recv() {
            self.decoder.push(bytes);
        }
        while let Ok(Some(frame)) = self.decoder.next_frame() {
            if let Ok(Some(HubMessage::Invocation(invocation))) = self.protocol.decode(frame) {
                self.callbacks.push_back(callback(invocation));
            }
        }
        self.callbacks.pop_front()
    }

    /// Waits for the next callback and hands it to `handler` (an implementation of the hub's
    /// `#[hub_client]` trait), answering client results with its return value. Returns the
    /// callback's name.
    pub async fn receive<H>(&mut self, handler: &H) -> Result<String, TestError>
    where
        C: Deliver<H>,
    {
        let callback = self.next_callback().await?;
        let delivery =
            C::deliver(handler, &callback.target, &callback.arguments).ok_or_else(|| {
                TestError::Callback(format!(
                    "the client trait has no callback `{}`",
                    callback.target
                ))
            })?;
        let result = delivery.await;
        self.finish(&callback, result).await?;
        Ok(callback.target)
    }

    /// Answers a client result (a callback with an invocation id) with `result`.
    pub async fn answer<T: serde::Serialize>(
        &mut self,
        callback: &Callback,
        result: T,
    ) -> Result<(), TestError> {
        match &callback.invocation_id {
            Some(id) => {
                self.send_message(&Completion::result(id.as_str(), result))
                    .await
            }
            None => Err(TestError::Callback(format!(
                "`{}` is not a client result; there is nothing to answer",
                callback.target
            ))),
        }
    }

    /// Closes the connection, as a client going away, and waits until the hub has let go of it
    /// (its `on_disconnected` hook has run).
    pub async fn close(mut self) {
        self.to_server = None;
        self.from_server.close();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(WAIT, task).await;
        }
    }

    fn new_id(&mut self) -> String {
        self.next_id += 1;
        self.next_id.to_string()
    }

    pub(super) async fn handshake(&mut self) -> Result<(), TestError> {
        let mut request = Vec::new();
        HandshakeRequest::new(self.protocol.name(), 1).encode(&mut request);
        self.send_bytes(request.into()).await?;
        let frame = loop {
            if let Some(frame) = self.decoder.next_frame()? {
                break frame;
            }
            let bytes = self.recv_bytes().await?;
            self.decoder.push(bytes);
        };
        match HandshakeResponse::parse(&frame)? {
            HandshakeResponse::Accepted => {
                self.decoder.set_framing(self.protocol.framing());
                Ok(())
            }
            HandshakeResponse::Rejected(error) => Err(TestError::Closed(Some(error))),
        }
    }

    async fn send_message(&mut self, message: &dyn EncodeMessage) -> Result<(), TestError> {
        let bytes = self.protocol.encode_to_bytes(message)?;
        self.send_bytes(bytes).await
    }

    async fn send_bytes(&mut self, bytes: Bytes) -> Result<(), TestError> {
        let sender = self.to_server.as_ref().ok_or(TestError::Closed(None))?;
        sender
            .send(bytes)
            .await
            .map_err(|_| TestError::Closed(None))
    }

    async fn recv_bytes(&mut self) -> Result<Bytes, TestError> {
        match tokio::time::timeout(WAIT, self.from_server.recv()).await {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => Err(TestError::Closed(None)),
            Err(_) => Err(TestError::Timeout),
        }
    }

    /// The next message that is not a Ping.
    async fn next_message(&mut self) -> Result<HubMessage, TestError> {
        loop {
            while let Some(frame) = self.decoder.next_frame()? {
                match self.protocol.decode(frame)? {
                    Some(HubMessage::Ping) | None => {}
                    Some(HubMessage::Close(close)) => {
                        return Err(TestError::Closed(
                            close.error.map(|error| error.to_string()),
                        ))
                    }
                    Some(message) => return Ok(message),
                }
            }
            let bytes = self.recv_bytes().await?;
            self.decoder.push(bytes);
        }
    }

    /// A message that is not the answer being waited for: callbacks are delivered or queued.
    async fn unexpected(&mut self, message: HubMessage) -> Result<(), TestError> {
        if let HubMessage::Invocation(invocation) = message {
            let callback = callback(invocation);
            if self.handler.is_some() {
                self.deliver(callback).await?;
            } else {
                self.callbacks.push_back(callback);
            }
        }
        Ok(())
    }

    async fn deliver(&mut self, callback: Callback) -> Result<(), TestError> {
        let Some(delivery) = self
            .handler
            .as_ref()
            .and_then(|handler| handler(&callback.target, &callback.arguments))
        else {
            return Ok(());
        };
        let result = delivery.await;
        self.finish(&callback, result).await
    }

    /// Sends a client result's Completion (with the handler's value or error).
    async fn finish(
        &mut self,
        callback: &Callback,
        result: Result<Option<BoxValue>, BindError>,
    ) -> Result<(), TestError> {
        let Some(id) = &callback.invocation_id else {
            return result
                .map(|_| ())
                .map_err(|error| TestError::Callback(error.to_string()));
        };
        match result {
            Ok(Some(value)) => {
                self.send_message(&MessageRef::Completion {
                    headers: &Headers::new(),
                    invocation_id: id,
                    outcome: OutcomeRef::Result(&*value),
                })
                .await
            }
            Ok(None) => {
                self.send_message(&Completion::result(id.as_str(), ()))
                    .await
            }
            Err(error) => {
                let text = HubError::new(error.to_string()).to_string();
                self.send_message(&Completion::<()>::error(id.as_str(), text))
                    .await
            }
        }
    }
}

pub(super) fn callback(invocation: Invocation) -> Callback {
    Callback {
        target: invocation.target.to_string(),
        arguments: invocation.arguments,
        invocation_id: invocation.invocation_id.map(|id| id.to_string()),
    }
}
