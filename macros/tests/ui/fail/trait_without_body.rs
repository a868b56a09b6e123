trait T {
    #[profilis::profile]
    fn no_body(&self);
}

fn main() {}
