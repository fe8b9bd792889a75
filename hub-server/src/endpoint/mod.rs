//! One hub mapped at a path: its dispatch, settings, lifetime manager, and connection tokens.

mod bindings;
mod expiry;
mod handshake;
mod placement;
mod raw;
mod reading;
pub(crate) mod run;
mod sweeper;

pub(crate) use crate::connection::reconnect::AttachError;
use crate::dispatch::DispatchEnv;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hub_core::hub::{Authorization, HubDispatch};
use hub_core::negotiate::TransportType;
use hub_core::token::{ConnectionToken, TokenKey};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use crate::auth::{Principal, SharedAuthenticator, SharedUserIdProvider};
use crate::authorization::{Decision, Policies};
use crate::clients::{Context, HubContext, StopSignal};
use crate::config::HubConfig;
use crate::connection::reconnect::Session;
use crate::handler::ConnectionHandler;
use crate::lifetime::LifetimeManager;
use crate::observability::HubMetrics;
use crate::request::RequestInfo;
use crate::transport::http::Inbound;
use crate::transport::long_polling::LongPolling;
use crate::transport::websocket::{WsSink, WsSource};
use bindings::{Binding, Claim};
use placement::unix_ms;
pub(crate) use placement::Placement;

/// The stateful-reconnect session of a WebSocket connection.
pub(crate) type WsSession = Session<WsSource, WsSink>;

/// The transport attached to a connection token, with what its later HTTP requests (sends, polls,
/// DELETE) need.
#[derive(Clone)]
pub(crate) enum Attachment {
    /// With its session if the connection negotiated stateful reconnect.
    WebSockets(Option<Arc<WsSession>>),
    /// The event stream's up-channel.
    ServerSentEvents(Arc<Inbound>),
    LongPolling(Arc<LongPolling>),
}

impl Attachment {
    pub(crate) fn transport(&self) -> TransportType {
        match self {
            Attachment::WebSockets(_) => TransportType::WebSockets,
            Attachment::ServerSentEvents(_) => TransportType::ServerSentEvents,
            Attachment::LongPolling(_) => TransportType::LongPolling,
        }
    }
}

/// A connection token's state.
enum TokenState {
    /// Negotiated; no transport has attached yet.
    Negotiated {
        connection_id: Arc<str>,
        created: Instant,
        /// The client asked for stateful reconnect and negotiate granted it.
        stateful: bool,
    },
    /// A transport is attached.
    Active(Attachment),
}

/// What a token names.
pub(crate) enum Lookup {
    /// Unknown, expired or disposed: 404.
    Unknown,
    /// Negotiated; no transport yet.
    Negotiated,
    /// A transport is attached.
    Active(Attachment),
}

/// A WebSocket attached to a token.
pub(crate) enum WsAttach {
    /// A new connection.
    New {
        connection_id: Arc<str>,
        /// Its stateful-reconnect session, if negotiated.
        session: Option<Arc<WsSession>>,
    },
    /// A client reconnecting to a connection whose socket was lost.
    Resume(Arc<WsSession>),
}

/// A map keyed by connection token. foldhash rather than std's SipHash: a token is ~100
/// characters and a transport request looks it up in three maps, and the keys are tokens this
/// server signed (a client cannot choose what goes in, only what it looks up).
pub(crate) type TokenMap<V> = HashMap<String, V, foldhash::fast::RandomState>;

pub(crate) struct Endpoint {
    pub(crate) path: String,
    pub(crate) hub: Arc<dyn HubDispatch<Context>>,
    pub(crate) config: HubConfig,
    pub(crate) manager: Arc<dyn LifetimeManager>,
    pub(crate) context: HubContext,
    pub(crate) authenticator: SharedAuthenticator,
    pub(crate) user_ids: SharedUserIdProvider,
    /// What a connection must meet to connect (the hub's own requirements).
    authorization: Authorization,
    /// The server's named policies.
    policies: Policies,
    /// Signs and checks connection tokens.
    token_key: TokenKey,
    /// A connection endpoint's handler: its connections run it instead of the hub protocol.
    pub(crate) raw: Option<Arc<dyn ConnectionHandler>>,
    /// Every task of this hub's connections (transports and invocations), for shutdown.
    pub(crate) tasks: TaskTracker,
    /// Stopped when the server shuts down. Connections look at it often: its flag costs an
    /// atomic load, where the token's look takes a lock every connection shares.
    pub(crate) shutdown: StopSignal,
    /// What the connections' dispatchers need of this hub.
    pub(crate) dispatch: Arc<DispatchEnv>,
    /// The hub's instruments.
    pub(crate) metrics: Arc<HubMetrics>,
    /// The hub's contract hash (`#[hub]` traits), which generated clients present.
    pub(crate) contract: Option<String>,
    tokens: Mutex<TokenMap<TokenState>>,
    /// Who each negotiated token was issued to, and the identity of its connection once a
    /// transport attached. Kept beside `tokens` and pruned with it.
    bindings: Mutex<TokenMap<Binding>>,
    /// The servers that own connections living elsewhere, by token, as the lifetime manager
    /// said: a claim does not move while its connection lives, so requests after the first go
    /// straight to the owner (one that ended answers 404 itself). Bounded: cleared when full.
    owners: Mutex<TokenMap<Arc<str>>>,
    sweeper_started: AtomicBool,
}

