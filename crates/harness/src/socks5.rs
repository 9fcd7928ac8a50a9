//! A SOCKS5 proxy for tests of `--proxy` (RFC 1928: no authentication, CONNECT only, IPv4,
//! IPv6 and domain targets) that records every target it is asked for, can refuse on demand, and
//! resolves names of its own, as Tor resolves `.onion` names no one else can.

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

/// A SOCKS5 proxy (RFC 1928: no authentication, CONNECT only, IPv4, IPv6 and domain targets)
/// on `127.0.0.1:0`, with names of its own it resolves (as Tor resolves `.onion` names no one
/// else can), recording every connection it makes.
pub struct Socks5 {
    /// Where it listens on 127.0.0.1.
    pub port: u16,
    seen: Arc<Mutex<Vec<Target>>>,
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
    seen: Arc<Mutex<Vec<Target>>>,
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
    if !methods.contains(&0) {
        conn.write_all(&[5, 0xff]).await?;
        return Err(bad("no acceptable method"));
    }
    conn.write_all(&[5, 0]).await?;
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
    rules
        .seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(target.clone());
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
    let Ok(mut upstream) = tokio::net::TcpStream::connect(&addrs[..]).await else {
        conn.write_all(&reply(4)).await?;
        return Err(bad("target unreachable"));
    };
    conn.write_all(&reply(0)).await?;
    tokio::io::copy_bidirectional(&mut conn, &mut upstream).await?;
    Ok(())
}
