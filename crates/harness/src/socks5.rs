//! A SOCKS5 proxy for tests of `--proxy` (RFC 1928: CONNECT only, IPv4, IPv6 and domain
//! targets; no authentication or RFC 1929 username/password, whichever the client offers) that
//! records every connection it is asked for (target, credentials, the first bytes the client sent
//! through it), can refuse on demand, and resolves names of its own, as Tor resolves `.onion`
//! names no one else can.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where a SOCKS5 client asked to be connected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// ATYP 3: a name the proxy resolves.
    Domain(String, u16),
    /// ATYP 1 or 4: an address resolved by the client.
    Ip(SocketAddr),
}

/// RFC 1929 username and password, as a client sent them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Credentials {
    /// UNAME.
    pub username: String,
    /// PASSWD.
    pub password: String,
}

/// How many of the bytes a client sends through one connection are kept ([`Session::sent`]).
pub const SENT_KEPT: usize = 256 * 1024;

/// One connection a client asked the proxy for.
#[derive(Clone, Debug)]
pub struct Session {
    /// Where to.
    pub target: Target,
    /// The username and password it authenticated with, if it chose RFC 1929 (Tor isolates
    /// streams by these, `IsolateSOCKSAuth`).
    pub credentials: Option<Credentials>,
    /// The first [`SENT_KEPT`] bytes it sent to the target through the proxy (after the SOCKS
    /// exchange), as they went: cleartext HTTP shows here, TLS does not.
    pub sent: Vec<u8>,
}

impl Session {
    /// How many times `needle` occurs in [`Session::sent`].
    pub fn count_sent(&self, needle: &[u8]) -> usize {
        if needle.is_empty() {
            return 0;
        }
        self.sent
            .windows(needle.len())
            .filter(|w| *w == needle)
            .count()
    }
}

