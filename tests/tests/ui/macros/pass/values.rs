use atlex::types::{Cid, Datetime, Language, RecordKey, Tid, Uri};

fn main() {
    let cid = atlex::cid!("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi");
    assert_eq!(cid, Cid::new("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi").unwrap());

    // The parsed time is computed at compile time; it must match a run-time parse exactly.
    for (literal, text) in [
        (atlex::datetime!("1985-04-12T23:20:50.123Z"), "1985-04-12T23:20:50.123Z"),
        (atlex::datetime!("1985-04-12T23:20:50.123-10:00"), "1985-04-12T23:20:50.123-10:00"),
        (atlex::datetime!("0000-01-01T00:00:00.000Z"), "0000-01-01T00:00:00.000Z"),
        (atlex::datetime!("1985-04-12T23:20:50.1235678912345+01:45"), "1985-04-12T23:20:50.1235678912345+01:45"),
    ] {
        let parsed = Datetime::new(text).unwrap();
        assert_eq!(literal, parsed);
        assert_eq!(literal.time(), parsed.time());
        assert_eq!(literal.time().offset(), parsed.time().offset());
    }

    let tid = atlex::tid!("3jzfcijpj2z2a");
    assert_eq!(tid, Tid::new("3jzfcijpj2z2a").unwrap());

    let rkey = atlex::record_key!("self");
    assert_eq!(rkey, RecordKey::new("self").unwrap());

    let lang = atlex::language!("en-GB-boont-r-extended-sequence-x-private");
    assert_eq!(lang, Language::new("en-GB-boont-r-extended-sequence-x-private").unwrap());

    let uri = atlex::uri!("https://example.com/path?q=blah&yes=true#frag.123");
    assert_eq!(uri, Uri::new("https://example.com/path?q=blah&yes=true#frag.123").unwrap());
}
