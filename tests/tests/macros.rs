//! The literal macros (`atlex::did!`, …): valid literals compile and equal the value parsed at
//! run time; an invalid literal is a compile error at the literal with the `FormatError`
//! message (snapshots in `ui/macros/fail/*.stderr`; refresh with `TRYBUILD=overwrite`).

#[test]
fn literal_macros() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/macros/pass/*.rs");
    cases.compile_fail("tests/ui/macros/fail/*.rs");
}
