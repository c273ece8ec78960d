//! `tid`: timestamp identifiers, validation and generation.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Format, FormatError, Reason, borrow_str, invalid_char, string_conversions};

/// The base32-sortable alphabet of TIDs, in ascending ASCII order.
const ALPHABET: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";
/// A TID is always 13 characters.
pub(crate) const LEN: usize = 13;
/// The largest timestamp a TID can hold (53 bits of microseconds, until the year 2255).
const MAX_MICROS: u64 = (1 << 53) - 1;
/// The largest clock id (10 bits).
const MAX_CLOCK_ID: u16 = (1 << 10) - 1;

/// A timestamp identifier: 13 characters of base32-sortable
/// (`234567abcdefghijklmnopqrstuvwxyz`) that encode a 64-bit integer made of a 53-bit
/// timestamp in microseconds since the Unix epoch and a 10-bit clock id. The first character is
/// one of `234567abcdefghij`.
///
/// TIDs sort by time as strings. [`Tid::now`] makes new ones that are strictly increasing
/// within the process; [`TidGenerator`] does the same with a clock id of your choice.
///
/// ```
/// use atlex_types::Tid;
/// let tid = Tid::new("3jzfcijpj2z2a")?;
/// assert_eq!(Tid::from_parts(tid.timestamp_micros(), tid.clock_id()), Some(tid));
///
/// let a = Tid::now();
/// let b = Tid::now();
/// assert!(a < b);
/// # Ok::<(), atlex_types::FormatError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tid(String);

impl Tid {
    /// Validates and wraps `value`.
    pub fn new(value: impl Into<String>) -> Result<Self, FormatError> {
        let value = value.into();
        match check(&value) {
            Ok(()) => Ok(Tid(value)),
            Err(reason) => Err(FormatError::new(Format::Tid, &value, reason)),
        }
    }

    /// For the `tid!` macro only: wraps a literal that was validated at compile time.
    #[doc(hidden)]
    pub fn __from_literal(value: &'static str) -> Self {
        Tid(value.to_owned())
    }

    /// The string form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The string form, by value.
    pub fn into_string(self) -> String {
        self.0
    }

    /// A new TID for the current time, strictly greater than every TID this function returned
    /// before in this process, even when the system clock stalls or goes backwards (the
    /// timestamp is then bumped by one microsecond past the last one).
    ///
    /// The clock id is chosen at random once per process.
    pub fn now() -> Tid {
        static LAST_MICROS: AtomicU64 = AtomicU64::new(0);
        let now = system_micros();
        let mut last = LAST_MICROS.load(Ordering::Relaxed);
        let micros = loop {
            let next = next_micros(last, now);
            match LAST_MICROS.compare_exchange_weak(
                last,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break next,
                Err(actual) => last = actual,
            }
        };
        Tid::encode(micros << 10 | u64::from(process_clock_id()))
    }

    /// The TID made of a timestamp (microseconds since the Unix epoch, at most 53 bits) and a
    /// clock id (at most 10 bits, i.e. below 1024); `None` when either is out of range.
    pub fn from_parts(timestamp_micros: u64, clock_id: u16) -> Option<Tid> {
        if timestamp_micros > MAX_MICROS || clock_id > MAX_CLOCK_ID {
            return None;
        }
        Some(Tid::encode(timestamp_micros << 10 | u64::from(clock_id)))
    }

    /// The timestamp: microseconds since the Unix epoch (the integer without its clock id).
    pub fn timestamp_micros(&self) -> u64 {
        self.to_u64() >> 10
    }

    /// The clock id (the low 10 bits).
    pub fn clock_id(&self) -> u16 {
        (self.to_u64() & u64::from(MAX_CLOCK_ID)) as u16
    }

    /// The 64-bit integer this TID encodes.
    pub fn to_u64(&self) -> u64 {
        self.0.bytes().fold(0u64, |acc, b| {
            acc << 5 | u64::from(decode_char(b).unwrap_or(0))
        })
    }

