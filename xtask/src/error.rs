//! The one error type of the xtask commands.
//!
//! Every failure here ends as a message to a person at a terminal, so the error is just that
//! message, built up with the context that makes it actionable (which file, which command).

use std::fmt;

/// A failed xtask operation, with a message that says what went wrong and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
}

impl Error {
    /// An error with the given message.
    pub fn new(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
        }
    }

    /// The message, without any prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// The result type of the xtask commands.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds a description of what was being done to any displayable error.
pub trait Context<T> {
    /// Turns the error into an [`Error`] whose message is `"{what}: {error}"`.
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|error| Error::new(format!("{}: {error}", what())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_prefixes_the_message() {
        let failed: std::result::Result<(), std::io::Error> = Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such file",
        ));
        let error = failed.context(|| "reading a.toml".to_owned()).unwrap_err();
        assert_eq!(error.message(), "reading a.toml: no such file");
        assert_eq!(error.to_string(), "reading a.toml: no such file");
    }
}
