//! A home directory at rest: the database is encrypted whole (SQLCipher: every page, the
//! write-ahead log included) under a random 256-bit database key, and that key is kept in the
//! key file `deaddrop.key`, sealed under the passphrase (Argon2id, then AES-256-GCM) or, when the
//! user chose `--no-passphrase`, stored plain. Copying a home gives nothing away without the
//! passphrase; `passphrase change` re-keys the database and re-seals the key file.
//!
//! Key file format (all integers big-endian):
//!
//! ```text
//! "ddhome" || version 0x01 || id (16) || protection (1) || count (1)
//!   protection 0: count × database key (32)
//!   protection 1: m_kib (u32) || t (u32) || p (u32) || salt (16) || nonce (12)
//!                 || AES-256-GCM(k, count × database key) with everything before it as
//!                 associated data, k = Argon2id(passphrase, salt, m, t, p)
//! || SHA-256(everything before) (32)
//! ```
//!
//! The checksum tells a damaged file ([`ClientError::Damaged`]) from a wrong passphrase
//! ([`ClientError::WrongPassphrase`]); it protects nothing against a forger (the AEAD does).
//! A file holds two keys only while `passphrase change` re-keys: the database opens under one of
//! them, whichever step a crash interrupted. `id` names the home in the kernel keyring
//! ([`crate::keyring`]).
//!
//! Every process using a home holds a shared `flock` on `<home>/lock`; re-keying and the
//! one-time encryption of an older, unencrypted home hold it exclusively ([`HomeLock`]).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::digest::{digest, SHA256};
use deaddrop_proto::codec::{Reader, Writer};
use deaddrop_proto::rng::SystemRng;
use rand_core::RngCore;
use zeroize::Zeroizing;

use crate::error::ClientError;
use crate::keystore::{self, Passphrase};

/// The key file inside a home.
pub const KEY_FILE: &str = "deaddrop.key";
/// The lock file inside a home.
pub const LOCK_FILE: &str = "lock";

const MAGIC: &[u8; 6] = b"ddhome";
const VERSION: u8 = 1;
const MAX_KEYS: usize = 2;

/// A database key: 32 random bytes; zeroized on drop, never printed.
pub struct DbKey(Zeroizing<[u8; 32]>);

impl DbKey {
    /// A new random key.
    pub fn generate() -> DbKey {
        let mut k = Zeroizing::new([0u8; 32]);
        SystemRng.fill_bytes(k.as_mut());
        DbKey(k)
    }

    /// A key from its 32 bytes, or `None` for another length.
    pub fn from_bytes(b: &[u8]) -> Option<DbKey> {
        let arr: [u8; 32] = b.try_into().ok()?;
        Some(DbKey(Zeroizing::new(arr)))
    }

    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key as SQLCipher's raw-key literal `x'…'` (64 hex digits: no key derivation).
    pub(crate) fn sql_literal(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::with_capacity(67));
        s.push_str("x'");
        for b in self.0.iter() {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 15)]));
        }
        s.push('\'');
        s
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

impl std::fmt::Debug for DbKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbKey(..)")
    }
}

/// How the database keys are kept in the key file.
enum Keys {
    /// Stored plain (`--no-passphrase`).
    Plain(Vec<DbKey>),
    /// Sealed under a passphrase.
    Sealed {
        params: [u32; 3],
        salt: [u8; 16],
        nonce: [u8; 12],
        aad: Vec<u8>,
        body: Vec<u8>,
    },
}

/// A home's key file, read and checked but not yet opened.
pub struct KeyFile {
    id: [u8; 16],
    keys: Keys,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile")
            .field("id", &self.id_hex())
            .field("needs_passphrase", &self.needs_passphrase())
            .finish()
    }
}

fn damaged(detail: &str) -> ClientError {
    ClientError::damaged("key file", detail)
}

impl KeyFile {
    /// Reads the key file of `home`; `Ok(None)` when there is none.
    pub fn read(home: &Path) -> Result<Option<KeyFile>, ClientError> {
        let path = home.join(KEY_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => Zeroizing::new(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(ClientError::io(
                    format!("cannot read {}", path.display()),
                    e,
                ))
            }
        };
        Self::parse(&bytes).map(Some)
    }