    fn encode(value: u64) -> Tid {
        let mut out = String::with_capacity(LEN);
        for i in (0..LEN).rev() {
            let digit = (value >> (5 * i)) & 31;
            out.push(char::from(ALPHABET[digit as usize]));
        }
        Tid(out)
    }
}

string_conversions!(Tid, "a TID string");
borrow_str!(Tid);

/// Makes TIDs with a fixed clock id, strictly increasing for this generator.
///
/// [`Tid::now`] is enough for most programs; use a generator to pick the clock id yourself
/// (for example one per writer), or to feed it timestamps from your own clock.
///
/// ```
/// use atlex_types::format::TidGenerator;
/// let mut tids = TidGenerator::with_clock_id(7).unwrap();
/// let a = tids.next_tid_at(1_000);
/// let b = tids.next_tid_at(1_000); // the clock stalled: the timestamp is bumped
/// let c = tids.next_tid_at(500); // the clock went back: still after b
/// assert!(a < b && b < c);
/// assert_eq!((b.timestamp_micros(), b.clock_id()), (1_001, 7));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TidGenerator {
    clock_id: u16,
    last_micros: Option<u64>,
}

impl TidGenerator {
    /// A generator with a random clock id.
    pub fn new() -> Self {
        TidGenerator {
            clock_id: random_clock_id(),
            last_micros: None,
        }
    }

    /// A generator with the given clock id; `None` unless it is below 1024.
    pub fn with_clock_id(clock_id: u16) -> Option<Self> {
        (clock_id <= MAX_CLOCK_ID).then_some(TidGenerator {
            clock_id,
            last_micros: None,
        })
    }

    /// The clock id of the TIDs this generator makes.
    pub fn clock_id(&self) -> u16 {
        self.clock_id
    }

    /// A new TID for the current system time, strictly greater than the previous one.
    pub fn next_tid(&mut self) -> Tid {
        self.next_tid_at(system_micros())
    }

    /// A new TID for the time `micros` (microseconds since the Unix epoch), or for one
    /// microsecond after the previous TID if `micros` is not later than it.
    ///
    /// Timestamps are capped at 2^53 − 1 (the year 2255); past that point TIDs stop increasing.
    pub fn next_tid_at(&mut self, micros: u64) -> Tid {
        let micros = match self.last_micros {
            Some(last) => next_micros(last, micros),
            None => micros.min(MAX_MICROS),
        };
        self.last_micros = Some(micros);
        Tid::encode(micros << 10 | u64::from(self.clock_id))
    }
}

impl Default for TidGenerator {
    fn default() -> Self {
        TidGenerator::new()
    }
}

/// The timestamp that follows `last` when the clock reads `now`.
fn next_micros(last: u64, now: u64) -> u64 {
    let now = now.min(MAX_MICROS);
    if now > last {
        now
    } else {
        last.saturating_add(1).min(MAX_MICROS)
    }
}

/// The system time in microseconds since the Unix epoch (0 before the epoch).
fn system_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The clock id of [`Tid::now`], chosen once per process.
fn process_clock_id() -> u16 {
    static CLOCK_ID: OnceLock<u16> = OnceLock::new();
    *CLOCK_ID.get_or_init(random_clock_id)
}

/// A random 10-bit clock id (from the OS; from the clock and process id if that fails).
fn random_clock_id() -> u16 {
    let random = getrandom::u32().unwrap_or_else(|_| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        nanos ^ std::process::id().rotate_left(16)
    });
    (random & u32::from(MAX_CLOCK_ID)) as u16
}

fn decode_char(b: u8) -> Option<u8> {
    match b {
        b'2'..=b'7' => Some(b - b'2'),
        b'a'..=b'z' => Some(b - b'a' + 6),
        _ => None,
    }
}

