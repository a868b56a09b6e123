use profilis::profile;

#[profile]
fn unit() {}

#[profile(name = "renamed")]
pub fn with_name(x: u32) -> u32 {
    x
}

#[profile]
fn question_mark(s: &str) -> Result<u32, Box<dyn std::error::Error>> {
    let v: u32 = s.parse()?;
    Ok(v)
}

#[profile]
fn io_alias() -> std::io::Result<()> {
    Ok(())
}

#[profile]
fn borrows<'a>(s: &'a str, _t: &str) -> &'a str {
    s
}

#[profile]
fn impl_trait() -> impl Iterator<Item = u32> {
    0..3
}

#[profile]
fn generic<T: Default>() -> T {
    T::default()
}

#[profile]
unsafe fn unsafe_fn(p: *const u8) -> u8 {
    // SAFETY: callers pass a valid pointer.
    unsafe { *p }
}

struct S(Vec<u8>);

impl S {
    #[profile]
    fn by_ref(&self) -> &[u8] {
        &self.0
    }

    #[profile]
    fn by_mut(&mut self) -> Option<&mut u8> {
        self.0.first_mut()
    }

    #[profile]
    fn by_value(self) -> Self {
        self
    }

    #[profile]
    async fn async_method(&self) -> usize {
        self.0.len()
    }
}

trait Greeter {
    fn greet(&self) -> String;
}

impl Greeter for S {
    #[profile]
    fn greet(&self) -> String {
        "hi".into()
    }
}

#[profile]
async fn async_result(x: u32) -> Result<u32, std::num::TryFromIntError> {
    let y = u8::try_from(x)?;
    Ok(u32::from(y))
}

#[profile]
async fn async_borrow(s: &str) -> &str {
    s
}

#[profile(name = "async.named")]
async fn async_named() {}

#[profile]
fn mutates(mut x: u32, (a, b): (u32, u32)) -> u32 {
    x += a + b;
    x
}

#[profile]
async fn async_patterns(mut v: Vec<u32>, (a, _): (u8, u8)) -> Option<u32> {
    v.push(u32::from(a));
    let first = v.first()?;
    Some(*first)
}

#[profile]
fn early_return(n: u32) -> Result<u32, String> {
    if n == 0 {
        return Err("zero".into());
    }
    Ok(n)
}

fn main() {
    let _ = mutates(1, (2, 3));
    let _ = async_patterns(vec![], (1, 2));
    let _ = early_return(0);
    unit();
    let _ = with_name(1);
    let _ = question_mark("1");
    let _ = io_alias();
    let _ = borrows("a", "b");
    let _ = impl_trait().count();
    let _: u8 = generic();
    let byte = 7u8;
    // SAFETY: a valid pointer.
    let _ = unsafe { unsafe_fn(&byte) };
    let mut s = S(vec![1]);
    let _ = s.by_ref();
    let _ = s.by_mut();
    let _ = s.greet();
    let _ = s.async_method();
    let _ = s.by_value();
    let _ = async_result(1);
    let _ = async_borrow("x");
    let _ = async_named();
}
