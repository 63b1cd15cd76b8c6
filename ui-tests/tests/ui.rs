//! UI tests of the macros: every file in `tests/fail` must fail to compile with the `.stderr`
//! beside it; every file in `tests/pass` must compile and run.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/fail/*.rs");
    t.pass("tests/pass/*.rs");
}
