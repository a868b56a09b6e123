//! Compile tests of `#[profilis::profile]`: accepted uses build, rejected
//! ones fail with a clear message pointing at the mistake.

#[test]
fn compile_tests() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