/// A SOCKS5 proxy (RFC 1928: CONNECT only, IPv4, IPv6 and domain targets; no authentication or
/// RFC 1929 username/password) on `127.0.0.1:0`, with names of its own it resolves (as Tor
/// resolves `.onion` names no one else can), recording every connection it makes.
pub struct Socks5 {
    /// Where it listens on 127.0.0.1.
    pub port: u16,
    seen: Arc<Mutex<Vec<Session>>>,
    accepted: Arc<AtomicUsize>,
    refusing: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Socks5 {
    /// Starts the proxy. `names` are resolved by it alone; other names by the system.
    pub fn start(names: &[(&str, IpAddr)]) -> Socks5 {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("the proxy binds");
        let port = listener.local_addr().expect("an address").port();
        let names: Arc<HashMap<String, IpAddr>> = Arc::new(
            names
                .iter()
                .map(|(n, ip)| (n.to_ascii_lowercase(), *ip))
                .collect(),
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let refusing = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicUsize::new(0));
        let rules = Rules {
            names,
            seen: seen.clone(),
            refusing: refusing.clone(),
            refused: refused.clone(),
        };
        let a = accepted.clone();
        rt.spawn(async move {
            let rules = Arc::new(rules);
            while let Ok((conn, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                let rules = rules.clone();
                tokio::spawn(async move {
                    let _ = socks5_session(conn, &rules).await;
                });
            }
        });
        Socks5 {
            port,
            seen,
            accepted,
            refusing,
            refused,
            rt: Some(rt),
        }
    }

    /// `socks5h://127.0.0.1:PORT` (names resolved by the proxy).
    pub fn url_remote_dns(&self) -> String {
        format!("socks5h://127.0.0.1:{}", self.port)
    }

    /// `socks5://127.0.0.1:PORT` (names resolved by the client).
    pub fn url_local_dns(&self) -> String {
        format!("socks5://127.0.0.1:{}", self.port)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// While set, every CONNECT is answered "not allowed by ruleset" (and counted).
    pub fn refuse(&self, on: bool) {
        self.refusing.store(on, Ordering::SeqCst);
    }

    /// CONNECTs refused so far.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    /// Every CONNECT target asked for so far.
    pub fn targets(&self) -> Vec<Target> {
        self.sessions().into_iter().map(|s| s.target).collect()
    }

    /// Every connection asked for so far, in order, with what was sent through it until now.
    pub fn sessions(&self) -> Vec<Session> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops listening and drops every connection.
    pub fn stop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

impl Drop for Socks5 {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Rules {
    names: Arc<HashMap<String, IpAddr>>,
    seen: Arc<Mutex<Vec<Session>>>,
    refusing: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
}

async fn socks5_session(mut conn: tokio::net::TcpStream, rules: &Rules) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    // Greeting: VER NMETHODS METHODS...
    let mut head = [0u8; 2];
    conn.read_exact(&mut head).await?;
    if head[0] != 5 {
        return Err(bad("not SOCKS5"));
    }
    let mut methods = vec![0u8; usize::from(head[1])];
    conn.read_exact(&mut methods).await?;
    // Username/password when offered, as Tor does; else none.
    let credentials = if methods.contains(&2) {
        conn.write_all(&[5, 2]).await?;
        // RFC 1929: VER(1) ULEN UNAME PLEN PASSWD.
        let mut ver_len = [0u8; 2];
        conn.read_exact(&mut ver_len).await?;
        if ver_len[0] != 1 {
            conn.write_all(&[1, 1]).await?;
            return Err(bad("not RFC 1929"));
        }
        let mut username = vec![0u8; usize::from(ver_len[1])];
        conn.read_exact(&mut username).await?;
        let mut plen = [0u8; 1];
        conn.read_exact(&mut plen).await?;
        let mut password = vec![0u8; usize::from(plen[0])];
        conn.read_exact(&mut password).await?;
        conn.write_all(&[1, 0]).await?;
        Some(Credentials {
            username: String::from_utf8_lossy(&username).into_owned(),
            password: String::from_utf8_lossy(&password).into_owned(),
        })
    } else if methods.contains(&0) {
        conn.write_all(&[5, 0]).await?;
        None
    } else {
        conn.write_all(&[5, 0xff]).await?;
        return Err(bad("no acceptable method"));
    };
    // Request: VER CMD RSV ATYP DST.ADDR DST.PORT
    let mut req = [0u8; 4];
    conn.read_exact(&mut req).await?;
    let reply = |code: u8| [5, code, 0, 1, 0, 0, 0, 0, 0, 0];
    if req[0] != 5 || req[1] != 1 {
        conn.write_all(&reply(7)).await?;
        return Err(bad("only CONNECT"));
    }
    let target = match req[3] {
        1 => {
            let mut b = [0u8; 6];
            conn.read_exact(&mut b).await?;
            let ip = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
            Target::Ip(SocketAddr::new(ip.into(), u16::from_be_bytes([b[4], b[5]])))
        }
        4 => {
            let mut b = [0u8; 18];
            conn.read_exact(&mut b).await?;
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&b[..16]);
            Target::Ip(SocketAddr::new(
                Ipv6Addr::from(ip).into(),
                u16::from_be_bytes([b[16], b[17]]),
            ))
        }
        3 => {
            let mut len = [0u8; 1];
            conn.read_exact(&mut len).await?;
            let mut name = vec![0u8; usize::from(len[0])];
            conn.read_exact(&mut name).await?;
            let mut port = [0u8; 2];
            conn.read_exact(&mut port).await?;
            Target::Domain(
                String::from_utf8_lossy(&name).into_owned(),
                u16::from_be_bytes(port),
            )
        }
        _ => {
            conn.write_all(&reply(8)).await?;
            return Err(bad("unknown address type"));
        }
    };
    let index = {
        let mut seen = rules.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.push(Session {
            target: target.clone(),
            credentials,
            sent: Vec::new(),
        });
        seen.len() - 1
    };
    if rules.refusing.load(Ordering::SeqCst) {
        rules.refused.fetch_add(1, Ordering::SeqCst);
        conn.write_all(&reply(2)).await?;
        return Ok(());
    }
    let addrs: Vec<SocketAddr> = match &target {
        Target::Ip(a) => vec![*a],
        Target::Domain(name, port) => match rules.names.get(&name.to_ascii_lowercase()) {
            Some(ip) => vec![SocketAddr::new(*ip, *port)],
            None => match tokio::net::lookup_host((name.as_str(), *port)).await {
                Ok(a) => a.collect(),
                Err(_) => Vec::new(),
            },
        },
    };
    let Ok(upstream) = tokio::net::TcpStream::connect(&addrs[..]).await else {
        conn.write_all(&reply(4)).await?;
        return Err(bad("target unreachable"));
    };
    conn.write_all(&reply(0)).await?;
    let (mut from_client, mut to_client) = conn.into_split();
    let (mut from_target, mut to_target) = upstream.into_split();
    let outbound = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = from_client.read(&mut buf).await?;
            if n == 0 {
                return to_target.shutdown().await;
            }
            {
                let mut seen = rules.seen.lock().unwrap_or_else(|e| e.into_inner());
                let sent = &mut seen[index].sent;
                let keep = n.min(SENT_KEPT.saturating_sub(sent.len()));
                sent.extend_from_slice(&buf[..keep]);
            }
            to_target.write_all(&buf[..n]).await?;
        }
    };
    let inbound = async {
        tokio::io::copy(&mut from_target, &mut to_client).await?;
        to_client.shutdown().await
    };
    tokio::try_join!(outbound, inbound)?;
    Ok(())
}
