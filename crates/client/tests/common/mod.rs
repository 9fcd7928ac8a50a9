//! What the database tests share.

use std::path::PathBuf;

/// A temporary home (a directory not yet made, inside a temporary one), removed when dropped
/// (the second field is held for its drop).
pub struct Home(pub PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl Home {
    /// A new home; `tag` names the test in the directory's name.
    pub fn new(tag: &str) -> Home {
        let dir = tempfile::Builder::new()
            .prefix(&format!("deaddrop-client-test-{tag}-"))
            .tempdir()
            .unwrap();
        Home(dir.path().join("home"), dir)
    }
}