    fn parse(bytes: &[u8]) -> Result<KeyFile, ClientError> {
        let Some(split) = bytes.len().checked_sub(32) else {
            return Err(damaged("it is too short"));
        };
        let (content, sum) = bytes.split_at(split);
        if digest(&SHA256, content).as_ref() != sum {
            return Err(damaged(
                "its checksum does not match (the file was cut or changed)",
            ));
        }
        let bad = |_| damaged("its layout is not one this version reads");
        let mut r = Reader::new(content);
        if r.take(MAGIC.len()).map_err(bad)? != &MAGIC[..] {
            return Err(damaged("it is not a deaddrop key file"));
        }
        if r.u8().map_err(bad)? != VERSION {
            return Err(damaged(
                "it was written by another version of deaddrop; use that version",
            ));
        }
        let id: [u8; 16] = r.take_array().map_err(bad)?;
        let protection = r.u8().map_err(bad)?;
        let count = usize::from(r.u8().map_err(bad)?);
        if count == 0 || count > MAX_KEYS {
            return Err(damaged("it holds no key or too many"));
        }
        let keys = match protection {
            0 => {
                let mut keys = Vec::with_capacity(count);
                for _ in 0..count {
                    let k: [u8; 32] = r.take_array().map_err(bad)?;
                    keys.push(DbKey(Zeroizing::new(k)));
                }
                Keys::Plain(keys)
            }
            1 => {
                let params = [
                    r.u32().map_err(bad)?,
                    r.u32().map_err(bad)?,
                    r.u32().map_err(bad)?,
                ];
                let salt = r.take_array().map_err(bad)?;
                let nonce = r.take_array().map_err(bad)?;
                let aad = r.consumed().to_vec();
                let body = r.take(count * 32 + 16).map_err(bad)?.to_vec();
                keystore::check_params(params)
                    .map_err(|_| damaged("its key-derivation cost is out of range"))?;
                Keys::Sealed {
                    params,
                    salt,
                    nonce,
                    aad,
                    body,
                }
            }
            _ => return Err(damaged("its protection kind is unknown")),
        };
        if r.remaining() != 0 {
            return Err(damaged("it has bytes past its end"));
        }
        Ok(KeyFile { id, keys })
    }

    /// Whether opening it needs the passphrase.
    pub fn needs_passphrase(&self) -> bool {
        matches!(self.keys, Keys::Sealed { .. })
    }

    /// The home's id in hex (names it in the kernel keyring; not secret).
    pub fn id_hex(&self) -> String {
        self.id.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The database keys, opened with `pass` when sealed: [`ClientError::NoPassphrase`] without
    /// one, [`ClientError::WrongPassphrase`] when it does not open them.
    pub fn keys(&self, pass: Option<&Passphrase>) -> Result<Vec<DbKey>, ClientError> {
        match &self.keys {
            Keys::Plain(keys) => Ok(keys.iter().map(|k| DbKey(k.0.clone())).collect()),
            Keys::Sealed {
                params,
                salt,
                nonce,
                aad,
                body,
            } => {
                let pass = pass.ok_or(ClientError::NoPassphrase)?;
                let key = aead_key(pass, salt, *params)?;
                let mut plain = Zeroizing::new(body.clone());
                let opened = key
                    .open_in_place(
                        Nonce::assume_unique_for_key(*nonce),
                        Aad::from(&aad[..]),
                        plain.as_mut_slice(),
                    )
                    .map_err(|_| ClientError::WrongPassphrase)?;
                Ok(opened
                    .chunks_exact(32)
                    .filter_map(DbKey::from_bytes)
                    .collect())
            }
        }
    }

    /// Writes a key file for `home` holding `keys` (the one the database is under first),
    /// sealed under `pass` or plain, atomically (a new file renamed over the old, both synced).
    pub fn write(
        home: &Path,
        id: [u8; 16],
        keys: &[&DbKey],
        pass: Option<&Passphrase>,
    ) -> Result<(), ClientError> {
        let bytes = Self::encode(
            id,
            keys,
            pass,
            [
                keystore::ARGON2_M_KIB,
                keystore::ARGON2_T,
                keystore::ARGON2_P,
            ],
        )?;
        let path = home.join(KEY_FILE);
        let tmp = home.join(format!("{KEY_FILE}.new"));
        let io = |what: &str, e| ClientError::io(format!("{what} {}", tmp.display()), e);
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io("cannot create", e))?;
        f.write_all(&bytes).map_err(|e| io("cannot write", e))?;
        f.sync_all().map_err(|e| io("cannot sync", e))?;
        drop(f);
        fs::rename(&tmp, &path).map_err(|e| io("cannot rename", e))?;
        sync_dir(home)
    }

