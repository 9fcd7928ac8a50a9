//! One process per data directory. Two servers on one `--data` would each hand out the same ids
//! for different entries and overwrite each other's files; the second must refuse to start.
//!
//! The lock is an exclusive `flock` on `<data>/lock`, held for as long as the store is open and
//! released by the kernel when the process ends, however it ends (no stale lock after
//! `kill -9`). The holder writes its process id into the file so that the refusal can name it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::StoreError;

/// The name of the lock file inside the data directory.
pub const LOCK_FILE: &str = "lock";

/// How long a lock held in this process's name is waited for (see [`DirLock::acquire`]).
const SELF_RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
const SELF_RELEASE_POLL: std::time::Duration = std::time::Duration::from_millis(10);

/// An exclusive lock on a data directory, released on drop.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Locks `dir`, or fails with [`StoreError::Locked`] naming the process that holds it.
    pub fn acquire(dir: &Path) -> Result<DirLock, StoreError> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| StoreError::io(format!("opening the lock file {}", path.display()), e))?;
        let mut waited = std::time::Duration::ZERO;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    let mut text = String::new();
                    let _ = file.seek(SeekFrom::Start(0));
                    let _ = file.read_to_string(&mut text);
                    let holder: Option<u32> = text.trim().parse().ok();
                    // A lock this process released may outlive it for a moment: a child being
                    // spawned by another thread holds a copy of every descriptor until it
                    // executes its program. Another process holding it is refused at once.
                    if holder == Some(std::process::id()) && waited < SELF_RELEASE_WAIT {
                        std::thread::sleep(SELF_RELEASE_POLL);
                        waited += SELF_RELEASE_POLL;
                        continue;
                    }
                    return Err(StoreError::Locked {
                        path: dir.display().to_string(),
                        holder,
                    });
                }
                Err(TryLockError::Error(e)) => {
                    return Err(StoreError::io(format!("locking {}", path.display()), e))
                }
            }
        }
        // Only the holder writes; a failure here leaves a lock without a name, nothing worse.
        let _ = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .and_then(|()| file.sync_data());
        Ok(DirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let first = DirLock::acquire(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        match DirLock::acquire(dir.path()) {
            Err(StoreError::Locked { holder, .. }) => {
                assert_eq!(holder, Some(std::process::id()))
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(first);
        assert!(DirLock::acquire(dir.path()).is_ok(), "released on drop");
    }
}
