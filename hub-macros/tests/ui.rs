//! Compile tests of `#[hub]` and `#[hub_client]`: `pass/` must build, `fail/` must fail with the
//! `.stderr` beside each case (generated with `TRYBUILD=overwrite` and reviewed; each case starts
//! with a comment stating the rule it pins).

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
