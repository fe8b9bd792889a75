//! A connection's life on any transport: handshake (`handshake.rs`) → register → read and
//! dispatch (`reading.rs`) → teardown.
//!
//! bytes → [`FrameDecoder`] (size-limited) → handshake → [`HubProtocol::decode`] → [`Dispatcher`]
//! → hub method → Completion → the connection's queue → its write side ([`Outlet`], which the
//! connection's task drives: [`Writing`]) → transport.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use hub_core::negotiate::TransportType;
use hub_core::protocol::{Close, FrameDecoder, Framing, HubProtocol, Protocol};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::auth::Identity;
use crate::connection::reconnect::Session;
use crate::connection::{
    alongside, write_loop, Connection, ConnectionParts, Outbox, Outlet, Resumable, WriterConfig,
    WriterExit, Writing,
};
use crate::dispatch::Dispatcher;
use crate::endpoint::expiry;
use crate::endpoint::handshake::{accept_handshake, handshake};
use crate::endpoint::reading::read_loop;
use crate::endpoint::Endpoint;
use crate::lifetime::ConnectionHandle;
use crate::observability::ConnectionStatus;
use crate::request::RequestInfo;
use crate::transport::{TransportSink, TransportSource};

/// A transport attached to a connection token. Passed boxed: async functions keep their
/// arguments for their whole life, and a connection's task should not carry several copies.
pub(crate) struct Attached {
    pub(crate) connection_id: Arc<str>,
    pub(crate) token: String,
    /// Who the connection belongs to; an authentication refresh may renew it.
    pub(crate) identity: Arc<Identity>,
    pub(crate) request: RequestInfo,
    pub(crate) transport: TransportType,
}

/// Runs a connection until it ends. Returns when its transport is closed.
///
/// `session`: the stateful-reconnect session negotiated for this WebSocket connection; it is used
/// if the handshake asks for version 2, and then the connection survives a lost socket for the
/// disconnect timeout.
pub(crate) async fn run<R: TransportSource, S: TransportSink>(
    endpoint: Arc<Endpoint>,
    attached: Box<Attached>,
    source: R,
    sink: S,
    session: Option<Arc<Session<R, S>>>,
) {
    let span = tracing::info_span!(
        "connection",
        connection_id = %attached.connection_id,
        transport = ?attached.transport,
    );
    let token = attached.token.clone();
    if let Some(handler) = endpoint.raw.clone() {
        // A connection endpoint: the handler instead of the hub protocol.
        super::raw::run(&endpoint, *attached, source, sink, handler)
            .instrument(span)
            .await;
        endpoint.release(&token);
        return;
    }
    // One span for the whole life (kept once in the task, not also for the linger).
    async move {
        let lingering = run_inner(endpoint.clone(), attached, source, sink, session.clone()).await;
        if let Some(session) = session {
            session.end();
        }
        // The connection is over: its token names nothing from now on (requests get 404,
        // refreshes `connection_not_found`), also while the socket lingers.
        endpoint.release(&token);
        if let Some(mut source) = lingering {
            linger(&mut source).await;
        }
    }
    .instrument(span)
    .await;
}

