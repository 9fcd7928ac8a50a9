//! A home's settings: which ledger it uses, through which proxy, trusting which extra
//! certificate authorities. `deaddrop init --ledger URL` and `deaddrop config set KEY VALUE` store
//! them; every command uses them unless its command line (`--ledger`, `--proxy`, `--ca-file`) or
//! the environment (`DEADDROP_LEDGER`, `DEADDROP_PROXY`, `DEADDROP_CA_FILE`) says otherwise; the
//! built-in default ([`DEFAULT_LEDGER`], no proxy) applies only when none of them names one.
//!
//! They are kept in the home's encrypted database (table `settings`, [`crate::db`]), not in a
//! file beside it: which ledger someone uses and that they go through Tor is something a user
//! stores, and nothing a user stores is readable on disk without their passphrase. Every command
//! that talks to a ledger opens the database anyway, so keeping them there costs no prompt.
//!
//! Values are checked before they are stored, with the same parsers the commands use, so a
//! setting that is stored always works as far as can be told without the network.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::ClientError;

/// The ledger a home uses when nothing names one: a ledger on this machine.
pub const DEFAULT_LEDGER: &str = "http://127.0.0.1:8470";

/// One setting of a home.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Setting {
    /// The ledger's URL (`--ledger`).
    Ledger,
    /// A SOCKS5 proxy for every connection (`--proxy`).
    Proxy,
    /// A PEM file of certificate authorities to trust for an `https://` ledger (`--ca-file`).
    CaFile,
}

impl Setting {
    /// Every setting, in the order they are listed.
    pub const ALL: [Setting; 3] = [Setting::Ledger, Setting::Proxy, Setting::CaFile];

    /// Its name in `deaddrop config` and in `--json`.
    pub fn name(self) -> &'static str {
        match self {
            Setting::Ledger => "ledger",
            Setting::Proxy => "proxy",
            Setting::CaFile => "ca_file",
        }
    }

    /// The flag that overrides it for one command.
    pub fn flag(self) -> &'static str {
        match self {
            Setting::Ledger => "--ledger",
            Setting::Proxy => "--proxy",
            Setting::CaFile => "--ca-file",
        }
    }

    /// The environment variable that overrides it.
    pub fn env(self) -> &'static str {
        match self {
            Setting::Ledger => "DEADDROP_LEDGER",
            Setting::Proxy => "DEADDROP_PROXY",
            Setting::CaFile => "DEADDROP_CA_FILE",
        }
    }

    /// `value` as it is stored, or why it cannot work (with what to write instead). A ledger
    /// URL is written the way the client uses it; a CA file becomes an absolute path, so it
    /// still names the file from another working directory.
    pub fn check(self, value: &str) -> Result<String, ClientError> {
        let value = value.trim();
        match self {
            Setting::Ledger => Ok(deaddrop_api::client::ledger_url(value)?),
            Setting::Proxy => {
                deaddrop_api::client::check_proxy(value)?;
                Ok(value.to_string())
            }
            Setting::CaFile => {
                let path = absolute(Path::new(value))?;
                deaddrop_api::client::check_ca_file(&path)?;
                path.to_str().map(str::to_string).ok_or_else(|| {
                    ClientError::Input("the CA file's path must be valid UTF-8".into())
                })
            }
        }
    }
}

/// `path` made absolute against the working directory.
fn absolute(path: &Path) -> Result<PathBuf, ClientError> {
    if path.as_os_str().is_empty() {
        return Err(ClientError::Input("the CA file's path is empty".into()));
    }
    std::path::absolute(path).map_err(|e| {
        ClientError::io(
            format!("cannot make {} an absolute path", path.display()),
            e,
        )
    })
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no setting.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("there is no setting `{0}`: the settings are ledger, proxy and ca_file")]
pub struct UnknownSetting(pub String);

impl FromStr for Setting {
    type Err = UnknownSetting;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "ledger" => Ok(Setting::Ledger),
            "proxy" => Ok(Setting::Proxy),
            // As the flag spells it, too.
            "ca_file" | "ca-file" => Ok(Setting::CaFile),
            other => Err(UnknownSetting(other.chars().take(40).collect())),
        }
    }
}

/// The settings a home holds; `None` where it holds none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// The ledger's URL.
    pub ledger: Option<String>,
    /// The proxy.
    pub proxy: Option<String>,
    /// The CA file.
    pub ca_file: Option<String>,
}

impl Settings {
    /// The value of `key`.
    pub fn get(&self, key: Setting) -> Option<&str> {
        match key {
            Setting::Ledger => self.ledger.as_deref(),
            Setting::Proxy => self.proxy.as_deref(),
            Setting::CaFile => self.ca_file.as_deref(),
        }
    }

    /// Sets `key` (to nothing with `None`).
    pub fn put(&mut self, key: Setting, value: Option<String>) {
        match key {
            Setting::Ledger => self.ledger = value,
            Setting::Proxy => self.proxy = value,
            Setting::CaFile => self.ca_file = value,
        }
    }
}

/// Where the value a command uses came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Its command line.
    Flag,
    /// The environment.
    Environment,
    /// The home's settings.
    Home,
    /// The built-in default.
    Default,
}

impl Source {
    /// As `--json` names it: `flag`, `environment`, `home`, `default`.
    pub fn name(self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::Environment => "environment",
            Source::Home => "home",
            Source::Default => "default",
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn settings_are_named_and_checked_before_they_are_stored() {
        for s in Setting::ALL {
            assert_eq!(s.name().parse::<Setting>().unwrap(), s);
        }
        assert_eq!("ca-file".parse::<Setting>().unwrap(), Setting::CaFile);
        let e = "ledgr".parse::<Setting>().unwrap_err().to_string();
        assert!(
            e.contains("ledgr") && e.contains("ledger, proxy and ca_file"),
            "{e}"
        );
        assert_eq!(
            Setting::Ledger.check("http://127.0.0.1:8470/").unwrap(),
            "http://127.0.0.1:8470"
        );
        for bad in ["127.0.0.1:8470", "http://h:1/v1", "ftp://h"] {
            assert!(Setting::Ledger.check(bad).is_err(), "{bad}");
        }
        assert!(Setting::Proxy.check("socks5h://127.0.0.1:9050").is_ok());
        assert!(Setting::Proxy.check("http://127.0.0.1:9050").is_err());
        let e = Setting::CaFile.check("/nonexistent/ca.pem").unwrap_err();
        assert!(e.to_string().contains("ca.pem"), "{e}");
    }
}
