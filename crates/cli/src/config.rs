//! `deaddrop config`: the home's settings ([`deaddrop_client::settings`]), and how a command
//! picks the ledger, proxy and CA file it uses: its command line, then the environment, then the
//! home, then the built-in default.

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;
use deaddrop_client::db::Db;
use deaddrop_client::display;
use deaddrop_client::ops::{QUICK_CONNECT, QUICK_CONNECT_PROXY};
use deaddrop_client::output::{ConfigJson, SettingJson};
use deaddrop_client::settings::{Setting, Settings, Source, DEFAULT_LEDGER};
use deaddrop_client::{ClientError, ClientOptions, LedgerClient};

use crate::user::{print_json, ClientOpts};

/// `deaddrop config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Store a setting in this home (checked first): `ledger URL`, `proxy socks5h://HOST:PORT`,
    /// `ca_file PATH`. Every command uses it unless its --ledger, --proxy, --ca-file (or
    /// DEADDROP_LEDGER, DEADDROP_PROXY, DEADDROP_CA_FILE) say otherwise.
    Set {
        /// `ledger`, `proxy` or `ca_file`.
        #[arg(value_parser = parse_setting)]
        key: Setting,
        /// Its value.
        value: String,
    },
    /// Print a setting's value (nothing when it is not set), or every setting without KEY.
    Get {
        /// `ledger`, `proxy` or `ca_file`.
        #[arg(value_parser = parse_setting)]
        key: Option<Setting>,
    },
    /// Remove a setting: the built-in default applies again (for the ledger,
    /// http://127.0.0.1:8470).
    Unset {
        /// `ledger`, `proxy` or `ca_file`.
        #[arg(value_parser = parse_setting)]
        key: Setting,
    },
    /// Every setting of this home.
    List,
}

fn parse_setting(s: &str) -> Result<Setting, String> {
    s.parse()
        .map_err(|e: deaddrop_client::settings::UnknownSetting| e.to_string())
}

/// The settings the command line (or the environment) gives, checked, for `init` to store.
pub fn given_settings(opts: &ClientOpts) -> Result<Vec<(Setting, String)>, ClientError> {
    let mut out = Vec::new();
    if let Some(l) = &opts.ledger {
        out.push((Setting::Ledger, Setting::Ledger.check(l)?));
    }
    if let Some(p) = opts.proxy.as_deref().filter(|p| !p.trim().is_empty()) {
        out.push((Setting::Proxy, Setting::Proxy.check(p)?));
    }
    if let Some(f) = &opts.ca_file {
        let text = f
            .to_str()
            .ok_or_else(|| ClientError::Input("the CA file's path must be valid UTF-8".into()))?;
        out.push((Setting::CaFile, Setting::CaFile.check(text)?));
    }
    Ok(out)
}

/// What one command uses: its ledger, where that came from, its proxy and CA file.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The ledger's URL.
    pub ledger: String,
    /// Where it came from.
    pub source: Source,
    /// The proxy, if any.
    pub proxy: Option<String>,
    /// The CA file, if any.
    pub ca_file: Option<PathBuf>,
}

impl ClientOpts {
    /// The ledger, proxy and CA file this command uses: from its command line or environment,
    /// else the home's settings, else the defaults.
    pub fn resolve(&self, db: &Db) -> Result<Resolved, ClientError> {
        let home = db.settings()?;
        Ok(self.resolve_with(&home))
    }

    fn resolve_with(&self, home: &Settings) -> Resolved {
        let (ledger, source) = match (&self.ledger, &home.ledger) {
            (Some(l), _) => (l.clone(), self.ledger_source.unwrap_or(Source::Flag)),
            (None, Some(l)) => (l.clone(), Source::Home),
            (None, None) => (DEFAULT_LEDGER.to_string(), Source::Default),
        };
        Resolved {
            ledger,
            source,
            // `--proxy ''` is given, and means none.
            proxy: self.proxy.clone().or_else(|| home.proxy.clone()),
            ca_file: self
                .ca_file
                .clone()
                .or_else(|| home.ca_file.as_ref().map(PathBuf::from)),
        }
    }
}

impl Resolved {
    fn options(&self) -> ClientOptions {
        ClientOptions {
            proxy: self.proxy.clone(),
            ca_file: self.ca_file.clone(),
            ..Default::default()
        }
    }

    /// The command's client of the ledger: its SOCKS credentials and TLS settings.
    pub fn client(&self) -> Result<LedgerClient, ClientError> {
        deaddrop_client::connect_with(&self.ledger, &self.options())
    }

    /// A client that notices at once a ledger that is down: a short connect timeout
    /// ([`QUICK_CONNECT`], longer through a proxy), requests as long as usual.
    pub fn quick_client(&self) -> Result<LedgerClient, ClientError> {
        deaddrop_client::connect_with(
            &self.ledger,
            &ClientOptions {
                connect_timeout: self.quick_timeout(),
                ..self.options()
            },
        )
    }