    fn encode(
        id: [u8; 16],
        keys: &[&DbKey],
        pass: Option<&Passphrase>,
        params: [u32; 3],
    ) -> Result<Zeroizing<Vec<u8>>, ClientError> {
        if keys.is_empty() || keys.len() > MAX_KEYS {
            return Err(ClientError::KeyProtection(
                "a key file holds one or two keys",
            ));
        }
        let mut out = Zeroizing::new(Vec::with_capacity(200));
        out.put_slice(MAGIC);
        out.put_u8(VERSION);
        out.put_slice(&id);
        out.put_u8(u8::from(pass.is_some()));
        out.put_u8(keys.len() as u8);
        match pass {
            None => {
                for k in keys {
                    out.put_slice(k.as_bytes());
                }
            }
            Some(pass) => {
                let mut salt = [0u8; 16];
                let mut nonce = [0u8; 12];
                SystemRng.fill_bytes(&mut salt);
                SystemRng.fill_bytes(&mut nonce);
                for v in params {
                    out.put_u32(v);
                }
                out.put_slice(&salt);
                out.put_slice(&nonce);
                let key = aead_key(pass, &salt, params)?;
                let mut body = Zeroizing::new(Vec::with_capacity(keys.len() * 32));
                for k in keys {
                    body.extend_from_slice(k.as_bytes());
                }
                let tag = key
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(&out[..]),
                        body.as_mut_slice(),
                    )
                    .map_err(|_| ClientError::KeyProtection("sealing the database key failed"))?;
                out.put_slice(&body);
                out.put_slice(tag.as_ref());
            }
        }
        let sum = digest(&SHA256, &out);
        out.put_slice(sum.as_ref());
        Ok(out)
    }

    /// A new random home id.
    pub fn new_id() -> [u8; 16] {
        let mut id = [0u8; 16];
        SystemRng.fill_bytes(&mut id);
        id
    }

    /// This file's id.
    pub fn id(&self) -> [u8; 16] {
        self.id
    }
}

fn aead_key(pass: &Passphrase, salt: &[u8], params: [u32; 3]) -> Result<LessSafeKey, ClientError> {
    let [m, t, p] = params;
    let k = keystore::derive(pass, salt, m, t, p)?;
    Ok(LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, k.as_ref())
            .map_err(|_| ClientError::KeyProtection("the AES key setup failed"))?,
    ))
}

/// Syncs a directory, so a rename in it survives a power cut.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), ClientError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ClientError::io(format!("cannot sync {}", dir.display()), e))
}

/// A lock on a home: shared by every command, exclusive while the database is re-keyed or
/// encrypted for the first time. Released on drop (and by the kernel when the process dies).
#[derive(Debug)]
pub struct HomeLock {
    _file: File,
}

/// How long a command waits for an exclusive holder (a re-key takes well under a second).
const SHARED_WAIT: Duration = Duration::from_secs(10);

impl HomeLock {
    fn file(home: &Path) -> Result<(File, PathBuf), ClientError> {
        let path = home.join(LOCK_FILE);
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| ClientError::io(format!("cannot open {}", path.display()), e))?;
        Ok((f, path))
    }

    /// Takes the shared lock, waiting up to 10 s for a process that holds it exclusively, then
    /// failing with [`ClientError::HomeBusy`] naming it.
    pub fn shared(home: &Path) -> Result<HomeLock, ClientError> {
        Self::shared_within(home, SHARED_WAIT)
    }

    /// [`HomeLock::shared`] with another wait.
    pub fn shared_within(home: &Path, wait: Duration) -> Result<HomeLock, ClientError> {
        let (file, path) = Self::file(home)?;
        let start = Instant::now();
        loop {
            match file.try_lock_shared() {
                Ok(()) => return Ok(HomeLock { _file: file }),
                Err(fs::TryLockError::WouldBlock) if start.elapsed() < wait => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(ClientError::HomeBusy {
                        home: home.display().to_string(),
                        holders: holders(&path, &file),
                    })
                }
                Err(fs::TryLockError::Error(e)) => {
                    return Err(ClientError::io(
                        format!("cannot lock {}", path.display()),
                        e,
                    ))
                }
            }
        }
    }

    /// Takes the lock exclusively, at once or [`ClientError::HomeBusy`] naming the processes
    /// using the home.
    pub fn exclusive(home: &Path) -> Result<HomeLock, ClientError> {
        let (file, path) = Self::file(home)?;
        match file.try_lock() {
            Ok(()) => Ok(HomeLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) => Err(ClientError::HomeBusy {
                home: home.display().to_string(),
                holders: holders(&path, &file),
            }),
            Err(fs::TryLockError::Error(e)) => Err(ClientError::io(
                format!("cannot lock {}", path.display()),
                e,
            )),
        }
    }
}

