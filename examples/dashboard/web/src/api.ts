// Signing in: `POST /api/login` gives a bearer token for the hub. The token is kept in
// sessionStorage, so a reload stays signed in (each tab has its own).

/** Who is signed in, as `POST /api/login` answers. */
export interface SignIn {
  /** The bearer token the hub connection sends (`accessTokenFactory`). */
  token: string;
  /** The user name. */
  user: string;
  /** `admin` or `user`. */
  role: string;
}

const KEY = "dashboard.signIn";

/** Signs in; rejects with the server's reason (wrong password, …). */
export async function login(user: string, password: string): Promise<SignIn> {
  const response = await fetch("/api/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user, password }),
  });
  const body: unknown = await response.json().catch(() => null);
  if (!response.ok) {
    const error = body && typeof body === "object" && "error" in body ? String(body.error) : response.statusText;
    throw new Error(error || `sign-in failed (HTTP ${response.status})`);
  }
  const signIn = body as SignIn;
  sessionStorage.setItem(KEY, JSON.stringify(signIn));
  return signIn;
}

/** The sign-in kept from earlier in this tab, if any. */
export function storedSignIn(): SignIn | null {
  try {
    const stored = JSON.parse(sessionStorage.getItem(KEY) ?? "null") as SignIn | null;
    return stored && typeof stored.token === "string" ? stored : null;
  } catch {
    return null;
  }
}

/** Forgets the sign-in. */
export function forgetSignIn() {
  sessionStorage.removeItem(KEY);
}

// ----- the hub server's stats view: `GET /stats`, admins only -----

/** Running totals of a hub (`totals`), or their change per second (`rates`). */
export interface HubCounters {
  invocations: number;
  messagesReceived: number;
  messagesSent: number;
  bytesReceived: number;
  bytesSent: number;
}

/** The transports and protocols the stats view counts connections by (absent when 0). */
export type StatsTransport = "webSockets" | "serverSentEvents" | "longPolling";
export type StatsProtocol = "json" | "messagepack";

/** One hub of the server, as the stats view shows it. */
export interface HubStats {
  /** Where the hub is mapped (`/dashboard`). */
  path: string;
  connections: number;
  byTransport: Partial<Record<StatsTransport, number>>;
  byProtocol: Partial<Record<StatsProtocol, number>>;
  /** Distinct users with a connection. */
  users: number;
  /** The groups (here: the topics) with their members, largest first. */
  groups: { name: string; members: number }[];
  totals: HubCounters;
  /** Per second, since the previous read of the view (at least 1 s before). */
  rates: HubCounters;
}

/** What `GET /stats` answers. */
export interface ServerStats {
  /** When the server read it, in milliseconds since the Unix epoch. */
  atUnixMs: number;
  hubs: HubStats[];
}

/** An HTTP request the server refused (`status` 401: no valid token, 403: not an admin). */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = "HttpError";
  }
}

/** The server's stats view, read with the bearer token (admins only: others get 403). */
export async function fetchStats(token: string, signal?: AbortSignal): Promise<ServerStats> {
  const response = await fetch("/stats", { headers: { Authorization: `Bearer ${token}` }, cache: "no-store", signal });
  if (!response.ok) {
    const reason = response.status === 401 ? "sign in again" : response.status === 403 ? "admins only" : response.statusText;
    throw new HttpError(response.status, `the server refused the stats view (HTTP ${response.status}${reason ? `: ${reason}` : ""})`);
  }
  return (await response.json()) as ServerStats;
}
