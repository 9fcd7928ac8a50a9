//! Holding a home's database key for a while, so that commands need no passphrase
//! (`deaddrop unlock`): the key goes to the Linux kernel keyring of the login session, with a
//! timeout after which the kernel destroys it. It is never written to disk, and only processes of
//! the same session (which possess the session keyring) can read it, as with ssh-agent's socket.
//! Its name is `deaddrop:home:<home id>` ([`crate::home::KeyFile::id_hex`]).

use std::time::Duration;

use crate::error::ClientError;
use crate::home::DbKey;

fn description(home_id: &str) -> String {
    format!("deaddrop:home:{home_id}")
}

#[cfg(target_os = "linux")]
mod imp {
    use linux_keyutils::{KeyRing, KeyRingIdentifier};

    use super::*;

    fn keyring() -> Result<KeyRing, ClientError> {
        KeyRing::from_special_id(KeyRingIdentifier::Session, false)
            .or_else(|_| KeyRing::from_special_id(KeyRingIdentifier::UserSession, false))
            .map_err(|e| ClientError::Keyring(format!("no session keyring: {e}")))
    }

    pub fn store(home_id: &str, key: &DbKey, timeout: Duration) -> Result<(), ClientError> {
        let ring = keyring()?;
        let k = ring
            .add_key(&description(home_id), key.as_bytes())
            .map_err(|e| ClientError::Keyring(format!("cannot add the key: {e}")))?;
        let secs = usize::try_from(timeout.as_secs().max(1)).unwrap_or(usize::MAX);
        if let Err(e) = k.set_timeout(secs) {
            let _ = k.invalidate();
            return Err(ClientError::Keyring(format!("cannot set its timeout: {e}")));
        }
        Ok(())
    }

    pub fn load(home_id: &str) -> Option<DbKey> {
        let ring = keyring().ok()?;
        let k = ring.search(&description(home_id)).ok()?;
        let mut buf = zeroize::Zeroizing::new([0u8; 64]);
        let n = k.read(&mut *buf).ok()?;
        DbKey::from_bytes(buf.get(..n)?)
    }

    pub fn forget(home_id: &str) -> Result<bool, ClientError> {
        let ring = keyring()?;
        match ring.search(&description(home_id)) {
            Ok(k) => {
                k.invalidate()
                    .map_err(|e| ClientError::Keyring(format!("cannot remove the key: {e}")))?;
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;

    pub fn store(_: &str, _: &DbKey, _: Duration) -> Result<(), ClientError> {
        Err(ClientError::Keyring(
            "unlocking needs the Linux kernel keyring".into(),
        ))
    }

    pub fn load(_: &str) -> Option<DbKey> {
        None
    }

    pub fn forget(_: &str) -> Result<bool, ClientError> {
        Ok(false)
    }
}

/// Keeps `key` for the home `home_id` in the session keyring for `timeout`, replacing an older
/// one.
pub fn store(home_id: &str, key: &DbKey, timeout: Duration) -> Result<(), ClientError> {
    imp::store(home_id, key, timeout)
}

/// The key kept for the home `home_id`, if one is kept and has not timed out.
pub fn load(home_id: &str) -> Option<DbKey> {
    imp::load(home_id)
}

/// Forgets the key kept for the home `home_id`; whether one was kept.
pub fn forget(home_id: &str) -> Result<bool, ClientError> {
    imp::forget(home_id)
}