/// The connection's life: handshake, registration, reading, teardown. Returns the WebSocket to
/// [`linger`] on after the server's Close, if there is one.
async fn run_inner<R: TransportSource, S: TransportSink>(
    endpoint: Arc<Endpoint>,
    attached: Box<Attached>,
    mut source: R,
    mut sink: S,
    session: Option<Arc<Session<R, S>>>,
) -> Option<R> {
    let config = &endpoint.config;
    let mut decoder = FrameDecoder::new(Framing::TextRecords, config.max_message_size);

    // ----- handshake ----- (boxed, as teardown is: the task stays the size of the read loop)
    let handshake = Box::pin(handshake(
        &endpoint,
        attached.transport,
        &mut source,
        &mut sink,
        &mut decoder,
    ))
    .await?;
    let (protocol, version) = (handshake.protocol, handshake.version);
    // As ASP.NET Core: stateful reconnect needs handshake version 2.
    let session = session.filter(|_| version >= 2);
    decoder.set_framing(protocol.framing());
    tracing::debug!(protocol = protocol.name(), "handshake accepted");

    // ----- register -----
    let transport = attached.transport;
    let (connection, outbox) = open(&endpoint, *attached, protocol);
    // Registered before the handshake is answered: once a client's start() resolves, the
    // connection counts, and a send to all, its user or its groups reaches it. What is sent to
    // it meanwhile waits in its queue until the writer starts, after the response.
    let registered = endpoint
        .manager
        .add_connection(ConnectionHandle {
            inner: connection.clone(),
        })
        .await;
    if !accept_handshake(&mut sink, config.send_timeout, &handshake, &endpoint).await {
        if registered.is_ok() {
            if let Err(error) = endpoint.manager.remove_connection(&connection.id).await {
                tracing::error!(%error, "the lifetime manager could not unregister the connection");
            }
        }
        return None;
    }
    let started = Instant::now();
    endpoint.metrics.connection_started(transport);
    if let Err(error) = registered {
        // The client is told to go; what follows (hooks, teardown) runs as for any ending.
        tracing::error!(%error, "the lifetime manager could not register the connection");
        connection.end(Close::with_error(), Some(error.to_string()));
    }
    let writer_config = WriterConfig {
        keep_alive: (transport != TransportType::LongPolling).then_some(config.keep_alive_interval),
        send_timeout: config.send_timeout,
    };
    let mut dispatcher = Dispatcher::new(endpoint.dispatch.clone(), connection.clone());
    // A connection whose authentication may expire (now, or after a refresh) is watched.
    if config.close_on_authentication_expiration
        && (config.authentication_refresh || connection.identity.principal().expires_at.is_some())
    {
        endpoint
            .tasks
            .spawn(expiry::close_on_expiry(connection.clone()).in_current_span());
    }

    // The socket to read after the server's Close (not a stateful-reconnect one: its sockets
    // come and go with the session).
    let mut lingering = None;
    let writer = match session {
        None => {
            // The connection's task writes too: no writer task.
            let outlet = Outlet::new(connection.clone(), sink, outbox, None);
            let mut writing = Writing::new(outlet, writer_config);
            let hook = connected(&endpoint, &connection, &dispatcher);
            if Box::pin(alongside(&mut writing, hook)).await {
                read_loop(
                    &endpoint,
                    &connection,
                    &mut dispatcher,
                    &mut decoder,
                    &mut source,
                    &mut writing,
                    None,
                )
                .await;
            }
            // Only a WebSocket lingers. An HTTP transport's up-channel closes now, before the
            // connection is unregistered: a send that comes after gets 404, not a 200 for
            // nothing.
            if connection.transport == TransportType::WebSockets {
                lingering = Some(source);
            } else {
                drop(source);
            }
            finish_writing(&endpoint, writing).await
        }
        Some(session) => {
            session.enable();
            let socket = Socket {
                source,
                sink,
                decoder,
            };
            // The on-connected hook runs in there, once the first socket's writer writes.
            Box::pin(run_resumable(
                &endpoint,
                &connection,
                &mut dispatcher,
                &session,
                socket,
                outbox,
                writer_config,
            ))
            .await
        }
    };

    // ----- teardown ----- (boxed: a connection spends its life in the read loop, and the
    // task's size is that of its largest stage)
    Box::pin(teardown(&endpoint, &connection, dispatcher, writer)).await;
    let status = if endpoint.shutdown.is_stopped() {
        ConnectionStatus::AppShutdown
    } else if connection.ending().is_some_and(|ending| ending.timed_out) {
        ConnectionStatus::Timeout
    } else {
        ConnectionStatus::NormalClosure
    };
    endpoint
        .metrics
        .connection_ended(connection.transport, status, started.elapsed());
    lingering
}

/// Writes the end of a connection — what waits, then its Close message — now if the connection
/// is ending and the transport takes it at once, else in a task of its own (returned, for the
/// teardown to wait for): the teardown waits neither for a slow client nor, in a shutdown, for
/// the grace period's replies to be written.
async fn finish_writing<S: TransportSink>(
    endpoint: &Endpoint,
    writing: Writing<S>,
) -> Option<JoinHandle<WriterExit>> {
    let ending = writing.connection().is_closing();
    let mut finish = Box::pin(writing.finish().in_current_span());
    if ending {
        let done =
            std::future::poll_fn(|cx| Poll::Ready(finish.as_mut().poll(cx).is_ready())).await;
        if done {
            return None;
        }
    }
    Some(endpoint.tasks.spawn(finish))
}

/// The connection of an attached transport whose handshake chose `protocol`. Not async: what it
/// takes apart never enters the connection's task.
fn open(endpoint: &Endpoint, attached: Attached, protocol: Protocol) -> (Arc<Connection>, Outbox) {
    let user_id = endpoint
        .user_ids
        .user_id(&attached.identity.principal(), &attached.request);
    Connection::new(ConnectionParts {
        id: attached.connection_id,
        send_timeout: endpoint.config.send_timeout,
        user_id: user_id.map(Arc::from),
        identity: attached.identity,
        request: attached.request,
        transport: attached.transport,
        protocol,
        queue_capacity: endpoint.config.outbound_queue_capacity,
        metrics: endpoint.metrics.clone(),
    })
}

/// How long a WebSocket is read, and what arrives thrown away, after the server closed it.
const LINGER: Duration = Duration::from_secs(1);

/// Reads (and drops) what a client still sends after the server's Close, until it closes its
/// side or [`LINGER`] passes: a socket closed with unread input is reset, and the reset would
/// discard the Close message the client has not read yet (a client that keeps sending after an
/// over-limit message would see 1006 instead of the error).
async fn linger<R: TransportSource>(source: &mut R) {
    let deadline = Instant::now() + LINGER;
    loop {
        tokio::select! {
            chunk = source.next() => match chunk {
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            },
            () = tokio::time::sleep_until(deadline) => return,
        }
    }
}