/// How many owners of connections elsewhere an endpoint remembers before it starts afresh.
const OWNERS_REMEMBERED: usize = 65_536;

/// Who may use a hub and how its connections are recognised: what the server gives each of its
/// endpoints.
pub(crate) struct Access {
    pub(crate) authenticator: SharedAuthenticator,
    pub(crate) user_ids: SharedUserIdProvider,
    /// The server's named policies.
    pub(crate) policies: Policies,
    /// Signs and checks connection tokens (the same on every server of a deployment).
    pub(crate) token_key: TokenKey,
    /// Whether the stats view is served (the hubs then keep running totals).
    pub(crate) stats: bool,
}

impl Endpoint {
    pub(crate) fn new(
        path: String,
        hub: Arc<dyn HubDispatch<Context>>,
        config: HubConfig,
        manager: Arc<dyn LifetimeManager>,
        access: Access,
        raw: Option<Arc<dyn ConnectionHandler>>,
    ) -> Self {
        let Access {
            authenticator,
            user_ids,
            policies,
            token_key,
            stats,
        } = access;
        let service = hub
            .name()
            .map_or_else(|| path.trim_start_matches('/').to_owned(), str::to_owned);
        let metrics = Arc::new(HubMetrics::new(&path, &service, hub.methods(), stats));
        let contract = hub.name().and_then(crate::codegen::contract_of);
        let context = HubContext::new(
            manager.clone(),
            metrics.clone(),
            config.client_result_timeout,
        );
        let tasks = TaskTracker::new();
        let dispatch = Arc::new(DispatchEnv {
            hub: hub.clone(),
            context: context.clone(),
            manager: manager.clone(),
            tasks: tasks.clone(),
            config: config.clone(),
            policies: policies.clone(),
            metrics: metrics.clone(),
        });
        let authorization = hub.authorization();
        Endpoint {
            path,
            hub,
            context,
            config,
            manager,
            authenticator,
            user_ids,
            authorization,
            policies,
            token_key,
            raw,
            tasks,
            shutdown: StopSignal::default(),
            dispatch,
            metrics,
            contract,
            tokens: Mutex::default(),
            bindings: Mutex::default(),
            owners: Mutex::default(),
            sweeper_started: AtomicBool::new(false),
        }
    }

    /// Whether `principal` may connect to this hub (its `#[authorize]` requirements).
    pub(crate) async fn admits(&self, principal: &Principal, request: &RequestInfo) -> Decision {
        if self.authorization.is_open() {
            return Decision::Allowed;
        }
        self.policies
            .decide(&self.authorization, principal, request)
            .await
    }

