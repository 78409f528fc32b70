//! Replays every committed fuzz input on stable: each file under `fuzz/corpus/<target>/`
//! and `fuzz/artifacts/<target>/` runs through the same target body the fuzzer runs
//! (`relay_machine::fuzzing`), so a crash once found stays a regression test.
//!
//! `fuzz/artifacts` need not exist. A directory whose name is not a target fails the test,
//! so a typo cannot silently skip inputs.
// The fuzz-target bodies need the `fuzzing` feature (on in the repository through the self
// dev-dependency; tests/features.rs checks it). The corpus lives in fuzz/, which the
// published package leaves out, so this test is not packaged.
#![cfg(feature = "fuzzing")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use relay_machine::fuzzing;

/// Every input file under `root/<target>/`, by target.
fn inputs(root: &Path) -> Vec<(String, PathBuf)> {
    let Ok(dirs) = fs::read_dir(root) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for dir in dirs {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let target = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            fuzzing::TARGETS.contains(&target.as_str()),
            "{} is not a fuzz target (targets: {:?})",
            dir.display(),
            fuzzing::TARGETS
        );
        for file in fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if path.is_file() && !hidden {
                found.push((target.clone(), path));
            }
        }
    }
    found.sort();
    found
}

fn replay(root: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(root);
    let inputs = inputs(&root);
    let mut failures = Vec::new();
    for (target, path) in &inputs {
        // A running fuzzer may delete a corpus entry it has just reduced.
        let Ok(data) = fs::read(path) else { continue };
        let outcome = catch_unwind(AssertUnwindSafe(|| fuzzing::run(target, &data)));
        match outcome {
            Ok(true) => {}
            Ok(false) => failures.push(format!("{}: unknown target", path.display())),
            Err(_) => failures.push(format!("{target}: {}", path.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} inputs failed (panic messages above):\n{}",
        failures.len(),
        inputs.len(),
        failures.join("\n")
    );
    inputs.len()
}

#[test]
fn corpus_replays_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for target in fuzzing::TARGETS {
        let seeded = inputs(&root).iter().any(|(t, _)| t == target);
        assert!(seeded, "no committed corpus for fuzz target {target}");
    }
    assert!(replay("fuzz/corpus") > 0);
}

#[test]
fn artifacts_replay_cleanly() {
    // Passes, replaying nothing, when fuzz/artifacts does not exist.
    replay("fuzz/artifacts");
}
