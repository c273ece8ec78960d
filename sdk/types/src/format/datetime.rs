//! `datetime`: RFC 3339 ∩ ISO 8601 timestamps.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveTime, TimeZone, Timelike, Utc};

use super::{Format, FormatError, Reason, string_conversions};

/// The longest datetime accepted, in bytes.
pub(crate) const MAX_LEN: usize = 64;

/// A lexicon datetime: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`.
///
/// * upper-case `T` and `Z`, seconds and a time zone are required; any number of fraction
///   digits (only the first nine are significant); any offset from `-23:59` to `+23:59` except
///   `-00:00`;
/// * the date must exist (`1985-02-30` does not), leap seconds (`:60`) are rejected, and the
///   instant, in UTC, must fall in the years 0000–9999;
/// * at most 64 characters.
///
/// The original string is kept, so values round-trip exactly; [`Datetime::time`] gives the
/// parsed time. Equality and hashing use the string (`…50Z` and `…50.000Z` are different
/// values); ordering is by instant, then by string, so it agrees with equality.
///
/// ```
/// use atlex_types::Datetime;
/// let dt = Datetime::new("1985-04-12T23:20:50.123-10:00")?;
/// assert_eq!(dt.as_str(), "1985-04-12T23:20:50.123-10:00");
/// assert_eq!(dt.time().to_rfc3339(), "1985-04-12T23:20:50.123-10:00");
/// assert!(Datetime::new("1985-04-12T23:20:50.123-00:00").is_err());
/// assert!(Datetime::new("1985-02-30T00:00:00Z").is_err());
/// # Ok::<(), atlex_types::FormatError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Datetime {
    value: String,
    time: DateTime<FixedOffset>,
}

impl Datetime {
    /// Validates and wraps `value`.
    pub fn new(value: impl Into<String>) -> Result<Self, FormatError> {
        let value = value.into();
        match parse(&value) {
            Ok(time) => Ok(Datetime { value, time }),
            Err(reason) => Err(FormatError::new(Format::Datetime, &value, reason)),
        }
    }

    /// For the `datetime!` macro only: wraps a literal that was validated at compile time,
    /// with its instant (seconds and nanoseconds since the Unix epoch) and UTC offset in
    /// seconds, as computed by the macro.
    #[doc(hidden)]
    pub fn __from_literal(
        value: &'static str,
        unix_seconds: i64,
        nanos: u32,
        offset_seconds: i32,
    ) -> Self {
        let time = DateTime::from_timestamp(unix_seconds, nanos)
            .zip(FixedOffset::east_opt(offset_seconds))
            .map(|(utc, offset)| utc.with_timezone(&offset))
            .unwrap_or_default();
        Datetime {
            value: value.to_owned(),
            time,
        }
    }

    /// The current time, in UTC with millisecond precision (`2024-05-01T12:34:56.789Z`).
    pub fn now() -> Datetime {
        let now = Utc::now();
        let millis = now.timestamp_subsec_millis();
        let value = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{millis:03}Z",
            now.year(),
            now.month(),
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
        );
        let time = now
            .with_nanosecond(millis * 1_000_000)
            .unwrap_or(now)
            .fixed_offset();
        Datetime { value, time }
    }

    /// `time` converted to UTC and written with microsecond precision
    /// (`2024-05-01T12:34:56.789012Z`); sub-microsecond digits are dropped. Fails when the
    /// year is outside 0000–9999.
    pub fn from_time<Tz: TimeZone>(time: &DateTime<Tz>) -> Result<Datetime, FormatError> {
        let utc = time.with_timezone(&Utc);
        let micros = utc.timestamp_subsec_micros();
        let value = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            utc.year(),
            utc.month(),
            utc.day(),
            utc.hour(),
            utc.minute(),
            utc.second(),
        );
        Datetime::new(value)
    }

    /// The string form, exactly as given.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The string form, by value.
    pub fn into_string(self) -> String {
        self.value
    }

    /// The parsed time, with the offset that was written (`Z` is `+00:00`).
    pub fn time(&self) -> DateTime<FixedOffset> {
        self.time
    }

    /// The parsed time in UTC.
    pub fn to_utc(&self) -> DateTime<Utc> {
        self.time.to_utc()
    }
}

