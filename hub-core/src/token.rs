//! Connection tokens any server of a deployment can check: negotiate signs what a later request
//! of the connection needs (its connection id, when the token was issued, the negotiate version,
//! whether stateful reconnect was granted, and who it was issued to) with a key the servers
//! share, so no server has to remember a token it issued for another to accept it.
//!
//! A token is `base64url(payload ‖ HMAC-SHA256(key, payload))`, URL-safe and unpadded, as the
//! connection ids are. The payload is binary:
//!
//! | bytes | what |
//! |---|---|
//! | 1 | format version, [`FORMAT`] |
//! | 8 | when it was issued, milliseconds since the Unix epoch, big-endian |
//! | 1 | the negotiate version answered |
//! | 1 | flags: bit 0, stateful reconnect granted |
//! | 16 | the [`UserTag`] of the user it was issued to |
//! | rest | the connection id, UTF-8 (at most [`MAX_CONNECTION_ID`] bytes) |
//!
//! ```
//! use hub_core::token::{ConnectionToken, TokenKey};
//!
//! let key = TokenKey::new(b"a secret of at least 32 bytes, shared by all servers")?;
//! let token = ConnectionToken {
//!     connection_id: "Tn2SLgqJ2F8nEeGkMWAfNA".to_owned(),
//!     issued_at_ms: 1_765_000_000_000,
//!     negotiate_version: 1,
//!     stateful: false,
//!     user: key.user_tag(Some("alice")),
//! };
//! let text = key.sign(&token);
//! assert_eq!(key.verify(&text)?, token);
//! assert!(TokenKey::new(b"another secret of at least 32 bytes......")?.verify(&text).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The payload format this module writes and reads.
pub const FORMAT: u8 = 1;

/// The longest connection id a token carries, in bytes.
pub const MAX_CONNECTION_ID: usize = 128;

/// The shortest key [`TokenKey::new`] accepts, in bytes.
pub const MIN_KEY_LEN: usize = 32;

const HEADER_LEN: usize = 1 + 8 + 1 + 1 + 16;
const MAC_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// Who a token was issued to: a keyed hash of the user id (or of "no user"), so a token carries
/// no readable user name and two users never share a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserTag([u8; 16]);

/// What a connection token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionToken {
    /// The connection id negotiate answered.
    pub connection_id: String,
    /// When negotiate issued it, in milliseconds since the Unix epoch.
    pub issued_at_ms: u64,
    /// The negotiate version answered (1 or more: version 0 has no token of its own).
    pub negotiate_version: u8,
    /// Whether negotiate granted stateful reconnect.
    pub stateful: bool,
    /// Who it was issued to ([`TokenKey::user_tag`]).
    pub user: UserTag,
}

impl ConnectionToken {
    /// Whether a transport may still attach to it at `now_ms`: within `window_ms` of when it
    /// was issued (a clock that went back counts as within).
    pub fn attachable_at(&self, now_ms: u64, window_ms: u64) -> bool {
        now_ms.saturating_sub(self.issued_at_ms) <= window_ms
    }
}

/// Why a text is not a token of this key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not base64url, too short, or its connection id is not UTF-8 or too long.
    #[error("not a connection token")]
    Malformed,
    /// Signed with another key, or altered.
    #[error("the connection token's signature does not match this server's key")]
    BadSignature,
    /// A payload format this build does not read.
    #[error("connection token format {0} is not supported (this server reads format {FORMAT})")]
    UnsupportedFormat(u8),
}

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenKeyError {
    /// Too short to be a secret.
    #[error(
        "a connection token key must be at least {MIN_KEY_LEN} bytes (got {0}): use {MIN_KEY_LEN} \
         random bytes, the same on every server"
    )]
    TooShort(usize),
}

/// The key that signs and checks connection tokens: the same on every server of a deployment.
#[derive(Clone)]
pub struct TokenKey {
    mac: HmacSha256,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret: never printed.
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// A key from `secret` (at least [`MIN_KEY_LEN`] bytes).
    pub fn new(secret: &[u8]) -> Result<Self, TokenKeyError> {
        if secret.len() < MIN_KEY_LEN {
            return Err(TokenKeyError::TooShort(secret.len()));
        }
        let mac = HmacSha256::new_from_slice(secret).map_err(|_| TokenKeyError::TooShort(0))?;
        Ok(TokenKey { mac })
    }

