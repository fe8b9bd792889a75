// The page's connection to the Dashboard hub and everything it shows, as one reactive store.
// Everything it says to the server goes through the generated client: `createDashboard`, the
// typed `DashboardHub` methods and a `DashboardClient` object for the server's pushes.
import { reactive } from "vue";
import {
  createDashboard,
  HttpTransportType,
  HubConnectionState,
  NegotiateError,
  type Announcement,
  type DashboardClient,
  type DashboardHub,
  type MetricsSample,
  type Notification,
  type Presence,
  type RetryContext,
  type Session,
  type TransportName,
} from "dashboard-client";
import type { SignIn } from "./api";

/** `?transport=` values and the transport each forces. */
export const TRANSPORTS = {
  webSockets: HttpTransportType.WebSockets,
  serverSentEvents: HttpTransportType.ServerSentEvents,
  longPolling: HttpTransportType.LongPolling,
} as const;

/** How many samples the charts keep. */
export const HISTORY = 60;

/** Reconnect delays: quick at first, then every 10 s for as long as it takes. */
const RETRY_DELAYS = [0, 1000, 2000, 5000];
const RETRY_EVERY = 10_000;

export type Status = "connecting" | "connected" | "reconnecting" | "disconnected";
export type MetricsState = "stopped" | "running" | "interrupted";

/** A line of the feed: something received, or something this page sent. */
export interface FeedEntry {
  key: string;
  kind: "user" | "topic" | "announcement" | "sent";
  from: string;
  /** Where it went: `you`, `#deploys`, `everyone`, `bob`… */
  to: string;
  text: string;
  at: number;
}

/** What the page shows. */
export interface DashboardState {
  status: Status;
  /** The transport the client says it uses (`hub.connection.transport`). */
  transport: TransportName | null;
  /** The transport the server says this connection uses (`Session.transport`). */
  serverTransport: string | null;
  session: Session | null;
  presence: Presence | null;
  /** The topics this page wants; re-subscribed after a reconnect. */
  subscribed: string[];
  metrics: {
    state: MetricsState;
    intervalMs: number;
    /** The last HISTORY samples, oldest first. */
    samples: MetricsSample[];
    /** Samples received since the page opened. */
    received: number;
  };
  feed: FeedEntry[];
  announcement: Announcement | null;
  /** The connection's trouble, if any (a form's own errors stay in the form). */
  error: string | null;
}

/** The server's own words: SignalR prefixes a HubException's text with where it happened. */
export function errorText(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const at = message.indexOf("HubException: ");
  return at >= 0 ? message.slice(at + "HubException: ".length) : message;
}

/** The server no longer accepts our token (it restarted with a new key, or the token expired). */
function unauthorized(error: unknown): boolean {
  return error instanceof NegotiateError && error.status === 401;
}

/** The store, its actions, and how it ends. */
export type Dashboard = ReturnType<typeof useDashboard>;

/**
 * Connects to the hub as `signIn` and keeps `state` current. `signedOut` is called when the
 * server refuses the token (the page then asks to sign in again).
 */
