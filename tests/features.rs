//! CI must run the tower, axum and tracing tests: `cargo test --workspace`
//! turns those features on through the workspace's feature unification (the
//! benches crate enables them). Fail loudly in CI if that ever stops.

#[test]
fn ci_builds_the_instrumentation_features() {
    let built = cfg!(feature = "tower") && cfg!(feature = "axum") && cfg!(feature = "tracing");
    if std::env::var_os("CI").is_some() && !built {
        panic!(
            "the tower/axum/tracing tests are not being built: run \
             `cargo test --workspace` (or enable the features)"
        );
    }
}
