//! Compile-time checking of generated parameters and records: a missing required field, an
//! unknown field name, a value of the wrong type or format, and a literal that breaks a format
//! do not compile (`ui/params/fail/*.rs`; stderr snapshots refreshed with `TRYBUILD=overwrite`
//! when the generated code changes), while the well-formed uses in `ui/params/pass/` do.

#[test]
fn generated_parameters_are_checked_by_the_compiler() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/params/pass/*.rs");
    cases.compile_fail("tests/ui/params/fail/*.rs");
}
