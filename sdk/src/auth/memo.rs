//! A one-entry memo: the last value computed from a key, reused while the key stays the same.
//!
//! Sessions use it for what they would otherwise recompute on every call from data that
//! changes only at a refresh: the parsed PDS URL, and (OAuth) the access token's `ath` hash.

use std::sync::{Mutex, PoisonError};

/// The value last made from a key (see the [module docs](self)).
pub(crate) struct Memo<K, V> {
    last: Mutex<Option<(K, V)>>,
}

impl<K: PartialEq + Clone, V: Clone> Memo<K, V> {
    /// An empty memo.
    pub(crate) fn new() -> Self {
        Memo {
            last: Mutex::new(None),
        }
    }

    /// The value for `key`: the remembered one when `key` is the last key, otherwise `make()`.
    pub(crate) fn get_or(&self, key: &K, make: impl FnOnce() -> V) -> V {
        match self.get_or_try(key, || Ok::<V, std::convert::Infallible>(make())) {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// The value for `key`: the remembered one when `key` is the last key, otherwise
    /// `make()`, remembered when it succeeds.
    pub(crate) fn get_or_try<E>(
        &self,
        key: &K,
        make: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((known, value)) = &*last
            && known == key
        {
            return Ok(value.clone());
        }
        let value = make()?;
        *last = Some((key.clone(), value.clone()));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_the_value_until_the_key_changes() {
        let memo: Memo<String, usize> = Memo::new();
        let made = std::cell::Cell::new(0);
        let get = |key: &str| {
            memo.get_or(&key.to_owned(), || {
                made.set(made.get() + 1);
                key.len()
            })
        };
        assert_eq!(get("abc"), 3);
        assert_eq!(get("abc"), 3);
        assert_eq!(get("abcd"), 4);
        assert_eq!(get("abc"), 3);
        assert_eq!(made.get(), 3);
        // A failure is not remembered.
        assert_eq!(
            memo.get_or_try(&"x".to_owned(), || Err::<usize, _>("no")),
            Err("no")
        );
        assert_eq!(memo.get_or_try(&"x".to_owned(), || Ok::<_, ()>(1)), Ok(1));
    }
}
