//! A redacting wrapper for credentials.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret string: an access or refresh token, a password, an auth-factor code.
///
/// Its `Debug` output is `Secret(<redacted>)` and it has no `Display`, so a secret cannot end up
/// in a log line, an error message or a panic by accident. Read it with [`Secret::expose`] only
/// where it is sent.
///
/// It serialises as the plain string: that is how sessions are written to a
/// session store (`atlex::auth::SessionStore`), which is responsible for keeping them safe.
///
/// ```
/// use atlex::auth::Secret;
/// let password = Secret::new("hunter2");
/// assert_eq!(format!("{password:?}"), "Secret(<redacted>)");
/// assert_eq!(password.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret value, for sending it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret(value.to_owned())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn debug_is_redacted() {
        let secret = Secret::new("eyJhbGciOi.secret.part");
        let debug = format!("{secret:?} {:?}", Some(&secret));
        assert!(!debug.contains("secret.part"), "{debug}");
    }

    #[test]
    fn serde_round_trip_is_the_plain_string() {
        let secret = Secret::new("tok");
        let json = serde_json::to_string(&secret).unwrap();
        assert_eq!(json, "\"tok\"");
        let back: Secret = serde_json::from_str(&json).unwrap();
        assert_eq!(back, secret);
    }
}
