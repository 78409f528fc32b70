//! Guards against silently skipped tests.
//!
//! Some test files compile to nothing without a feature (`#![cfg(feature = "testing")]`,
//! `fuzzing`, `auth`, `tracing`), so that the published package, which has no self dev-dependency,
//! still builds its tests with any feature set. In the repository the self dev-dependency
//! in Cargo.toml turns those features on for every test target, so a plain `cargo test`
//! runs everything. Should that ever stop (the dev-dependency removed or its features
//! changed), this test fails rather than let whole files pass with zero tests.
//!
//! "In the repository" means that `.ci/run` sits beside the manifest: the package leaves
//! `.ci/` out, and there the features are the caller's choice (`--features testing,fuzzing`).

use std::path::Path;

#[test]
fn every_test_gating_feature_is_on_in_the_repository() {
    let in_repository = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".ci/run")
        .is_file();
    if !in_repository {
        return;
    }
    let gates = [
        ("testing", cfg!(feature = "testing")),
        ("fuzzing", cfg!(feature = "fuzzing")),
        ("auth", cfg!(feature = "auth")),
        ("tracing", cfg!(feature = "tracing")),
    ];
    let off: Vec<&str> = gates
        .iter()
        .filter(|(_, on)| !on)
        .map(|(name, _)| *name)
        .collect();
    assert!(
        off.is_empty(),
        "features {off:?} are off, so the test files gated on them ran no test; the \
         self dev-dependency in Cargo.toml must enable them"
    );
}
