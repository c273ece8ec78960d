//! Property tests for the string formats: values generated from each format's grammar are
//! accepted and round-trip through `Display`/`FromStr` and serde; mutated values are either
//! rejected or accepted consistently by every path; TID generation is monotonic.

use std::collections::HashSet;
use std::fmt::{Debug, Display};
use std::str::FromStr;

use atlex::types::format::{Format, FormatError, validate};
use atlex::types::{
    AtIdentifier, AtUri, Cid, Datetime, Did, Handle, Language, Nsid, RecordKey, Tid, Uri,
};
use proptest::prelude::*;
use proptest::sample::select;
use serde::Serialize;
use serde::de::DeserializeOwned;

// ---------------------------------------------------------------------------------------------
// Strategies, written from the grammars in lexicon-rules §4 (independently of the validators).

fn did() -> impl Strategy<Value = String> {
    "did:[a-z]{1,12}:[a-zA-Z0-9._:%-]{0,40}[a-zA-Z0-9._-]"
}

fn handle() -> impl Strategy<Value = String> {
    prop_oneof![
        "([a-zA-Z0-9]([a-zA-Z0-9-]{0,20}[a-zA-Z0-9])?\\.){1,5}[a-zA-Z]([a-zA-Z0-9-]{0,20}[a-zA-Z0-9])?",
        // Long labels, near the 63-byte and 253-byte limits.
        "([a-z0-9][a-z0-9-]{55,61}[a-z0-9]\\.){1,3}[a-z][a-z0-9-]{55,61}[a-z0-9]",
    ]
    .prop_filter("at most 253 bytes", |s| s.len() <= 253)
}

fn nsid() -> impl Strategy<Value = String> {
    "[a-zA-Z]([a-zA-Z0-9-]{0,20}[a-zA-Z0-9])?(\\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,20}[a-zA-Z0-9])?){1,4}\\.[a-zA-Z][a-zA-Z0-9]{0,62}"
        .prop_filter("at most 317 bytes", |s| s.len() <= 317)
}

fn record_key() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z0-9_~.:-]{1,20}", "[a-zA-Z0-9_~.:-]{500,512}",]
        .prop_filter("not . or ..", |s| s != "." && s != "..")
}

fn tid() -> impl Strategy<Value = String> {
    "[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}"
}

fn cid() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9+=]{8,256}".prop_filter("not CIDv0", |s| !s.starts_with("Qm"))
}

fn uri() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9+.-]{0,20}:[!-~]{1,100}"
}

fn at_identifier() -> impl Strategy<Value = String> {
    prop_oneof![did(), handle()]
}

fn at_uri() -> impl Strategy<Value = String> {
    (
        at_identifier(),
        proptest::option::of((nsid(), proptest::option::of(record_key()))),
    )
        .prop_map(|(authority, path)| match path {
            None => format!("at://{authority}"),
            Some((collection, None)) => format!("at://{authority}/{collection}"),
            Some((collection, Some(rkey))) => format!("at://{authority}/{collection}/{rkey}"),
        })
}

/// The components of a datetime, for an independent check of the parsed time.
#[derive(Debug, Clone)]
struct DatetimeParts {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    fraction: Option<String>,
    /// `None` for `Z`, else the offset in minutes (never written as `-00:00`).
    offset_minutes: Option<i64>,
}