/// Stops the connection's invocations, unregisters it, runs the on-disconnected hook and waits
/// for the writer to send the Close message.
async fn teardown(
    endpoint: &Endpoint,
    connection: &Connection,
    mut dispatcher: Dispatcher,
    writer: Option<JoinHandle<WriterExit>>,
) {
    dispatcher.finish(endpoint.shutdown.is_stopped()).await;
    if let Err(error) = endpoint.manager.remove_connection(&connection.id).await {
        tracing::error!(%error, "the lifetime manager could not unregister the connection");
    }
    let error = connection.ending().and_then(|ending| ending.error);
    endpoint
        .hub
        .on_disconnected(dispatcher.context(), error)
        .await;
    if let Some(writer) = writer {
        let _ = writer.await;
    }
    tracing::debug!("connection ended");
}

/// Runs the on-connected hook; if it fails, the connection ends. Returns whether it succeeded.
async fn connected(endpoint: &Endpoint, connection: &Connection, dispatcher: &Dispatcher) -> bool {
    if connection.is_closing() {
        // Ended before it began (the lifetime manager could not register it).
        return false;
    }
    match endpoint.hub.on_connected(dispatcher.context()).await {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, "the on-connected hook failed; closing the connection");
            connection.end(
                Close {
                    error: Some(Close::ERROR_TEXT.into()),
                    allow_reconnect: false,
                },
                Some(error.to_string()),
            );
            false
        }
    }
}

/// One socket of a stateful-reconnect connection.
struct Socket<R, S> {
    source: R,
    sink: S,
    decoder: FrameDecoder,
}

/// Runs a stateful-reconnect connection — its on-connected hook first — over one socket after
/// another: when a socket is lost,
/// the connection waits up to the disconnect timeout for its client to reconnect, and the new
/// socket's writer first sends `Sequence` and replays what the client has not acknowledged.
/// Returns the last writer, if one is still running (it writes the Close message).
async fn run_resumable<R: TransportSource, S: TransportSink>(
    endpoint: &Arc<Endpoint>,
    connection: &Arc<Connection>,
    dispatcher: &mut Dispatcher,
    session: &Session<R, S>,
    mut socket: Socket<R, S>,
    mut outbox: Outbox,
    writer_config: WriterConfig,
) -> Option<JoinHandle<WriterExit>> {
    let window = endpoint.config.disconnect_timeout;
    let mut replay = false;
    let mut first = true;
    loop {
        let lost = CancellationToken::new();
        let outlet = Arc::new(Outlet::new(
            connection.clone(),
            socket.sink,
            outbox,
            Some(Resumable {
                sequencer: session.sequencer.clone(),
                lost: lost.clone(),
                replay,
            }),
        ));
        let writer = endpoint
            .tasks
            .spawn(write_loop(connection.clone(), outlet.clone(), writer_config).in_current_span());
        // The on-connected hook, on the first socket: what it sends is written meanwhile.
        if std::mem::take(&mut first)
            && !Box::pin(connected(endpoint, connection, dispatcher)).await
        {
            // The connection is ending; the writer sends the Close message.
            return Some(writer);
        }
        read_loop(
            endpoint,
            connection,
            dispatcher,
            &mut socket.decoder,
            &mut socket.source,
            &mut &*outlet,
            Some((&session.sequencer, &lost)),
        )
        .await;
        if !lost.is_cancelled() {
            // The connection is ending; the writer sends the Close message.
            return Some(writer);
        }
        match writer.await {
            Ok(WriterExit::Lost) => {}
            Ok(WriterExit::Ended) | Err(_) => return None,
        }
        // The writer is done with the lost socket: the queue goes to the next one.
        outbox = match Arc::try_unwrap(outlet) {
            Ok(outlet) => outlet.into_outbox(),
            Err(_) => return None,
        };
        session.detach();
        tracing::debug!(
            ?window,
            "the socket was lost; waiting for the client to reconnect"
        );
        let deadline = Instant::now() + window;
        let next = tokio::select! {
            next = session.next_socket(deadline) => next,
            // Ended meanwhile (kicked, or its queue overflowed) or shutting down: teardown.
            () = connection.closing().cancelled() => None,
            () = endpoint.shutdown.token().cancelled() => None,
        };
        if next.is_none() {
            session.end();
        }
        if connection.closing().is_cancelled() || endpoint.shutdown.is_stopped() {
            return None;
        }
        let Some((source, mut sink)) = next else {
            tracing::debug!(?window, "the client did not reconnect in time");
            connection.end_timed_out(
                Close::new(),
                format!("The client did not reconnect within {window:?}."),
            );
            return None;
        };
        tracing::debug!("the client reconnected");
        sink.set_protocol(connection.protocol);
        socket = Socket {
            source,
            sink,
            decoder: FrameDecoder::new(
                connection.protocol.framing(),
                endpoint.config.max_message_size,
            ),
        };
        replay = true;
    }
}
