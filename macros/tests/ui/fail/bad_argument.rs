#[profilis::profile(label = "x")]
fn f() {}

#[profilis::profile(name = 42)]
fn g() {}

#[profilis::profile(name = "")]
fn h() {}

fn main() {}