    /// A client for one quick question (`status`): the whole request within the quick timeout.
    pub fn glance_client(&self) -> Result<LedgerClient, ClientError> {
        deaddrop_client::connect_with(
            &self.ledger,
            &ClientOptions {
                connect_timeout: self.quick_timeout(),
                timeout: self.quick_timeout(),
                ..self.options()
            },
        )
    }

    fn quick_timeout(&self) -> Duration {
        if self.proxy.as_deref().is_some_and(|p| !p.trim().is_empty()) {
            QUICK_CONNECT_PROXY
        } else {
            QUICK_CONNECT
        }
    }
}

/// What `source` is called in human-readable output.
pub fn source_text(source: Source) -> &'static str {
    match source {
        Source::Flag => "from --ledger",
        Source::Environment => "from DEADDROP_LEDGER",
        Source::Home => "this home's setting",
        Source::Default => "the built-in default; `deaddrop config set ledger URL` sets another",
    }
}

/// Runs `deaddrop config ...`.
pub fn run(db: &mut Db, json: bool, cmd: ConfigCmd) -> anyhow::Result<()> {
    match cmd {
        ConfigCmd::Set { key, value } => {
            let value = key.check(&value)?;
            db.set_setting(key, &value)?;
            if json {
                print_json(&SettingJson {
                    key: key.name().into(),
                    value: Some(value),
                })?;
            } else {
                println!("{key} = {}", shown(key, &value));
            }
        }
        ConfigCmd::Unset { key } => {
            let was = db.unset_setting(key)?;
            if json {
                print_json(&SettingJson {
                    key: key.name().into(),
                    value: None,
                })?;
            } else if was.is_some() {
                println!("{key} is no longer set{}", default_note(key));
            } else {
                println!("{key} was not set{}", default_note(key));
            }
        }
        ConfigCmd::Get { key: Some(key) } => {
            let settings = db.settings()?;
            let value = settings.get(key).map(str::to_string);
            if json {
                print_json(&SettingJson {
                    key: key.name().into(),
                    value,
                })?;
            } else if let Some(v) = value {
                // The bare value, for `$(deaddrop config get ledger)`.
                println!("{v}");
            } else {
                eprintln!("{key} is not set{}", default_note(key));
            }
        }
        ConfigCmd::Get { key: None } | ConfigCmd::List => {
            let settings = db.settings()?;
            if json {
                print_json(&ConfigJson {
                    ca_file: settings.ca_file,
                    ledger: settings.ledger,
                    proxy: settings.proxy,
                })?;
            } else {
                for key in Setting::ALL {
                    match settings.get(key) {
                        Some(v) => println!("{:<8} {}", key.name(), shown(key, v)),
                        None => println!("{:<8} (not set{})", key.name(), default_note(key)),
                    }
                }
            }
        }
    }
    Ok(())
}

/// A value as shown to people: a proxy's password is not.
fn shown(key: Setting, value: &str) -> String {
    match key {
        Setting::Proxy => display::line(&without_password(value)),
        _ => display::line(value),
    }
}

/// `socks5h://USER:PASS@HOST` as `socks5h://USER:…@HOST`.
fn without_password(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    let authority = &url[start..end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => {
            format!(
                "{}{}:…{}",
                &url[..start],
                &authority[..colon],
                &url[start + at..]
            )
        }
        _ => url.to_string(),
    }
}

fn default_note(key: Setting) -> String {
    match key {
        Setting::Ledger => format!("; commands use {DEFAULT_LEDGER}"),
        Setting::Proxy => "; commands connect directly".into(),
        Setting::CaFile => "; only the built-in web roots are trusted".into(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_password_is_not_shown() {
        assert_eq!(
            without_password("socks5h://me:s3cret@127.0.0.1:9050"),
            "socks5h://me:…@127.0.0.1:9050"
        );
        assert_eq!(
            without_password("socks5h://127.0.0.1:9050"),
            "socks5h://127.0.0.1:9050"
        );
    }

    #[test]
    fn the_command_line_wins_over_the_home_and_the_home_over_the_default() {
        let opts = |ledger: Option<&str>| ClientOpts {
            home: None,
            ledger: ledger.map(str::to_string),
            proxy: None,
            passphrase_file: None,
            passphrase_fd: None,
            ca_file: None,
            ledger_source: ledger.map(|_| Source::Environment),
        };
        let home = Settings {
            ledger: Some("http://home:1".into()),
            proxy: Some("socks5h://p:2".into()),
            ca_file: None,
        };
        let r = opts(Some("http://flag:1")).resolve_with(&home);
        assert_eq!(
            (r.ledger.as_str(), r.source),
            ("http://flag:1", Source::Environment)
        );
        assert_eq!(r.proxy.as_deref(), Some("socks5h://p:2"));
        let r = opts(None).resolve_with(&home);
        assert_eq!(
            (r.ledger.as_str(), r.source),
            ("http://home:1", Source::Home)
        );
        let r = opts(None).resolve_with(&Settings::default());
        assert_eq!(
            (r.ledger.as_str(), r.source),
            (DEFAULT_LEDGER, Source::Default)
        );
        assert_eq!(r.proxy, None);
    }
}
