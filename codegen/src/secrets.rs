//! Which lexicon fields hold credentials: the one list the generator uses.
//!
//! A field holds a credential when its JSON name (compared case-insensitively)
//!
//! * ends with `password` (`password`, `newPassword`; app passwords are returned as `password`),
//! * ends with `token` (`token`: email, PLC, push and service-auth tokens; `authFactorToken`,
//!   `plcToken`, …),
//! * ends with `jwt` or contains `jwt` (`accessJwt`, `refreshJwt`),
//! * ends with `code` or `codes` (`code`, `inviteCode`, `verificationCode`, `joinLinkCode`,
//!   invite-code lists) — except the names in [`NOT_SECRET`], which are codes in the sense of
//!   identifiers (`countryCode`, `errorCode`, …),
//! * ends with `otp` or `privatekey`, or contains `secret`;
//!
//! or is listed in [`SECRET_NAMES`]. Keys in the official lexicons (`signingKey`, `recoveryKey`,
//! `rotationKeys`, `currentKey`) are **public** keys in `did:key` form and are not secrets;
//! a private key would match `privatekey`. The test `secret_fields_cover_official_lexicons`
//! (in `codegen/tests/secrets.rs`) fails when an official field whose name looks like a
//! credential (`pass`, `secret`, `token`, `jwt`, `code`, `key`, `otp`, `nonce`, `cred`,
//! `private`, `recovery`) is neither covered by this rule nor listed in [`REVIEWED_PUBLIC`].
//!
//! What the generator does with it: a struct with a credential field gets a `Debug` that prints
//! `<redacted>` for those fields and for its `extra` (unknown fields may be credentials too);
//! an endpoint whose output holds one, directly or in a nested type, gets
//! `const OUTPUT_HAS_SECRETS: bool = true`, so its decode errors keep neither the body nor the
//! offending value.

/// Names that end like a credential but hold an identifier.
pub const NOT_SECRET: &[&str] = &["countryCode", "regionCode", "errorCode", "failureCode"];

/// Credential names the suffix rule does not catch (none in the official lexicons today; the
/// place to add one).
pub const SECRET_NAMES: &[&str] = &[];

/// Official field names that look like credentials but are not, each reviewed: public keys,
/// flags and counts about credentials, and names that merely contain a pattern.
pub const REVIEWED_PUBLIC: &[&str] = &[
    // `did:key` public keys and key identifiers.
    "signingKey",
    "recoveryKey",
    "rotationKeys",
    "currentKey",
    "keyPackage",
    // Ozone setting keys (option names), record keys.
    "key",
    "keys",
    "rkey",
    // Flags and counts.
    "tokenRequired",
    "inviteCodeRequired",
    "codeCount",
    "privateStateValues",
    // App password listings: names and dates, never the passwords.
    "passwords",
];

/// Suffixes (lower case) that mark a credential.
const SECRET_SUFFIXES: &[&str] = &[
    "password",
    "token",
    "jwt",
    "code",
    "codes",
    "otp",
    "privatekey",
];

/// Whether the field called `wire` (its JSON name) holds a credential. See the module docs for
/// the rule.
pub fn is_secret(wire: &str) -> bool {
    if SECRET_NAMES.contains(&wire) {
        return true;
    }
    if NOT_SECRET.contains(&wire) {
        return false;
    }
    let lower = wire.to_ascii_lowercase();
    SECRET_SUFFIXES.iter().any(|suffix| lower.ends_with(suffix))
        || lower.contains("jwt")
        || lower.contains("secret")
}

/// Whether a field name looks like it might hold a credential (the net the coverage test casts
/// over the official lexicons): every such name must be [`is_secret`] or [`REVIEWED_PUBLIC`].
pub fn looks_secret(wire: &str) -> bool {
    let lower = wire.to_ascii_lowercase();
    [
        "pass", "secret", "token", "jwt", "code", "key", "otp", "nonce", "cred", "private",
        "recovery",
    ]
    .iter()
    .any(|pattern| lower.contains(pattern))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule() {
        for name in [
            "password",
            "newPassword",
            "accessJwt",
            "refreshJwt",
            "token",
            "authFactorToken",
            "plcToken",
            "code",
            "inviteCode",
            "verificationCode",
            "codes",
            "clientSecret",
            "privateKey",
        ] {
            assert!(is_secret(name), "{name}");
        }
        for name in [
            "countryCode",
            "signingKey",
            "passwords",
            "tokenRequired",
            "name",
        ] {
            assert!(!is_secret(name), "{name}");
        }
    }
}