impl DatetimeParts {
    fn text(&self) -> String {
        let mut s = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        );
        if let Some(f) = &self.fraction {
            s.push('.');
            s.push_str(f);
        }
        match self.offset_minutes {
            None => s.push('Z'),
            Some(m) => {
                let sign = if m < 0 { '-' } else { '+' };
                s.push_str(&format!("{sign}{:02}:{:02}", m.abs() / 60, m.abs() % 60));
            }
        }
        s
    }

    /// Seconds since the Unix epoch of the instant (days-from-civil, proleptic Gregorian).
    fn unix_seconds(&self) -> i64 {
        let (y, m, d) = (self.year - i64::from(self.month <= 2), self.month, self.day);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days * 86_400 + self.hour * 3600 + self.minute * 60 + self.second
            - self.offset_minutes.unwrap_or(0) * 60
    }

    fn nanos(&self) -> u32 {
        let digits = self.fraction.as_deref().unwrap_or("");
        let first9: String = digits
            .chars()
            .chain(std::iter::repeat('0'))
            .take(9)
            .collect();
        first9.parse().unwrap()
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn datetime_parts() -> impl Strategy<Value = DatetimeParts> {
    let offset = prop_oneof![
        Just(None),
        (-(23 * 60 + 59)..=(23 * 60 + 59i64)).prop_map(Some),
        select(vec![0i64, -600, 60, 105, -59]).prop_map(Some),
    ];
    let year = prop_oneof![0..=9999i64, select(vec![0i64, 1, 1970, 2000, 9999])];
    (
        year,
        1..=12i64,
        1..=31i64,
        0..24i64,
        0..60i64,
        0..60i64,
        proptest::option::of("[0-9]{1,15}"),
        offset,
    )
        .prop_map(
            |(year, month, day, hour, minute, second, fraction, offset_minutes)| DatetimeParts {
                year,
                month,
                day: day.min(days_in_month(year, month)),
                hour,
                minute,
                second,
                fraction,
                offset_minutes,
            },
        )
        .prop_filter("UTC year within 0000-9999", |p| {
            // 0000-01-01T00:00:00Z is -62167219200; 10000-01-01T00:00:00Z is 253402300800.
            (-62_167_219_200..253_402_300_800).contains(&p.unix_seconds())
        })
}

fn language() -> impl Strategy<Value = String> {
    let primary = "[a-z]{2,3}";
    let script = proptest::option::of("[A-Z][a-z]{3}");
    let region = proptest::option::of(prop_oneof!["[A-Z]{2}", "[0-9]{3}"]);
    // Lower-case and in a set, so distinct case-insensitively.
    let variants = proptest::collection::btree_set("[a-z][a-z0-9]{4,7}|[0-9][a-z0-9]{3}", 0..3);
    let extensions = proptest::collection::btree_map(
        "[a-wyz0-9]",
        proptest::collection::vec("[a-zA-Z0-9]{2,8}", 1..3),
        0..3,
    );
    let private = proptest::option::of(proptest::collection::vec("[a-zA-Z0-9]{1,8}", 1..3));
    (primary, script, region, variants, extensions, private).prop_map(
        |(primary, script, region, variants, extensions, private)| {
            let mut tag = primary;
            for part in script.into_iter().chain(region).chain(variants) {
                tag.push('-');
                tag.push_str(&part);
            }
            for (singleton, subtags) in extensions {
                tag.push('-');
                tag.push_str(&singleton);
                for s in subtags {
                    tag.push('-');
                    tag.push_str(&s);
                }
            }
            if let Some(subtags) = private {
                tag.push_str("-x");
                for s in subtags {
                    tag.push('-');
                    tag.push_str(&s);
                }
            }
            tag
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Properties.

/// `value` is valid for `T`/`format`: accepted by `new`, `validate`, `FromStr` and serde, and
/// round-trips through `Display`/`FromStr` and JSON. `normalised` is the expected string form.
fn assert_valid<T>(format: Format, value: &str, normalised: &str) -> Result<(), TestCaseError>
where
    T: FromStr<Err = FormatError> + Display + Debug + Eq + Serialize + DeserializeOwned,
    T: for<'a> TryFrom<&'a str, Error = FormatError> + TryFrom<String, Error = FormatError>,
{
    let parsed: T = value
        .parse()
        .map_err(|e: FormatError| TestCaseError::fail(e.to_string()))?;
    prop_assert!(
        validate(format, value).is_ok(),
        "validate rejected {value:?}"
    );
    prop_assert_eq!(parsed.to_string(), normalised);
    prop_assert_eq!(&T::try_from(value)?, &parsed);
    prop_assert_eq!(&T::try_from(value.to_owned())?, &parsed);
    let reparsed: T = parsed.to_string().parse()?;
    prop_assert_eq!(&reparsed, &parsed);
    let json = serde_json::to_string(&parsed).unwrap();
    prop_assert_eq!(&json, &serde_json::to_string(normalised).unwrap());
    let from_json: T = serde_json::from_str(&json).unwrap();
    prop_assert_eq!(&from_json, &parsed);
    // Deserialising from a borrowed `&str` (serde_json::from_str on a non-escaped string hands
    // out a borrowed str) and from an owned `String` (serde_json::Value) both work.
    let from_value: T =
        serde_json::from_value(serde_json::Value::String(value.to_owned())).unwrap();
    prop_assert_eq!(&from_value, &parsed);
    Ok(())
}

/// Whatever `value` is, every path agrees: `validate`, `new` (through `FromStr`) and serde
/// accept it together or reject it together, with the same error; nothing panics.
fn assert_consistent<T>(format: Format, value: &str) -> Result<(), TestCaseError>
where
    T: FromStr<Err = FormatError> + Display + Debug + Eq + Serialize + DeserializeOwned,
{
    let validated = validate(format, value);
    let parsed = value.parse::<T>();
    let from_json = serde_json::from_value::<T>(serde_json::Value::String(value.to_owned()));
    match (&validated, &parsed) {
        (Ok(()), Ok(v)) => {
            let again: T = v.to_string().parse()?;
            prop_assert_eq!(&again, v);
            prop_assert_eq!(&from_json.unwrap(), v);
        }
        (Err(a), Err(b)) => {
            prop_assert_eq!(a, b);
            prop_assert_eq!(a.format(), format);
            let json_err = from_json.unwrap_err().to_string();
            prop_assert!(json_err.contains(&a.to_string()), "{json_err} / {a}");
        }
        _ => prop_assert!(
            false,
            "validate {validated:?} but new {parsed:?} for {value:?}"
        ),
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, char),
    Remove(usize),
    Replace(usize, char),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let ch = prop_oneof![
        select(vec![
            '.', '-', '_', ':', '/', '#', '?', '%', ' ', '\t', 'Z', 'z', 'T', '+', '@', 'A', '0',
            'é', '—', '💩'
        ]),
        proptest::char::range('!', '~'),
    ];
    prop_oneof![
        (any::<usize>(), ch.clone()).prop_map(|(i, c)| Mutation::Insert(i, c)),
        any::<usize>().prop_map(Mutation::Remove),
        (any::<usize>(), ch).prop_map(|(i, c)| Mutation::Replace(i, c)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(value: &str, m: &Mutation) -> String {
    let mut chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    match *m {
        Mutation::Insert(i, c) => chars.insert(i % (n + 1), c),
        Mutation::Remove(i) if n > 0 => {
            chars.remove(i % n);
        }
        Mutation::Replace(i, c) if n > 0 => chars[i % n] = c,
        Mutation::Truncate(i) => chars.truncate(i % (n + 1)),
        _ => {}
    }
    chars.into_iter().collect()
}

macro_rules! format_props {
    ($module:ident, $ty:ty, $format:expr, $strategy:expr, $normalise:expr) => {
        mod $module {
            use super::*;

            proptest! {
                #[test]
                fn generated_values_are_valid_and_round_trip(value in $strategy) {
                    let normalise: fn(&str) -> String = $normalise;
                    assert_valid::<$ty>($format, &value, &normalise(&value))?;
                }

                #[test]
                fn mutated_values_fail_or_revalidate(value in $strategy, m in mutation()) {
                    assert_consistent::<$ty>($format, &mutate(&value, &m))?;
                }

                #[test]
                fn arbitrary_strings_are_handled_consistently(value in "\\PC{0,40}") {
                    assert_consistent::<$ty>($format, &value)?;
                }
            }
        }
    };
}

fn same(s: &str) -> String {
    s.to_owned()
}

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

fn lower_handles(s: &str) -> String {
    if s.starts_with("did:") {
        s.to_owned()
    } else {
        s.to_ascii_lowercase()
    }
}

format_props!(did_props, Did, Format::Did, did(), same);
format_props!(handle_props, Handle, Format::Handle, handle(), lower);
format_props!(
    at_identifier_props,
    AtIdentifier,
    Format::AtIdentifier,
    at_identifier(),
    lower_handles
);
format_props!(nsid_props, Nsid, Format::Nsid, nsid(), same);
format_props!(at_uri_props, AtUri, Format::AtUri, at_uri(), same);
format_props!(cid_props, Cid, Format::Cid, cid(), same);
format_props!(
    datetime_props,
    Datetime,
    Format::Datetime,
    datetime_parts().prop_map(|p| p.text()),
    same
);
format_props!(tid_props, Tid, Format::Tid, tid(), same);
format_props!(
    record_key_props,
    RecordKey,
    Format::RecordKey,
    record_key(),
    same
);
format_props!(language_props, Language, Format::Language, language(), same);
format_props!(uri_props, Uri, Format::Uri, uri(), same);

proptest! {
    #[test]
    fn datetime_time_matches_components(parts in datetime_parts()) {
        let dt = Datetime::new(parts.text()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(dt.time().timestamp(), parts.unix_seconds());
        prop_assert_eq!(dt.time().timestamp_subsec_nanos(), parts.nanos());
        prop_assert_eq!(
            i64::from(dt.time().offset().local_minus_utc()),
            parts.offset_minutes.unwrap_or(0) * 60
        );
    }

    #[test]
    fn datetime_eq_and_ord_agree(a in datetime_parts(), b in datetime_parts()) {
        let (a, b) = (Datetime::new(a.text()).unwrap(), Datetime::new(b.text()).unwrap());
        prop_assert_eq!(a == b, a.cmp(&b) == std::cmp::Ordering::Equal);
        prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        if a.time() < b.time() {
            prop_assert!(a < b);
        }
    }

    #[test]
    fn impossible_dates_are_rejected(
        year in 0..=9999i64,
        month in select(vec![2i64, 4, 6, 9, 11]),
        extra in 1..=3i64,
    ) {
        // Past the end of a month shorter than 31 days, but still a day 01-31.
        let day = (days_in_month(year, month) + extra).min(31);
        let text = format!("{year:04}-{month:02}-{day:02}T00:00:00Z");
        prop_assert!(Datetime::new(&*text).is_err());
        prop_assert!(validate(Format::Datetime, &text).is_err());
    }

    #[test]
    fn at_uri_parts_round_trip(authority in at_identifier(), collection in nsid(), rkey in record_key()) {
        let text = format!("at://{authority}/{collection}/{rkey}");
        let uri = AtUri::new(text).unwrap();
        prop_assert_eq!(uri.authority(), authority.as_str());
        prop_assert_eq!(uri.collection(), Some(collection.as_str()));
        prop_assert_eq!(uri.rkey(), Some(rkey.as_str()));
        let rebuilt = AtUri::from_parts(
            &uri.authority_id(),
            &uri.collection_nsid().unwrap(),
            &uri.record_key().unwrap(),
        );
        prop_assert_eq!(rebuilt.as_str(), lower_authority(uri.as_str()));
    }

    #[test]
    fn tid_from_parts_round_trips(micros in 0..(1u64 << 53), clock_id in 0..1024u16) {
        let tid = Tid::from_parts(micros, clock_id).unwrap();
        prop_assert_eq!(tid.timestamp_micros(), micros);
        prop_assert_eq!(tid.clock_id(), clock_id);
        prop_assert_eq!(&Tid::new(tid.as_str()).unwrap(), &tid);
        prop_assert!(validate(Format::Tid, tid.as_str()).is_ok());
    }

    #[test]
    fn tid_order_is_timestamp_then_clock_id(
        a in (0..(1u64 << 53), 0..1024u16),
        b in (0..(1u64 << 53), 0..1024u16),
    ) {
        let (ta, tb) = (Tid::from_parts(a.0, a.1).unwrap(), Tid::from_parts(b.0, b.1).unwrap());
        prop_assert_eq!(ta.cmp(&tb), a.cmp(&b));
    }

    #[test]
    fn tid_from_parts_rejects_out_of_range(micros in (1u64 << 53).., clock_id in 1024u16..) {
        prop_assert!(Tid::from_parts(micros, 0).is_none());
        prop_assert!(Tid::from_parts(0, clock_id).is_none());
    }
}

/// The AT URI with its handle authority (if any) lower-cased, as `authority_id` gives it.
fn lower_authority(uri: &str) -> String {
    let rest = &uri["at://".len()..];
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    format!("at://{}/{path}", lower_handles(authority))
        .trim_end_matches('/')
        .to_owned()
}

#[test]
fn tid_now_is_strictly_increasing() {
    let mut last = Tid::now();
    for _ in 0..20_000 {
        let next = Tid::now();
        assert!(next > last, "{next} after {last}");
        assert_eq!(next.clock_id(), last.clock_id());
        last = next;
    }
}

#[test]
fn tid_now_is_strictly_increasing_across_threads() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 5_000;
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            std::thread::spawn(|| {
                let tids: Vec<Tid> = (0..PER_THREAD).map(|_| Tid::now()).collect();
                assert!(
                    tids.windows(2).all(|w| w[0] < w[1]),
                    "not increasing within a thread"
                );
                tids
            })
        })
        .collect();
    let all: Vec<Tid> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let distinct: HashSet<&Tid> = all.iter().collect();
    assert_eq!(
        distinct.len(),
        THREADS * PER_THREAD,
        "duplicate TIDs across threads"
    );
}