impl PartialEq for Datetime {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl Eq for Datetime {}

impl Hash for Datetime {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.value.hash(state);
    }
}

impl PartialOrd for Datetime {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Datetime {
    fn cmp(&self, other: &Self) -> Ordering {
        self.time
            .cmp(&other.time)
            .then_with(|| self.value.cmp(&other.value))
    }
}

string_conversions!(Datetime, "a datetime string");

// No `Borrow<str>`: ordering is by instant, not by string.

const SYNTAX: &str = "expected YYYY-MM-DDTHH:MM:SS[.fraction] followed by Z or ±HH:MM";

/// Parses and fully validates a datetime (syntax, calendar, UTC year range).
pub(crate) fn parse(value: &str) -> Result<DateTime<FixedOffset>, Reason> {
    let b = value.as_bytes();
    if b.len() > MAX_LEN {
        return Err(format!("longer than {MAX_LEN} bytes").into());
    }
    let digits = |at: usize, n: usize| -> Option<u32> {
        let part = b.get(at..at + n)?;
        part.iter().try_fold(0u32, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    let byte = |at: usize| b.get(at).copied();

    let year = digits(0, 4).ok_or(SYNTAX)?;
    if byte(4) != Some(b'-') {
        return Err(SYNTAX.into());
    }
    let month = digits(5, 2).ok_or(SYNTAX)?;
    if byte(7) != Some(b'-') {
        return Err(SYNTAX.into());
    }
    let day = digits(8, 2).ok_or(SYNTAX)?;
    match byte(10) {
        Some(b'T') => {}
        Some(b't') => return Err("the 'T' separator must be upper case".into()),
        _ => return Err(SYNTAX.into()),
    }
    let hour = digits(11, 2).ok_or(SYNTAX)?;
    if byte(13) != Some(b':') {
        return Err(SYNTAX.into());
    }
    let minute = digits(14, 2).ok_or(SYNTAX)?;
    match byte(16) {
        Some(b':') => {}
        None | Some(b'Z' | b'z' | b'+' | b'-') => return Err("seconds are required".into()),
        Some(_) => return Err(SYNTAX.into()),
    }
    let second = digits(17, 2).ok_or(SYNTAX)?;

    let mut at = 19;
    let mut nanos = 0u32;
    if byte(at) == Some(b'.') {
        at += 1;
        let start = at;
        while let Some(d) = byte(at).filter(u8::is_ascii_digit) {
            if at - start < 9 {
                nanos = nanos * 10 + u32::from(d - b'0');
            }
            at += 1;
        }
        if at == start {
            return Err("empty fraction of a second".into());
        }
        for _ in (at - start)..9 {
            nanos *= 10;
        }
    }

    let offset_seconds = match b.get(at..) {
        Some(b"Z") => 0,
        Some(b"z") => return Err("the 'Z' time zone must be upper case".into()),
        Some([]) | None => return Err("time zone is required".into()),
        Some(&[sign @ (b'+' | b'-'), ..]) => {
            if b.len() != at + 6 || byte(at + 3) != Some(b':') {
                return Err("time zone offset must be ±HH:MM".into());
            }
            let (Some(oh), Some(om)) = (digits(at + 1, 2), digits(at + 4, 2)) else {
                return Err("time zone offset must be ±HH:MM".into());
            };
            if oh > 23 || om > 59 {
                return Err("time zone offset out of range".into());
            }
            if sign == b'-' && oh == 0 && om == 0 {
                return Err("the offset -00:00 is not allowed (use Z or +00:00)".into());
            }
            let seconds = (oh * 3600 + om * 60) as i32;
            if sign == b'-' { -seconds } else { seconds }
        }
        Some(_) => return Err(SYNTAX.into()),
    };

    if !(1..=12).contains(&month) {
        return Err(format!("month {month:02} out of range").into());
    }
    if !(1..=31).contains(&day) {
        return Err(format!("day {day:02} out of range").into());
    }
    if hour > 23 {
        return Err(format!("hour {hour:02} out of range").into());
    }
    if minute > 59 {
        return Err(format!("minute {minute:02} out of range").into());
    }
    if second == 60 {
        return Err("leap seconds (:60) are not supported".into());
    }
    if second > 59 {
        return Err(format!("second {second:02} out of range").into());
    }
    let Some(date) = NaiveDate::from_ymd_opt(year as i32, month, day) else {
        return Err(format!("{year:04}-{month:02}-{day:02} is not a calendar date").into());
    };
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos).ok_or(SYNTAX)?;
    let offset = FixedOffset::east_opt(offset_seconds).ok_or("time zone offset out of range")?;
    let parsed = offset
        .from_local_datetime(&date.and_time(time))
        .single()
        .ok_or("time zone offset out of range")?;
    let utc_year = parsed.naive_utc().year();
    if !(0..=9999).contains(&utc_year) {
        return Err(format!("in UTC the year is {utc_year}, outside 0000-9999").into());
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(value: &str) -> String {
        Datetime::new(value).unwrap_err().reason().to_owned()
    }

    #[test]
    fn keeps_the_original_string() {
        for s in [
            "1985-04-12T23:20:50.120000Z",
            "1985-04-12T23:20:50Z",
            "0985-04-12T23:20:50.123-07:00",
        ] {
            let dt = Datetime::new(s).unwrap();
            assert_eq!(dt.as_str(), s);
            assert_eq!(serde_json::to_string(&dt).unwrap(), format!("\"{s}\""));
        }
    }

    #[test]
    fn offsets() {
        let dt = Datetime::new("1985-04-12T23:20:50.123-10:00").unwrap();
        assert_eq!(dt.time().offset().local_minus_utc(), -10 * 3600);
        assert_eq!(dt.to_utc().to_rfc3339(), "1985-04-13T09:20:50.123+00:00");
        Datetime::new("1985-04-12T23:20:50.123+01:45").unwrap();
        Datetime::new("1985-04-12T23:20:50.123+23:59").unwrap();
        Datetime::new("1985-04-12T23:20:50.123+00:00").unwrap();
        assert_eq!(
            reason("1985-04-12T23:20:50.123-00:00"),
            "the offset -00:00 is not allowed (use Z or +00:00)"
        );
        assert_eq!(
            reason("1985-04-12T23:20:50.123+24:00"),
            "time zone offset out of range"
        );
        assert_eq!(
            reason("1985-04-12T23:20:50.123+00:60"),
            "time zone offset out of range"
        );
        for bad in ["+0000", "+00", "+00:0", "+0:00", "+", "-", "+00:00 "] {
            assert_eq!(
                reason(&format!("1985-04-12T23:20:50.123{bad}")),
                "time zone offset must be ±HH:MM"
            );
        }
    }

    #[test]
    fn time_zone_required_and_upper_case() {
        assert_eq!(reason("1985-04-12T23:20:50.123"), "time zone is required");
        assert_eq!(
            reason("1985-04-12T23:20:50.123z"),
            "the 'Z' time zone must be upper case"
        );
        assert_eq!(
            reason("1985-04-12t23:20:50.123Z"),
            "the 'T' separator must be upper case"
        );
        assert_eq!(reason("1985-04-12T23:20:50.123Z "), SYNTAX);
    }

    #[test]
    fn seconds_required() {
        assert_eq!(reason("1985-04-12T23:20Z"), "seconds are required");
        assert_eq!(reason("1985-04-12T23:20:5Z"), SYNTAX);
    }

    #[test]
    fn fractions() {
        let dt = Datetime::new("1985-04-12T23:20:50.1235678912345Z").unwrap();
        assert_eq!(dt.time().nanosecond(), 123_567_891);
        assert_eq!(
            Datetime::new("1985-04-12T23:20:50.1Z")
                .unwrap()
                .time()
                .nanosecond(),
            100_000_000
        );
        assert_eq!(
            reason("1985-04-12T23:20:50.Z"),
            "empty fraction of a second"
        );
    }

    #[test]
    fn padding() {
        for bad in [
            "1985-4-12T23:20:50.123Z",
            "01985-04-12T23:20:50.123Z",
            "985-04-12T23:20:50.123Z",
        ] {
            assert_eq!(reason(bad), SYNTAX, "{bad}");
        }
    }

    #[test]
    fn ranges_and_calendar() {
        assert_eq!(reason("1985-00-12T23:20:50.123Z"), "month 00 out of range");
        assert_eq!(reason("1985-13-12T23:20:50.123Z"), "month 13 out of range");
        assert_eq!(reason("1985-04-00T23:20:50.123Z"), "day 00 out of range");
        assert_eq!(reason("1985-04-32T23:20:50.123Z"), "day 32 out of range");
        assert_eq!(
            reason("1985-04-31T23:20:50.123Z"),
            "1985-04-31 is not a calendar date"
        );
        assert_eq!(
            reason("1985-02-29T23:20:50.123Z"),
            "1985-02-29 is not a calendar date"
        );
        Datetime::new("1984-02-29T23:20:50.123Z").unwrap();
        assert_eq!(reason("1985-04-12T25:20:50.123Z"), "hour 25 out of range");
        assert_eq!(reason("1985-04-12T23:99:50.123Z"), "minute 99 out of range");
        assert_eq!(reason("1985-04-12T23:20:61.123Z"), "second 61 out of range");
    }

    #[test]
    fn leap_seconds_are_rejected() {
        assert_eq!(
            reason("1998-12-31T23:59:60Z"),
            "leap seconds (:60) are not supported"
        );
    }

    #[test]
    fn utc_year_range() {
        Datetime::new("0000-01-01T00:00:00.000Z").unwrap();
        Datetime::new("0000-01-01T00:00:00-01:00").unwrap();
        assert_eq!(
            reason("0000-01-01T00:00:00+01:00"),
            "in UTC the year is -1, outside 0000-9999"
        );
        Datetime::new("9999-12-31T23:59:59Z").unwrap();
        assert_eq!(
            reason("9999-12-31T23:59:59-01:00"),
            "in UTC the year is 10000, outside 0000-9999"
        );
        assert_eq!(reason("-000001-12-31T23:00:00.000Z"), SYNTAX);
    }

    #[test]
    fn max_length() {
        let ok = format!("1985-04-12T23:20:50.{}Z", "1".repeat(MAX_LEN - 21));
        Datetime::new(ok.clone()).unwrap();
        assert_eq!(reason(&ok.replace(".1", ".11")), "longer than 64 bytes");
    }

    #[test]
    fn non_ascii() {
        assert_eq!(reason("1985\u{2014}04-32T23;20:50.123Z"), SYNTAX);
    }

    #[test]
    fn now_is_valid_with_millis() {
        let now = Datetime::now();
        let again = Datetime::new(now.as_str()).unwrap();
        assert_eq!(again.time(), now.time());
        assert_eq!(now.as_str().len(), "2024-05-01T12:34:56.789Z".len());
    }

    #[test]
    fn from_time_uses_utc_micros() {
        let t = DateTime::parse_from_rfc3339("1985-04-12T23:20:50.123456789-07:00").unwrap();
        let dt = Datetime::from_time(&t).unwrap();
        assert_eq!(dt.as_str(), "1985-04-13T06:20:50.123456Z");
    }

    #[test]
    fn eq_by_string_ord_by_instant() {
        let a = Datetime::new("1985-04-12T23:20:50Z").unwrap();
        let b = Datetime::new("1985-04-12T23:20:50.000Z").unwrap();
        let c = Datetime::new("1985-04-13T00:20:50+01:00").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.time(), b.time());
        assert_ne!(a.cmp(&b), Ordering::Equal);
        let earlier = Datetime::new("1985-04-12T23:20:49.999-00:01").unwrap();
        assert!(earlier > a, "23:20:49.999-00:01 is 23:21:49.999Z");
        assert_eq!(c.time(), b.time());
        assert_ne!(c.cmp(&b), Ordering::Equal);
    }
}