    /// The tag of `user_id` (`None`: an anonymous connection) under this key.
    pub fn user_tag(&self, user_id: Option<&str>) -> UserTag {
        let mut mac = self.mac.clone();
        match user_id {
            Some(id) => {
                mac.update(b"user\0");
                mac.update(id.as_bytes());
            }
            None => mac.update(b"anonymous\0"),
        }
        let digest = mac.finalize().into_bytes();
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&digest[..16]);
        UserTag(tag)
    }

    /// The token text of `token`. A connection id over [`MAX_CONNECTION_ID`] bytes is cut
    /// there (ids this crate makes are 22 bytes).
    pub fn sign(&self, token: &ConnectionToken) -> String {
        let id = token.connection_id.as_bytes();
        let id = &id[..id.len().min(MAX_CONNECTION_ID)];
        let mut bytes = Vec::with_capacity(HEADER_LEN + id.len() + MAC_LEN);
        bytes.push(FORMAT);
        bytes.extend_from_slice(&token.issued_at_ms.to_be_bytes());
        bytes.push(token.negotiate_version);
        bytes.push(u8::from(token.stateful));
        bytes.extend_from_slice(&token.user.0);
        bytes.extend_from_slice(id);
        let mut mac = self.mac.clone();
        mac.update(&bytes);
        bytes.extend_from_slice(&mac.finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// What `text` says, if this key signed it.
    pub fn verify(&self, text: &str) -> Result<ConnectionToken, TokenError> {
        let longest = HEADER_LEN + MAX_CONNECTION_ID + MAC_LEN;
        if text.len() > longest.div_ceil(3) * 4 {
            return Err(TokenError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| TokenError::Malformed)?;
        if bytes.len() < HEADER_LEN + 1 + MAC_LEN {
            return Err(TokenError::Malformed);
        }
        let (payload, signature) = bytes.split_at(bytes.len() - MAC_LEN);
        let mut mac = self.mac.clone();
        mac.update(payload);
        mac.verify_slice(signature)
            .map_err(|_| TokenError::BadSignature)?;
        let (header, id) = payload.split_at(HEADER_LEN);
        if header[0] != FORMAT {
            return Err(TokenError::UnsupportedFormat(header[0]));
        }
        let mut issued = [0u8; 8];
        issued.copy_from_slice(&header[1..9]);
        let mut user = [0u8; 16];
        user.copy_from_slice(&header[11..27]);
        let connection_id = std::str::from_utf8(id)
            .map_err(|_| TokenError::Malformed)?
            .to_owned();
        Ok(ConnectionToken {
            connection_id,
            issued_at_ms: u64::from_be_bytes(issued),
            negotiate_version: header[9],
            stateful: header[10] & 1 == 1,
            user: UserTag(user),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(byte: u8) -> TokenKey {
        TokenKey::new(&[byte; 32]).unwrap()
    }

    fn token(key: &TokenKey) -> ConnectionToken {
        ConnectionToken {
            connection_id: "abcdefghijklmnopqrstuv".to_owned(),
            issued_at_ms: 1_765_000_000_000,
            negotiate_version: 1,
            stateful: true,
            user: key.user_tag(Some("alice")),
        }
    }

    #[test]
    fn a_signed_token_verifies_under_its_key_only() {
        let (a, b) = (key(1), key(2));
        let text = a.sign(&token(&a));
        assert_eq!(a.verify(&text), Ok(token(&a)));
        assert_eq!(b.verify(&text), Err(TokenError::BadSignature));
        assert!(text
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn every_altered_byte_is_refused() {
        let a = key(1);
        let bytes = URL_SAFE_NO_PAD.decode(a.sign(&token(&a))).unwrap();
        for i in 0..bytes.len() {
            let mut altered = bytes.clone();
            altered[i] ^= 0x40;
            let text = URL_SAFE_NO_PAD.encode(&altered);
            assert_eq!(a.verify(&text), Err(TokenError::BadSignature), "byte {i}");
        }
    }

    #[test]
    fn short_keys_garbage_and_other_formats_are_refused() {
        assert_eq!(
            TokenKey::new(&[0; 31]).err(),
            Some(TokenKeyError::TooShort(31))
        );
        let a = key(1);
        for text in [
            "",
            "!!",
            "abc",
            "Tn2SLgqJ2F8nEeGkMWAfNA",
            &"A".repeat(10_000),
        ] {
            assert!(a.verify(text).is_err(), "{text:?}");
        }
        // A well-signed payload of another format.
        let mut payload = vec![9u8; HEADER_LEN];
        payload.extend_from_slice(b"id");
        let mut mac = a.mac.clone();
        mac.update(&payload);
        payload.extend_from_slice(&mac.finalize().into_bytes());
        assert_eq!(
            a.verify(&URL_SAFE_NO_PAD.encode(payload)),
            Err(TokenError::UnsupportedFormat(9))
        );
    }

    #[test]
    fn user_tags_tell_users_and_keys_apart() {
        let (a, b) = (key(1), key(2));
        assert_eq!(a.user_tag(Some("alice")), a.user_tag(Some("alice")));
        assert_ne!(a.user_tag(Some("alice")), a.user_tag(Some("bob")));
        assert_ne!(a.user_tag(None), a.user_tag(Some("")));
        assert_ne!(a.user_tag(Some("alice")), b.user_tag(Some("alice")));
    }

    #[test]
    fn attachable_within_the_window_only() {
        let a = key(1);
        let t = token(&a);
        assert!(t.attachable_at(t.issued_at_ms + 15_000, 15_000));
        assert!(!t.attachable_at(t.issued_at_ms + 15_001, 15_000));
        assert!(t.attachable_at(t.issued_at_ms - 5, 15_000));
    }

    proptest! {
        #[test]
        fn round_trip(id in "[A-Za-z0-9_-]{1,128}", at: u64, version: u8, stateful: bool, user in proptest::option::of(".{0,40}")) {
            let a = key(7);
            let t = ConnectionToken {
                connection_id: id,
                issued_at_ms: at,
                negotiate_version: version,
                stateful,
                user: a.user_tag(user.as_deref()),
            };
            prop_assert_eq!(a.verify(&a.sign(&t)), Ok(t));
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,300}") {
            let _ = key(7).verify(&text);
        }
    }
}
