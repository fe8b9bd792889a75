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