export function useDashboard(signIn: SignIn, signedOut: (reason: string) => void) {
  const state = reactive<DashboardState>({
    status: "connecting",
    transport: null,
    serverTransport: null,
    session: null,
    presence: null,
    subscribed: [],
    metrics: { state: "stopped", intervalMs: 500, samples: [], received: 0 },
    feed: [],
    announcement: null,
    error: null,
  });

  let feedKey = 0;
  function addToFeed(entry: Omit<FeedEntry, "key">) {
    state.feed.unshift({ ...entry, key: String(++feedKey) });
    state.feed.splice(100);
  }

  function notificationEntry(notification: Notification, kind: FeedEntry["kind"]): Omit<FeedEntry, "key"> {
    const to = notification.to.kind === "topic" ? `#${notification.to.topic}` : notification.to.user === signIn.user ? "you" : notification.to.user;
    return { kind, from: notification.from, to, text: notification.text, at: notification.sentAt };
  }

  /** Pushes may overtake each other: keep the newest presence (versions restart with the server). */
  function showPresence(presence: Presence) {
    if (!state.presence || presence.version >= state.presence.version) state.presence = presence;
  }

  const client: DashboardClient = {
    notification(notification) {
      addToFeed(notificationEntry(notification, notification.to.kind));
    },
    announcement(announcement) {
      state.announcement = announcement;
      addToFeed({ kind: "announcement", from: announcement.from, to: "everyone", text: announcement.text, at: announcement.sentAt });
    },
    presenceChanged(presence) {
      showPresence(presence);
    },
  };

  const connection: { transport?: number } = {};
  const requested = new URLSearchParams(location.search).get("transport");
  if (requested) {
    if (requested in TRANSPORTS) {
      connection.transport = TRANSPORTS[requested as keyof typeof TRANSPORTS];
    } else {
      state.error = `unknown transport "${requested}": use ${Object.keys(TRANSPORTS).join(", ")}`;
    }
  }

  const hub: DashboardHub = createDashboard(location.origin, {
    client,
    connection: { ...connection, accessTokenFactory: () => signIn.token },
    configure: (builder) =>
      builder.withAutomaticReconnect({
        // A 401 will not go away by retrying: give up and ask to sign in again.
        nextRetryDelayInMilliseconds: ({ previousRetryCount, retryReason }: RetryContext) =>
          unauthorized(retryReason) ? null : (RETRY_DELAYS[previousRetryCount] ?? RETRY_EVERY),
      }),
  });

  // ----- metrics: a server-to-client stream, stopped through an AbortSignal -----

  /** Whether the user wants the stream (it restarts after a reconnect). */
  let metricsWanted = false;
  let metricsAbort: AbortController | null = null;

  async function runMetrics() {
    metricsAbort?.abort();
    const abort = new AbortController();
    metricsAbort = abort;
    state.metrics.state = "running";
    try {
      for await (const sample of hub.metrics(state.metrics.intervalMs, null, abort.signal)) {
        state.metrics.samples.push(sample);
        if (state.metrics.samples.length > HISTORY) state.metrics.samples.splice(0, state.metrics.samples.length - HISTORY);
        state.metrics.received += 1;
      }
      // The server ended it (it is stopping): the stream restarts after the reconnect.
      if (metricsAbort === abort) state.metrics.state = metricsWanted ? "interrupted" : "stopped";
    } catch (error) {
      if (abort.signal.aborted || metricsAbort !== abort) return; // stopped or replaced on purpose
      // The connection dropped: the stream restarts once it is back.
      state.metrics.state = "interrupted";
      if (hub.connection.state === HubConnectionState.Connected) state.error = `metrics: ${errorText(error)}`;
    }
  }

  function startMetrics() {
    metricsWanted = true;
    void runMetrics();
  }

  function stopMetrics() {
    metricsWanted = false;
    metricsAbort?.abort();
    metricsAbort = null;
    state.metrics.state = "stopped";
  }

  function setMetricsInterval(intervalMs: number) {
    state.metrics.intervalMs = intervalMs;
    if (metricsWanted) startMetrics();
  }

  // ----- topics, notifications, broadcast -----

  async function setSubscribed(topic: string, on: boolean) {
    const topics = on ? await hub.subscribe(topic) : await hub.unsubscribe(topic);
    state.subscribed = topics;
  }

  async function publish(topic: string, text: string) {
    const sent = await hub.publish(topic, text);
    addToFeed({ ...notificationEntry(sent, "sent"), to: `#${topic}` });
  }

  async function notifyUser(user: string, text: string) {
    const delivery = await hub.notifyUser(user, text);
    addToFeed(notificationEntry(delivery.notification, "sent"));
    return delivery;
  }

  async function broadcast(text: string) {
    return hub.broadcast(text);
  }

  // ----- the connection -----

  /** After (re)connecting: who we are, which transport, who is online; then our topics and stream. */
  async function enter(topics: string[]) {
    state.transport = hub.connection.transport;
    const session = await hub.session();
    state.session = session;
    state.serverTransport = session.transport;
    showPresence(session.presence);
    state.subscribed = session.subscribed;
    for (const topic of topics) state.subscribed = await hub.subscribe(topic);
    if (metricsWanted) void runMetrics();
  }

  function closed(error: unknown) {
    state.status = "disconnected";
    state.transport = null;
    if (metricsWanted) state.metrics.state = "interrupted";
    if (unauthorized(error)) {
      signedOut("the server no longer accepts your sign-in (it restarted with a new key, or it expired): sign in again");
    } else {
      state.error = error ? `disconnected: ${errorText(error)}` : "disconnected";
    }
  }

  hub.connection.onreconnecting(() => {
    state.status = "reconnecting";
    state.transport = null;
    // The new connection's presence starts a new count (the server may have restarted).
    state.presence = null;
  });
  hub.connection.onreconnected(async () => {
    state.status = "connected";
    state.error = null;
    try {
      // The server forgot this connection's groups: subscribe again to what the page wants.
      await enter([...state.subscribed]);
    } catch (error) {
      state.error = errorText(error);
    }
  });
  hub.connection.onclose((error) => closed(error));

  async function start() {
    try {
      await hub.start();
      state.status = "connected";
      await enter([]);
      startMetrics();
    } catch (error) {
      closed(error);
    }
  }

  async function stop() {
    metricsWanted = false;
    metricsAbort?.abort();
    await hub.stop();
  }

  return { state, hub, start, stop, startMetrics, stopMetrics, setMetricsInterval, setSubscribed, publish, notifyUser, broadcast };
}
