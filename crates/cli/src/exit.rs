//! Exit codes that tell failures apart, so a script can react to each kind without reading the
//! message: the ledger was unreachable (try later), the passphrase was wrong (ask again), the
//! home is damaged or in use (look at the disk), the command line was wrong (fix the script).
//! Listed in `deaddrop --help` ([`HELP`]) and the README; the error's hint says what to do.

use deaddrop_client::api::LedgerError;
use deaddrop_client::ClientError;
use deaddrop_ledger::store::StoreError;

/// The exit codes of `deaddrop`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Done.
    Ok,
    /// Any failure not told apart below (an unknown contact, a bug, ...).
    Other,
    /// The command line or what it gave cannot be used: an unknown flag, a bad value, a card
    /// that cannot be read, a bad `--ledger` URL or `--proxy`.
    Usage,
    /// The ledger cannot be reached, refused, or is not one this client can use.
    Network,
    /// No passphrase was available, or it is wrong.
    Passphrase,
    /// Local data: no identity in the home, the home is damaged or in use by another command,
    /// a file or the disk failed.
    LocalData,
    /// Stopped by Ctrl-C (SIGINT); what was done so far is kept.
    Interrupted,
}

impl Exit {
    /// The process exit status.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Other => 1,
            Exit::Usage => 2,
            Exit::Network => 3,
            Exit::Passphrase => 4,
            Exit::LocalData => 5,
            Exit::Interrupted => 130,
        }
    }
}

/// What `deaddrop --help` says after the commands.
pub const HELP: &str = "\
Exit status:
  0    done
  1    any other failure (an unknown contact, a bug, ...)
  2    usage: a bad flag or value, a card that cannot be read, a bad --ledger URL or --proxy
  3    network: the ledger is unreachable, refused, or is not one this client can use
  4    passphrase: none available (no terminal to ask on) or wrong
  5    local data: no identity in the home, the home damaged or in use, a file or disk failed
  130  interrupted by Ctrl-C (what was done so far is kept)
A reader that stops reading (`deaddrop card | head -c 10`) ends the command quietly, with 0.";

/// A command stopped by Ctrl-C, with where it stopped; exits with [`Exit::Interrupted`].
#[derive(Debug)]
pub struct Interrupted {
    /// Where it stopped and how to go on.
    pub message: String,
    /// What to do next.
    pub hint: String,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Interrupted {}

fn of_ledger(e: &LedgerError) -> Exit {
    match e {
        LedgerError::BadUrl { .. }
        | LedgerError::BadProxy { .. }
        | LedgerError::BadCaFile { .. } => Exit::Usage,
        LedgerError::Setup(_) => Exit::Other,
        _ => Exit::Network,
    }
}

fn of_client(e: &ClientError) -> Exit {
    match e {
        ClientError::Input(_) | ClientError::Card(_) => Exit::Usage,
        ClientError::Ledger(l) => of_ledger(l),
        ClientError::SuiteMismatch { .. }
        | ClientError::Protocol { .. }
        | ClientError::PowTooHard { .. } => Exit::Network,
        ClientError::NoPassphrase | ClientError::WrongPassphrase => Exit::Passphrase,
        ClientError::NoIdentity { .. }
        | ClientError::Database(_)
        | ClientError::Io { .. }
        | ClientError::Damaged { .. }
        | ClientError::HomeBusy { .. } => Exit::LocalData,
        _ => Exit::Other,
    }
}

/// The exit code for `e`: the first error in its chain of a kind told apart.
pub fn classify(e: &anyhow::Error) -> Exit {
    for cause in e.chain() {
        if cause.downcast_ref::<Interrupted>().is_some() {
            return Exit::Interrupted;
        }
        if let Some(c) = cause.downcast_ref::<ClientError>() {
            return of_client(c);
        }
        if let Some(l) = cause.downcast_ref::<LedgerError>() {
            return of_ledger(l);
        }
        if let Some(s) = cause.downcast_ref::<StoreError>() {
            return match s {
                StoreError::Locked { .. } => Exit::LocalData,
                _ => Exit::Other,
            };
        }
    }
    Exit::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_their_codes_through_context() {
        use anyhow::Context;
        let wrapped: anyhow::Result<()> =
            Err(ClientError::WrongPassphrase).context("opening the home");
        let e = wrapped.err().map(|e| classify(&e));
        assert_eq!(e, Some(Exit::Passphrase));
        let e = anyhow::Error::from(ClientError::Input("x".into()));
        assert_eq!(classify(&e).code(), 2);
        let e = anyhow::Error::from(ClientError::HomeBusy {
            home: "h".into(),
            holders: vec![],
        });
        assert_eq!(classify(&e).code(), 5);
        let e = anyhow::Error::from(Interrupted {
            message: "m".into(),
            hint: "h".into(),
        });
        assert_eq!(classify(&e).code(), 130);
        assert_eq!(classify(&anyhow::anyhow!("other")).code(), 1);
    }
}
