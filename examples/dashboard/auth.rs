//! Sign-in for the dashboard: fixed demo users, `POST /api/login`'s tokens, and the
//! authenticator that turns a bearer token into the connection's [`Principal`].
//!
//! | user | password | role |
//! |---|---|---|
//! | `alice` | `alice` | admin |
//! | `bob` | `bob` | user |
//! | `carol` | `carol` | user |
//!
//! A token is signed, not stored: `v1.<user>.<expires>.<tag>`, where `tag` is the HMAC-SHA-256
//! of the rest under the server's key (the RustCrypto `hmac` and `sha2` crates). The server verifies a token with
//! the key alone, so tokens outlive a restart of the server whenever the key does: set
//! `DASHBOARD_SECRET` to any text to fix the key. Without it the key is random for each run and
//! a restart signs everyone out (the page then shows the login form again).
//!
//! The random key comes from the operating system (`getrandom`). Demo-grade where it matters
//! less: the passwords are in the source; a real service has a user store (and perhaps a JWT
//! library, with the same shape: a signed claim checked by the authenticator).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use hub_server::{Principal, Unauthorized};
use serde::{Deserialize, Serialize};

type HmacSha256 = Hmac<Sha256>;

/// The principal's claim that holds the role (`admin` or `user`).
pub const ROLE_CLAIM: &str = "role";
/// How long a token is valid.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// May broadcast announcements to everyone.
    Admin,
    /// Everything but broadcasting.
    User,
}

impl Role {
    /// `admin` or `user`, as in the `role` claim.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    /// The role a principal's claims give (a missing or unknown claim is a plain user).
    pub fn from_claims(claims: &HashMap<String, String>) -> Role {
        match claims.get(ROLE_CLAIM).map(String::as_str) {
            Some("admin") => Role::Admin,
            _ => Role::User,
        }
    }
}

/// A demo account.
#[derive(Debug)]
pub struct DemoUser {
    /// The user name (lowercase letters; it is the connection's user id).
    pub name: &'static str,
    /// The password, in the clear: this is a demo.
    pub password: &'static str,
    /// What the user may do.
    pub role: Role,
}

/// The fixed demo accounts.
pub const USERS: [DemoUser; 3] = [
    DemoUser {
        name: "alice",
        password: "alice",
        role: Role::Admin,
    },
    DemoUser {
        name: "bob",
        password: "bob",
        role: Role::User,
    },
    DemoUser {
        name: "carol",
        password: "carol",
        role: Role::User,
    },
];

/// The demo user called `name`.
pub fn user(name: &str) -> Option<&'static DemoUser> {
    USERS.iter().find(|user| user.name == name)
}

/// The demo users' names.
pub fn user_names() -> Vec<&'static str> {
    USERS.iter().map(|user| user.name).collect()
}

/// The body of `POST /api/login`.
#[derive(Debug, Deserialize)]
pub struct LoginRequest {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
}

/// The answer to a successful login.
#[derive(Debug, Serialize)]
pub struct LoginResponse {
    /// The bearer token for the hub (`accessTokenFactory`).
    pub token: String,
    /// The user name.
    pub user: String,
    /// `admin` or `user`.
    pub role: &'static str,
}

/// Issues and checks tokens with one key.
pub struct Tokens {
    key: [u8; 32],
    /// Whether the key comes from `DASHBOARD_SECRET` (and so survives a restart).
    persistent: bool,
}

impl Tokens {
    /// The key from `secret` (any text): the same secret always gives the same key.
    pub fn from_secret(secret: &str) -> Tokens {
        Tokens {
            key: Sha256::digest(secret.as_bytes()).into(),
            persistent: true,
        }
    }

    /// A random key from the operating system, for this run only.
    pub fn random() -> Result<Tokens, getrandom::Error> {
        let mut key = [0; 32];
        getrandom::fill(&mut key)?;
        Ok(Tokens {
            key,
            persistent: false,
        })
    }

    /// The key from `DASHBOARD_SECRET` when it is set (and not empty), else a random one.
    pub fn from_env() -> Result<Tokens, getrandom::Error> {
        match std::env::var("DASHBOARD_SECRET") {
            Ok(secret) if !secret.is_empty() => Ok(Tokens::from_secret(&secret)),
            _ => Tokens::random(),
        }
    }

    /// Whether tokens survive a restart (the key comes from `DASHBOARD_SECRET`).
    pub fn persistent(&self) -> bool {
        self.persistent
    }

    /// Checks a user's password and issues a token; `None` when they do not match.
    pub fn login(&self, request: &LoginRequest) -> Option<LoginResponse> {
        let user = user(request.user.trim())?;
        // Compared in constant time, as the tags are: the time taken tells nothing.
        if !bool::from(user.password.as_bytes().ct_eq(request.password.as_bytes())) {
            return None;
        }
        let expires = now_secs().saturating_add(TOKEN_LIFETIME.as_secs());
        Some(LoginResponse {
            token: self.issue(user.name, expires),
            user: user.name.to_owned(),
            role: user.role.as_str(),
        })
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length: this cannot fail.
        match <HmacSha256 as Mac>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts every key length"),
        }
    }

    /// A token for `user`, valid until `expires` (seconds since the Unix epoch).
    pub fn issue(&self, user: &str, expires: u64) -> String {
        let payload = format!("v1.{user}.{expires}");
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{payload}.{tag}")
    }

    /// The user a token names, if the token is ours and has not expired.
    pub fn verify(&self, token: &str) -> Option<&'static DemoUser> {
        let (payload, tag) = token.rsplit_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        mac.verify_slice(&tag).ok()?;
        let mut parts = payload.split('.');
        let (Some("v1"), Some(name), Some(expires), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        if expires.parse::<u64>().ok()? <= now_secs() {
            return None;
        }
        user(name)
    }

    /// The hub's authenticator: a valid bearer token is its user, with the `role` claim;
    /// anything else gets 401.
    pub fn authenticate(&self, token: Option<&str>) -> Result<Principal, Unauthorized> {
        let user = token
            .and_then(|token| self.verify(token))
            .ok_or(Unauthorized)?;
        let mut principal = Principal::user(user.name);
        principal
            .claims
            .insert(ROLE_CLAIM.to_owned(), user.role.as_str().to_owned());
        Ok(principal)
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
