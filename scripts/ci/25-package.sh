#!/usr/bin/env bash
# The published crates, checked as crates.io and docs.rs would take them:
# profilis-macros, profilis and profilis-reader.
#
# 1. `cargo publish --dry-run` of the three in one command: cargo packages
#    them in dependency order (macros, library, reader) and verifies each by
#    building it from its package alone, against the packages made before it
#    through a local registry. None of them is on crates.io yet, so a dry run
#    of one alone would look for its path dependencies there and fail
#    ("no matching package named `profilis-macros`"); `cargo package
#    --no-verify` would not build anything. Needs the crates.io index (the
#    dependencies are resolved as a user's build would), not an account.
# 2. Their documentation as docs.rs builds it (every feature), with rustdoc
#    warnings (a broken link) as errors. Their examples, the READMEs'
#    included, run as doc tests in the test stage. (docs.rs also passes
#    `--cfg docsrs` on a nightly toolchain, which marks each item with the
#    features it needs; `profilis` opts in with `feature(doc_cfg)`.)
# 3. The minimum Rust version the manifests state (`rust-version`, README:
#    Install): the three crates build with it, every feature on. The
#    toolchain comes from rustup when missing (minimal profile, about 10 s);
#    its own target directory keeps the main one untouched.
#
# To publish for real, from a clean tree, with a crates.io token:
#   cargo publish -p profilis-macros -p profilis -p profilis-reader
# (cargo 1.90 or newer publishes them in that order and waits for each to
# appear in the index before the next). With an older cargo, publish them
# one at a time in that order.
set -euo pipefail
cd "$(dirname "$0")/../.."
target_dir="${CARGO_TARGET_DIR:-target}"
crates=(-p profilis-macros -p profilis -p profilis-reader)

echo "--- cargo publish --dry-run: ${crates[*]}"
# --allow-dirty: a working tree with changes not committed yet is packaged
# as it is (the check is of the manifests and the files they take).
cargo publish --dry-run --locked --allow-dirty "${crates[@]}" 2>&1 \
  | { grep -vE '^ +(Compiling|Checking|Downloaded|Locking|Adding) ' || true; }

echo "--- docs as docs.rs builds them, warnings as errors"
RUSTDOCFLAGS="-D warnings" \
  cargo doc --no-deps --locked --all-features "${crates[@]}" --quiet

msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
echo "--- minimum Rust version $msrv"
if ! rustup run "$msrv" rustc --version >/dev/null 2>&1 \
  && ! rustup toolchain install "$msrv" --profile minimal --no-self-update >/dev/null 2>&1; then
  # Toolchains come from rustup's own server, which a machine limited to
  # package registries cannot reach: then only this step is left out.
  echo "Rust $msrv cannot be installed here (rustup's server not reachable): minimum version not checked"
  echo "package: the three crates package, verify and document"
  exit 0
fi
CARGO_TARGET_DIR="$target_dir/msrv" cargo "+$msrv" check --locked --all-features "${crates[@]}" --quiet
echo "package: the three crates package, verify, document and build with Rust $msrv"