/// The other processes holding a lock on `file`, as `pid N (command line)`, from `/proc/locks`
/// (empty where that cannot be read).
fn holders(_path: &Path, file: &File) -> Vec<String> {
    let Ok(meta) = file.metadata() else {
        return Vec::new();
    };
    let inode = meta.ino().to_string();
    let Ok(locks) = fs::read_to_string("/proc/locks") else {
        return Vec::new();
    };
    let me = std::process::id().to_string();
    let mut out: Vec<String> = Vec::new();
    for line in locks.lines() {
        // `1: FLOCK  ADVISORY  WRITE 1234 00:2a:5678 0 EOF`; blocked waiters have `->`.
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 || f.get(1) == Some(&"->") || f[1] != "FLOCK" {
            continue;
        }
        let (pid, dev_ino) = (f[4], f[5]);
        if dev_ino.rsplit(':').next() != Some(inode.as_str()) || pid == me {
            continue;
        }
        let cmd = fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                let s: Vec<String> = b
                    .split(|&c| c == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect();
                crate::display::line(&s.join(" "))
            })
            .unwrap_or_default();
        let who = format!("pid {pid} ({})", if cmd.is_empty() { "?" } else { &cmd });
        if !out.contains(&who) {
            out.push(who);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast(pass: Option<&Passphrase>, keys: &[&DbKey]) -> Vec<u8> {
        KeyFile::encode([7; 16], keys, pass, [256, 1, 1])
            .unwrap()
            .to_vec()
    }

    #[test]
    fn keys_open_only_with_the_passphrase_and_damage_is_told_apart() {
        let (a, b) = (DbKey::generate(), DbKey::generate());
        let pass = Passphrase::new("correct horse".into());
        let bytes = fast(Some(&pass), &[&a, &b]);
        let kf = KeyFile::parse(&bytes).unwrap();
        assert!(kf.needs_passphrase());
        assert_eq!(kf.id_hex(), "07".repeat(16));
        let keys = kf.keys(Some(&pass)).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].as_bytes(), a.as_bytes());
        assert_eq!(keys[1].as_bytes(), b.as_bytes());
        assert!(matches!(
            kf.keys(Some(&Passphrase::new("wrong horse".into()))),
            Err(ClientError::WrongPassphrase)
        ));
        assert!(matches!(kf.keys(None), Err(ClientError::NoPassphrase)));
        // Every flipped byte and every cut is damage, never a wrong passphrase.
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            assert!(
                matches!(KeyFile::parse(&bad), Err(ClientError::Damaged { .. })),
                "byte {i}"
            );
        }
        for n in 0..bytes.len() {
            assert!(matches!(
                KeyFile::parse(&bytes[..n]),
                Err(ClientError::Damaged { .. })
            ));
        }
    }

    #[test]
    fn a_plain_key_file_needs_no_passphrase() {
        let a = DbKey::generate();
        let kf = KeyFile::parse(&fast(None, &[&a])).unwrap();
        assert!(!kf.needs_passphrase());
        assert_eq!(kf.keys(None).unwrap()[0].as_bytes(), a.as_bytes());
        assert_eq!(format!("{a:?}"), "DbKey(..)");
        let lit = a.sql_literal();
        assert!(lit.starts_with("x'") && lit.ends_with('\'') && lit.len() == 67);
    }

    #[test]
    fn an_exclusive_lock_names_the_process_holding_the_home() {
        let dir = std::env::temp_dir().join(format!("dd-lock-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let shared = HomeLock::shared(&dir).unwrap();
        // Our own process is left out of the names; the lock is still refused.
        assert!(matches!(
            HomeLock::exclusive(&dir),
            Err(ClientError::HomeBusy { .. })
        ));
        drop(shared);
        let ex = HomeLock::exclusive(&dir).unwrap();
        assert!(matches!(
            HomeLock::shared_within(&dir, Duration::from_millis(100)),
            Err(ClientError::HomeBusy { .. })
        ));
        drop(ex);
        HomeLock::shared(&dir).unwrap();
        let _ = fs::remove_dir_all(&dir);
    }
}
