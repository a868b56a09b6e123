#[profilis::profile]
struct NotAFunction {
    field: u32,
}

fn main() {}