    fn tokens<R>(&self, f: impl FnOnce(&mut TokenMap<TokenState>) -> R) -> R {
        f(&mut self.tokens.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Creates a negotiated connection: a public id and a separate secret token, signed with the
    /// server's token key so that any server of the deployment can check it (in negotiate
    /// version 0 the token is the id, and only this server knows it).
    pub(crate) fn negotiate_connection(
        self: &Arc<Self>,
        version: u32,
        stateful: bool,
        user_id: Option<String>,
    ) -> Result<(Arc<str>, String), getrandom::Error> {
        self.start_sweeper();
        let connection_id: Arc<str> = Arc::from(random_id()?);
        let token = if version == 0 {
            connection_id.to_string()
        } else {
            self.token_key.sign(&ConnectionToken {
                connection_id: connection_id.to_string(),
                issued_at_ms: unix_ms(),
                negotiate_version: u8::try_from(version).unwrap_or(u8::MAX),
                stateful,
                user: self.token_key.user_tag(user_id.as_deref()),
            })
        };
        self.tokens(|tokens| {
            tokens.insert(
                token.clone(),
                TokenState::Negotiated {
                    connection_id: connection_id.clone(),
                    created: Instant::now(),
                    stateful,
                },
            )
        });
        self.bindings().insert(
            token.clone(),
            Binding {
                user_id,
                version,
                identity: None,
                claim: None,
            },
        );
        Ok((connection_id, token))
    }

    /// What `token` names.
    pub(crate) fn lookup(&self, token: &str) -> Lookup {
        let timeout = self.config.disconnect_timeout;
        self.tokens(|tokens| match tokens.get(token) {
            None => Lookup::Unknown,
            Some(TokenState::Negotiated { created, .. }) if created.elapsed() > timeout => {
                Lookup::Unknown
            }
            Some(TokenState::Negotiated { .. }) => Lookup::Negotiated,
            Some(TokenState::Active(attachment)) => Lookup::Active(attachment.clone()),
        })
    }

    /// Attaches a transport to a negotiated token, returning the connection id.
    pub(crate) fn attach(
        &self,
        token: &str,
        attachment: Attachment,
    ) -> Result<Arc<str>, AttachError> {
        let timeout = self.config.disconnect_timeout;
        self.tokens(|tokens| match tokens.get(token) {
            None => Err(AttachError::NotFound),
            Some(TokenState::Active(active)) if active.transport() == attachment.transport() => {
                Err(AttachError::Conflict)
            }
            Some(TokenState::Active(_)) => Err(AttachError::TransportChange),
            Some(TokenState::Negotiated { created, .. }) if created.elapsed() > timeout => {
                tokens.remove(token);
                Err(AttachError::NotFound)
            }
            Some(TokenState::Negotiated { connection_id, .. }) => {
                let connection_id = connection_id.clone();
                tokens.insert(token.to_owned(), TokenState::Active(attachment));
                Ok(connection_id)
            }
        })
    }

    /// Attaches a WebSocket to a token: a new connection (with a stateful-reconnect session if
    /// negotiate granted one), or the reconnect of a connection whose socket was lost.
    pub(crate) fn attach_websocket(&self, token: &str) -> Result<WsAttach, AttachError> {
        let timeout = self.config.disconnect_timeout;
        let capacity = self.config.stateful_reconnect_buffer_size;
        self.tokens(|tokens| match tokens.get(token) {
            None => Err(AttachError::NotFound),
            Some(TokenState::Active(Attachment::WebSockets(Some(session)))) => {
                session.claim(timeout)?;
                Ok(WsAttach::Resume(session.clone()))
            }
            Some(TokenState::Active(Attachment::WebSockets(None))) => Err(AttachError::Conflict),
            Some(TokenState::Active(_)) => Err(AttachError::TransportChange),
            Some(TokenState::Negotiated { created, .. }) if created.elapsed() > timeout => {
                tokens.remove(token);
                Err(AttachError::NotFound)
            }
            Some(TokenState::Negotiated {
                connection_id,
                stateful,
                ..
            }) => {
                let connection_id = connection_id.clone();
                let session = stateful.then(|| Arc::new(WsSession::new(capacity)));
                tokens.insert(
                    token.to_owned(),
                    TokenState::Active(Attachment::WebSockets(session.clone())),
                );
                Ok(WsAttach::New {
                    connection_id,
                    session,
                })
            }
        })
    }

    /// Registers a connection that skipped negotiation (its id is its token; WebSockets only).
    pub(crate) fn attach_without_negotiate(&self) -> Result<(Arc<str>, String), getrandom::Error> {
        let token = random_id()?;
        self.tokens(|tokens| {
            tokens.insert(
                token.clone(),
                TokenState::Active(Attachment::WebSockets(None)),
            )
        });
        Ok((Arc::from(token.as_str()), token))
    }

    /// Forgets a token whose connection ended, except a long-polling one whose client has not
    /// been told yet: it keeps answering polls until one gets 204 (or the client stops polling).
    pub(crate) fn release(&self, token: &str) {
        let claim = self.tokens(|tokens| {
            let keep = matches!(
                tokens.get(token),
                Some(TokenState::Active(Attachment::LongPolling(polling)))
                    if polling.awaits_final_poll()
            );
            if keep {
                return None;
            }
            tokens.remove(token);
            self.unbind(token)
        });
        if let Some(claim) = claim {
            self.release_claim(claim);
        }
    }

    /// Forgets a long-polling token if it still names `polling` (after DELETE, or after its final
    /// 204).
    pub(crate) fn forget_long_polling(&self, token: &str, polling: &Arc<LongPolling>) {
        let claim = self.tokens(|tokens| {
            if !matches!(
                tokens.get(token),
                Some(TokenState::Active(Attachment::LongPolling(p))) if Arc::ptr_eq(p, polling)
            ) {
                return None;
            }
            tokens.remove(token);
            self.unbind(token)
        });
        if let Some(claim) = claim {
            self.release_claim(claim);
        }
    }
}

/// 16 random bytes from the operating system, base64url without padding (22 URL-safe
/// characters), as ASP.NET Core makes connection ids and tokens.
pub(crate) fn random_id() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}