pub(crate) fn check(value: &str) -> Result<(), Reason> {
    if value.len() != LEN {
        return Err(format!("must be {LEN} characters, not {}", value.len()).into());
    }
    for (i, b) in value.bytes().enumerate() {
        if decode_char(b).is_none() {
            return Err(invalid_char(value, i, "TID (base32-sortable: 2-7, a-z)"));
        }
    }
    if !matches!(value.as_bytes().first(), Some(b'2'..=b'7' | b'a'..=b'j')) {
        return Err("first character must be one of 234567abcdefghij (high bit set)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(value: &str) -> String {
        Tid::new(value).unwrap_err().reason().to_owned()
    }

    #[test]
    fn syntax() {
        for ok in [
            "3jzfcijpj2z2a",
            "7777777777777",
            "3zzzzzzzzzzzz",
            "2222222222222",
            "jzzzzzzzzzzzz",
        ] {
            Tid::new(ok).unwrap();
        }
        assert_eq!(
            reason("3jzfcijpj2z21"),
            "invalid character '1' in TID (base32-sortable: 2-7, a-z)"
        );
        assert_eq!(
            reason("3JZFCIJPJ2Z2A"),
            "invalid character 'J' in TID (base32-sortable: 2-7, a-z)"
        );
        assert_eq!(reason("3jzfcijpj2z2aa"), "must be 13 characters, not 14");
        assert_eq!(reason("3jzf-cij-pj2z-2a"), "must be 13 characters, not 16");
        assert_eq!(
            reason("kjzfcijpj2z2a"),
            "first character must be one of 234567abcdefghij (high bit set)"
        );
        assert_eq!(
            reason("zzzzzzzzzzzzz"),
            "first character must be one of 234567abcdefghij (high bit set)"
        );
    }

    #[test]
    fn encoding() {
        assert_eq!(Tid::encode(0).as_str(), "2222222222222");
        assert_eq!(Tid::encode(u64::MAX).as_str(), "jzzzzzzzzzzzz");
        let tid = Tid::new("3jzfcijpj2z2a").unwrap();
        assert_eq!(Tid::encode(tid.to_u64()), tid);
        assert_eq!(
            Tid::from_parts(tid.timestamp_micros(), tid.clock_id()),
            Some(tid)
        );
    }

    #[test]
    fn from_parts_ranges() {
        let tid = Tid::from_parts(MAX_MICROS, MAX_CLOCK_ID).unwrap();
        assert_eq!(
            (tid.timestamp_micros(), tid.clock_id()),
            (MAX_MICROS, MAX_CLOCK_ID)
        );
        Tid::new(tid.as_str()).unwrap();
        assert_eq!(Tid::from_parts(MAX_MICROS + 1, 0), None);
        assert_eq!(Tid::from_parts(0, 1024), None);
    }

    #[test]
    fn now_is_recent_and_valid() {
        let tid = Tid::now();
        Tid::new(tid.as_str()).unwrap();
        let diff = system_micros().abs_diff(tid.timestamp_micros());
        assert!(diff < 60_000_000, "{diff}");
        assert_eq!(tid.clock_id(), Tid::now().clock_id());
    }

    #[test]
    fn generator_is_monotonic() {
        let mut g = TidGenerator::with_clock_id(5).unwrap();
        let a = g.next_tid_at(100);
        let b = g.next_tid_at(100);
        let c = g.next_tid_at(50);
        let d = g.next_tid_at(1_000);
        assert!(a < b && b < c && c < d);
        assert_eq!(
            [a, b, c, d].map(|t| t.timestamp_micros()),
            [100, 101, 102, 1_000]
        );
        assert!(TidGenerator::with_clock_id(1024).is_none());
    }

    #[test]
    fn generator_caps_at_max_timestamp() {
        let mut g = TidGenerator::with_clock_id(0).unwrap();
        assert_eq!(g.next_tid_at(u64::MAX).timestamp_micros(), MAX_MICROS);
        assert_eq!(g.next_tid_at(u64::MAX).timestamp_micros(), MAX_MICROS);
    }
}
