//! Runs the `frames` fuzz target's seed corpus (`fuzz/corpus/frames/`) through the function the
//! target calls (`fuzz/frames_common.rs`), so CI exercises it without cargo-fuzz. The seeds are
//! written here and checked byte for byte (`DEADDROP_REGENERATE_VECTORS=1` rewrites them);
//! files a fuzzing run adds to the directory are run too.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

include!("../../../fuzz/frames_common.rs");

use std::path::PathBuf;

use deaddrop_api::{EntryId, Frame};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/frames")
}

fn frame(id: u64, time_ms: u64, entry: &[u8]) -> Vec<u8> {
    Frame {
        id: EntryId(id),
        time_ms,
        entry,
    }
    .to_vec()
}

/// The seeds: name, bytes, the label the target must return.
fn seeds() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let two = [
        frame(1, 1_700_000_000_000, &[7; 4096]),
        frame(2, 1_700_000_000_001, &[9; 16]),
    ]
    .concat();
    let mut too_long = frame(3, 0, &[1; 8]);
    too_long[16..20].copy_from_slice(&4097u32.to_be_bytes());
    vec![
        ("empty", Vec::new(), "ok:0"),
        ("two-frames", two.clone(), "ok:2"),
        ("empty-entry", frame(u64::MAX, u64::MAX, &[]), "ok:1"),
        ("cut-in-header", two[..10].to_vec(), "truncated"),
        ("cut-in-entry", two[..4000].to_vec(), "truncated"),
        ("too-long", too_long, "too-long"),
    ]
}

#[test]
fn frames_corpus_seeds_give_their_expected_outcome() {
    let dir = corpus_dir();
    let regenerate = std::env::var_os("DEADDROP_REGENERATE_VECTORS").is_some();
    if regenerate {
        std::fs::create_dir_all(&dir).unwrap();
    }
    for (name, bytes, expect) in seeds() {
        let path = dir.join(name);
        if regenerate {
            std::fs::write(&path, &bytes).unwrap();
        }
        let on_disk = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (DEADDROP_REGENERATE_VECTORS=1 writes it)",
                path.display()
            )
        });
        assert_eq!(on_disk, bytes, "{name} differs from its generator");
        assert_eq!(frames_target::run(&bytes), expect, "{name}");
    }
}

#[test]
fn every_file_in_the_frames_corpus_runs_without_panic() {
    let mut n = 0;
    for entry in std::fs::read_dir(corpus_dir()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let _ = frames_target::run(&bytes);
        n += 1;
    }
    assert!(n >= seeds().len());
}
