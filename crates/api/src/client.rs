//! [`LedgerClient`]: the one typed client of the ledger's API, used by the `deaddrop` client,
//! mirrors, benchmarks and tests. HTTP for info, reads and appends; a WebSocket for the push
//! stream; both with one TLS configuration ([`crate::tls`]) for `https://` ledgers, and both
//! optionally through a SOCKS5 proxy such as Tor (`socks5h://127.0.0.1:9050`: the proxy resolves
//! names too, so DNS does not leak), TLS then running inside the proxied stream.
//!
//! **Stream isolation.** Through a proxy, every client carries SOCKS5 username/password
//! credentials (RFC 1929) of its own, fresh random ones unless the proxy URL names some
//! (`socks5h://USER:PASS@HOST:PORT`). Tor puts streams with different credentials on different
//! circuits (`IsolateSOCKSAuth`, on by default for every `SocksPort`), so what one client does
//! cannot be linked to what another does by the exit or the ledger seeing one circuit.
//! [`LedgerClient::isolated`] makes a client of the same ledger with new credentials (and a TLS
//! session cache of its own); clones share credentials and connections.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::body::{Accepted, Info, StreamHello, CLOSE_LAGGED};
use crate::frame::{frames, Frames};
use crate::header::{HeaderError, PageMeta, ENTRY_MEDIA_TYPE};
use crate::id::EntryId;
use crate::path;
use crate::problem::{Problem, ProblemKind};
use crate::retry::Backoff;
use crate::tls;

/// Everything talking to a ledger can fail with. The messages name the ledger and say what
/// happened; callers add what to do.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The ledger's URL cannot be used.
    #[error("`{url}` is not a ledger URL: {detail}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        detail: String,
        /// What to write instead (the hint; the message leaves it out), e.g. "give the ledger's base
        /// URL without /v1:
        /// http://127.0.0.1:8470".
        fix: String,
    },
    /// An `https://` URL, but the ledger there answered in plain HTTP (the TLS handshake met an
    /// HTTP answer). Not transient: the same URL fails the same way.
    #[error("the ledger at {url} speaks plain HTTP, not TLS: use {http_url}")]
    PlainHttp {
        /// The `https://` URL as given.
        url: String,
        /// The same ledger with `http://`.
        http_url: String,
    },
    /// The proxy's URL cannot be used.
    #[error("the proxy `{proxy}` cannot be used: {detail}")]
    BadProxy {
        /// The proxy as given.
        proxy: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The file of extra certificate authorities cannot be used.
    #[error("the CA file {} cannot be used: {detail}", path.display())]
    BadCaFile {
        /// The file as given.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// The HTTP stack could not be set up.
    #[error("cannot set up HTTP: {0}")]
    Setup(String),
    /// The ledger's TLS certificate is not trusted: signed by no authority this client trusts,
    /// for another name, or expired. Not transient: asking again gets the same certificate.
    #[error(
        "the ledger at {url} presented a TLS certificate this client does not trust ({detail})"
    )]
    Certificate {
        /// The ledger's URL.
        url: String,
        /// What rustls said.
        detail: String,
    },
    /// The ledger cannot be reached (refused, timed out, reset, no route, proxy failure).
    #[error("the ledger at {url} is not reachable ({detail})")]
    Unreachable {
        /// The ledger's URL.
        url: String,
        /// What the network layer said.
        detail: String,
    },
    /// The ledger answered with an error.
    #[error("the ledger at {url} refused: {} {}: {}", problem.status, problem.title, problem.detail)]
    Refused {
        /// The ledger's URL.
        url: String,
        /// Its problem document (a bare status becomes a problem of kind `Other("")`).
        problem: Problem,
    },
    /// The ledger's answer cannot be understood.
    #[error("the ledger at {url} sent something unexpected: {detail}")]
    Protocol {
        /// The ledger's URL.
        url: String,
        /// What was wrong.
        detail: String,
    },
}

impl LedgerError {
    /// The problem's kind, when the ledger refused.
    pub fn problem(&self) -> Option<&ProblemKind> {
        match self {
            LedgerError::Refused { problem, .. } => Some(&problem.kind),
            _ => None,
        }
    }

    /// Whether the same request may succeed later: the ledger is unreachable, busy, full, its
    /// store is away, or it answered 5xx or 429.
    pub fn is_transient(&self) -> bool {
        match self {
            LedgerError::Unreachable { .. } => true,
            LedgerError::Refused { problem, .. } => {
                problem.kind.is_transient() || problem.status >= 500 || problem.status == 429
            }
            _ => false,
        }
    }
}

/// How a [`LedgerClient`] connects.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// A SOCKS5 proxy: `socks5h://HOST:PORT` (names resolved by the proxy, as Tor needs) or
    /// `socks5://HOST:PORT` (names resolved here).
    ///
    /// Without credentials in the URL, each client gets fresh random ones (see the module
    /// documentation); with `USER:PASS@`, every connection uses those.
    pub proxy: Option<String>,
    /// A PEM file of certificate authorities to trust for an `https://` ledger besides the
    /// webpki roots: a ledger whose certificate comes from a private CA.
    pub ca_file: Option<PathBuf>,
    /// How long a connection may take to open.
    pub connect_timeout: Duration,
    /// How long one whole request may take.
    pub timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            proxy: None,
            ca_file: None,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(120),
        }
    }
}

#[derive(Clone, Debug)]
struct Socks {
    host: String,
    port: u16,
    remote_dns: bool,
    /// The proxy's URL without credentials, for reqwest.
    url: String,
    auth: SocksAuth,
}

/// RFC 1929 credentials: Tor's isolation key for a stream.
#[derive(Clone)]
struct SocksAuth {
    username: String,
    password: String,
    /// Written in the proxy URL by the user: kept for every client, never replaced.
    given: bool,
}

impl std::fmt::Debug for SocksAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // They link connections to one another; they stay out of logs.
        f.debug_struct("SocksAuth")
            .field("given", &self.given)
            .finish_non_exhaustive()
    }
}

impl SocksAuth {
    /// 16 random bytes each, in hex: unique to one client.
    fn fresh() -> Result<SocksAuth, LedgerError> {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| {
            LedgerError::Setup("the operating system's random generator failed".into())
        })?;
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        Ok(SocksAuth {
            username: hex(&bytes[..16]),
            password: hex(&bytes[16..]),
            given: false,
        })
    }
}

/// A client of one ledger. Cheap to clone; clones share connections and SOCKS credentials
/// ([`LedgerClient::isolated`] makes one that shares neither).
#[derive(Clone, Debug)]
pub struct LedgerClient {
    base: String,
    host: String,
    port: u16,
    http: reqwest::Client,
    socks: Option<Socks>,
    /// The command's configuration, for [`LedgerClient::isolated`].
    tls_base: Arc<rustls::ClientConfig>,
    /// This client's, used by its HTTP and its WebSocket connections alike.
    tls: Arc<rustls::ClientConfig>,
    connect_timeout: Duration,
    timeout: Duration,
}

/// One page of a read.
#[derive(Clone, Debug)]
pub struct Page {
    /// What the read's headers said.
    pub meta: PageMeta,
    /// The frames, undecoded.
    pub body: Bytes,
}

impl Page {
    /// The frames of this page, refusing entries longer than `max_entry`.
    pub fn frames(&self, max_entry: usize) -> Frames<'_> {
        frames(&self.body, max_entry)
    }
}

/// What the push stream delivers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushEvent {
    /// The first message: the ledger's bounds and any gap after the subscriber's `after`.
    Hello(StreamHello),
    /// One or more frames (decode with [`frames`](crate::frames)).
    Frames(Bytes),
    /// The ledger closed the stream.
    Closed {
        /// The subscriber fell behind ([`CLOSE_LAGGED`]): read to catch up, then reconnect.
        lagged: bool,
        /// The ledger's reason.
        reason: String,
    },
}

/// An open push stream.
pub struct PushStream {
    url: String,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    closed: bool,
}

impl std::fmt::Debug for PushStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushStream")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl PushStream {
    /// The next event; `None` once the stream has ended.
    pub async fn next(&mut self) -> Option<Result<PushEvent, LedgerError>> {
        while !self.closed {
            let msg = match self.ws.next().await {
                None => {
                    self.closed = true;
                    return Some(Err(LedgerError::Unreachable {
                        url: self.url.clone(),
                        detail: "the push stream ended".into(),
                    }));
                }
                Some(Err(e)) => {
                    self.closed = true;
                    return Some(Err(LedgerError::Unreachable {
                        url: self.url.clone(),
                        detail: e.to_string(),
                    }));
                }
                Some(Ok(m)) => m,
            };
            match msg {
                Message::Binary(data) => return Some(Ok(PushEvent::Frames(data))),
                Message::Text(text) => {
                    // A text message this version does not know is skipped: only the hello is
                    // defined today.
                    if let Ok(h) = serde_json::from_str::<StreamHello>(&text) {
                        if h.kind == StreamHello::KIND {
                            return Some(Ok(PushEvent::Hello(h)));
                        }
                    }
                }
                Message::Close(frame) => {
                    self.closed = true;
                    let (lagged, reason) = frame.map_or((false, String::new()), |f| {
                        (u16::from(f.code) == CLOSE_LAGGED, f.reason.to_string())
                    });
                    return Some(Ok(PushEvent::Closed { lagged, reason }));
                }
                _ => {}
            }
        }
        None
    }

    /// Closes the stream politely.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

impl LedgerClient {
    /// A client for the ledger at `url` (`http://host:port` or `https://...`).
    pub fn new(url: &str, options: &ClientOptions) -> Result<Self, LedgerError> {
        let LedgerUrl { base, host, port } = parse_ledger_url(url)?;
        let socks = match options
            .proxy
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            None => None,
            Some(p) => Some(parse_proxy(p)?),
        };
        let tls_base = tls::base_config(options.ca_file.as_deref())?;
        let tls = tls::for_one_client(&tls_base);
        let http = http_client(
            &tls,
            socks.as_ref(),
            options.connect_timeout,
            options.timeout,
        )?;
        Ok(LedgerClient {
            base,
            host,
            port,
            http,
            socks,
            tls_base,
            tls,
            connect_timeout: options.connect_timeout,
            timeout: options.timeout,
        })
    }

    /// A client of the same ledger whose connections share nothing with this one's that could
    /// link them: fresh SOCKS credentials (so Tor gives it circuits of its own), new
    /// connections and a TLS session cache of its own. Without a proxy (the ledger sees one
    /// address anyway), or with credentials the user wrote in the proxy URL (the user chose to
    /// share circuits), it is a clone, sharing connections.
    pub fn isolated(&self) -> Result<LedgerClient, LedgerError> {
        let Some(s) = self.socks.as_ref().filter(|s| !s.auth.given) else {
            return Ok(self.clone());
        };
        let socks = Socks {
            auth: SocksAuth::fresh()?,
            ..s.clone()
        };
        let tls = tls::for_one_client(&self.tls_base);
        let http = http_client(&tls, Some(&socks), self.connect_timeout, self.timeout)?;
        Ok(LedgerClient {
            http,
            socks: Some(socks),
            tls,
            ..self.clone()
        })
    }

    /// The ledger's URL, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.base
    }

    fn target(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }

    /// The same ledger over plain HTTP, for [`LedgerError::PlainHttp`].
    fn plain_http(&self) -> LedgerError {
        LedgerError::PlainHttp {
            url: self.base.clone(),
            http_url: self.base.replacen("https://", "http://", 1),
        }
    }

    fn unreachable(&self, e: reqwest::Error) -> LedgerError {
        if let Some(detail) = tls::certificate_refused(&e) {
            return LedgerError::Certificate {
                url: self.base.clone(),
                detail,
            };
        }
        if self.base.starts_with("https://") && tls::plain_text_answer(&e) {
            return self.plain_http();
        }
        // The innermost cause says what happened ("Connection refused"); the layers above it
        // only repeat the URL.
        let mut detail = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            detail = s.to_string();
            src = s.source();
        }
        if e.is_timeout() {
            detail = format!("timed out: {detail}");
        }
        LedgerError::Unreachable {
            url: self.base.clone(),
            detail,
        }
    }

    fn protocol(&self, detail: impl Into<String>) -> LedgerError {
        LedgerError::Protocol {
            url: self.base.clone(),
            detail: detail.into(),
        }
    }

    async fn refused(&self, res: reqwest::Response) -> LedgerError {
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        let problem = serde_json::from_str::<Problem>(&text).unwrap_or_else(|_| Problem {
            kind: ProblemKind::Other(String::new()),
            title: "error".into(),
            status,
            detail: text.chars().take(200).collect(),
        });
        LedgerError::Refused {
            url: self.base.clone(),
            problem,
        }
    }

    async fn get(&self, path_and_query: &str) -> Result<reqwest::Response, LedgerError> {
        let res = self
            .http
            .get(self.target(path_and_query))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        if !res.status().is_success() {
            return Err(self.refused(res).await);
        }
        Ok(res)
    }

    /// The ledger's [`Info`].
    pub async fn info(&self) -> Result<Info, LedgerError> {
        let res = self.get(path::INFO).await?;
        let body = res.bytes().await.map_err(|e| self.unreachable(e))?;
        serde_json::from_slice(&body)
            .map_err(|e| self.protocol(format!("its info is not deaddrop's: {e}")))
    }

    /// Appends one entry: one attempt. A repeat of bytes the ledger already holds is answered
    /// with the id it has (`200`) or stored again, depending on the ledger; both are success.
    pub async fn append(&self, entry: impl Into<Bytes>) -> Result<Accepted, LedgerError> {
        let res = self
            .http
            .post(self.target(path::ENTRIES))
            .header(reqwest::header::CONTENT_TYPE, ENTRY_MEDIA_TYPE)
            .body(entry.into())
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        if !res.status().is_success() {
            return Err(self.refused(res).await);
        }
        let body = res.bytes().await.map_err(|e| self.unreachable(e))?;
        serde_json::from_slice(&body)
            .map_err(|e| self.protocol(format!("its answer to an append: {e}")))
    }

    /// Reads up to `limit` entries after `after`.
    pub async fn read(&self, after: EntryId, limit: usize) -> Result<Page, LedgerError> {
        let res = self.get(&path::read(after, limit)).await?;
        let meta = PageMeta::from_headers(res.headers())
            .map_err(|e: HeaderError| self.protocol(format!("a read's headers: {e}")))?;
        let body = res.bytes().await.map_err(|e| self.unreachable(e))?;
        Ok(Page { meta, body })
    }

    /// Opens the push stream after `after`, through the proxy if one is set; over TLS (inside
    /// the proxied stream, if any) for an `https://` ledger.
    pub async fn stream(&self, after: EntryId) -> Result<PushStream, LedgerError> {
        let ws_url = self.target(&path::stream(after)).replacen("http", "ws", 1);
        let request = ws_url
            .as_str()
            .into_client_request()
            .map_err(|e| LedgerError::BadUrl {
                url: ws_url.clone(),
                detail: e.to_string(),
                fix: "check the ledger's URL".into(),
            })?;
        let unreachable = |detail: String| LedgerError::Unreachable {
            url: self.base.clone(),
            detail,
        };
        let failed = |e: tokio_tungstenite::tungstenite::Error| match tls::certificate_refused(&e) {
            Some(detail) => LedgerError::Certificate {
                url: self.base.clone(),
                detail,
            },
            None if self.base.starts_with("https://") && tls::plain_text_answer(&e) => {
                self.plain_http()
            }
            None => unreachable(e.to_string()),
        };
        // The same TLS configuration as the HTTP requests': a ledger that can be synced can be
        // watched. Used only for wss://.
        let connector = Some(Connector::Rustls(self.tls.clone()));
        let (ws, _) = match &self.socks {
            None => {
                tokio_tungstenite::connect_async_tls_with_config(request, None, false, connector)
                    .await
                    .map_err(failed)?
            }
            Some(p) => {
                use tokio_socks::tcp::Socks5Stream;
                let proxy = (p.host.as_str(), p.port);
                let (user, pass) = (p.auth.username.as_str(), p.auth.password.as_str());
                let target = (self.host.as_str(), self.port);
                let socks = if p.remote_dns {
                    Socks5Stream::connect_with_password(proxy, target, user, pass).await
                } else {
                    let addr = tokio::net::lookup_host(target)
                        .await
                        .map_err(|e| unreachable(format!("cannot resolve {}: {e}", self.host)))?
                        .next()
                        .ok_or_else(|| unreachable(format!("cannot resolve {}", self.host)))?;
                    Socks5Stream::connect_with_password(proxy, addr, user, pass).await
                }
                .map_err(|e| unreachable(format!("through the proxy: {e}")))?;
                // TLS (for wss://) inside the proxied stream, then the upgrade inside that.
                tokio_tungstenite::client_async_tls_with_config(
                    request,
                    socks.into_inner(),
                    None,
                    connector,
                )
                .await
                .map_err(failed)?
            }
        };
        Ok(PushStream {
            url: self.base.clone(),
            ws,
            closed: false,
        })
    }
}

/// A ledger's URL as the client uses it: `http(s)://host[:port]`, nothing after.
struct LedgerUrl {
    /// The URL without a trailing `/`.
    base: String,
    host: String,
    port: u16,
}

/// The ledger URL `url` (`http://host:port` or `https://host[:port]`) as the client writes it
/// (without a trailing `/`), or why it cannot work with what to write instead: a URL without a
/// scheme, with another scheme, or with a path (such as `/v1`: the client adds the API's paths
/// itself). Used by [`LedgerClient::new`], and to check a URL before it is stored.
pub fn ledger_url(url: &str) -> Result<String, LedgerError> {
    parse_ledger_url(url).map(|u| u.base)
}

fn parse_ledger_url(url: &str) -> Result<LedgerUrl, LedgerError> {
    let given = url.trim();
    let bad = |detail: &str, fix: String| LedgerError::BadUrl {
        url: given.to_string(),
        detail: detail.to_string(),
        fix,
    };
    let like = "write it like http://127.0.0.1:8470".to_string();
    if given.is_empty() {
        return Err(bad("it is empty", like));
    }
    let Some((scheme, _)) = given.split_once("://") else {
        // `host:port` alone: suggest it with http:// (and without any path).
        let fix = match url::Url::parse(&format!("http://{given}")) {
            Ok(u) if u.host_str().is_some() => {
                format!("add http:// or https://: {}", origin(&u, "http"))
            }
            _ => format!("add http:// or https://; {like}"),
        };
        return Err(bad("it has no scheme", fix));
    };
    if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
        let fix = match url::Url::parse(given) {
            Ok(u) if u.host_str().is_some() => {
                format!("use http:// or https://: {}", origin(&u, "http"))
            }
            _ => format!("use http:// or https://; {like}"),
        };
        return Err(bad(
            &format!("its scheme `{scheme}` is not http or https"),
            fix,
        ));
    }
    let parsed = url::Url::parse(given).map_err(|e| bad(&e.to_string(), like.clone()))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| bad("it has no host", like.clone()))?
        .to_string();
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| bad("it has no port", like.clone()))?;
    let base = origin(&parsed, parsed.scheme());
    let path = parsed.path().trim_end_matches('/');
    if !path.is_empty() || parsed.query().is_some() || parsed.fragment().is_some() {
        let what = if path.is_empty() {
            "a query or fragment".to_string()
        } else {
            format!("the path {path}")
        };
        return Err(bad(
            &format!("it has {what}, and the client adds the API's paths itself"),
            format!(
                "give the ledger's base URL without {}: {base}",
                if path.is_empty() { "it" } else { path }
            ),
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad(
            "it carries a user name or password, which no ledger asks for",
            format!("leave them out: {base}"),
        ));
    }
    Ok(LedgerUrl { base, host, port })
}

/// `scheme://host[:port]` of `u`, the port only when it was written.
fn origin(u: &url::Url, scheme: &str) -> String {
    let host = u.host_str().unwrap_or_default();
    match u.port() {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    }
}

/// Checks a proxy URL as [`ClientOptions::proxy`] takes it, without connecting.
pub fn check_proxy(proxy: &str) -> Result<(), LedgerError> {
    parse_proxy(proxy.trim()).map(|_| ())
}

/// Checks a file of certificate authorities as [`ClientOptions::ca_file`] takes it: readable,
/// PEM, at least one certificate that can be a trust anchor.
pub fn check_ca_file(path: &std::path::Path) -> Result<(), LedgerError> {
    tls::base_config(Some(path)).map(|_| ())
}

/// The proxy at `p`: `socks5h://` or `socks5://`, with credentials of the user's if the URL
/// carries them, else fresh random ones.
fn parse_proxy(p: &str) -> Result<Socks, LedgerError> {
    let bad = |detail: String| LedgerError::BadProxy {
        proxy: without_credentials(p),
        detail,
    };
    let mut u = url::Url::parse(p)
        .map_err(|e| bad(format!("{e}; write it like socks5h://127.0.0.1:9050")))?;
    let remote_dns = match u.scheme() {
        "socks5h" => true,
        "socks5" => false,
        other => return Err(bad(format!("scheme `{other}` is not supported: use socks5h:// (names resolved by the proxy, as Tor needs) or socks5://"))),
    };
    let host = u
        .host_str()
        .ok_or_else(|| bad("it has no host".into()))?
        .to_string();
    let port = u.port().unwrap_or(1080);
    let auth = if u.username().is_empty() && u.password().is_none() {
        SocksAuth::fresh()?
    } else {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| bad("its username or password is not UTF-8".into()))
        };
        let username = decode(u.username())?;
        let password = decode(u.password().unwrap_or(""))?;
        // RFC 1929: each 1 to 255 bytes.
        if !(1..=255).contains(&username.len()) || !(1..=255).contains(&password.len()) {
            return Err(bad(
                "a SOCKS5 username and password are each 1 to 255 bytes: write socks5h://USER:PASS@HOST:PORT, or leave both out to get fresh ones for every command".into(),
            ));
        }
        SocksAuth {
            username,
            password,
            given: true,
        }
    };
    // Credentials never travel in the URL given to reqwest: they are set apart, per client.
    let _ = u.set_username("");
    let _ = u.set_password(None);
    Ok(Socks {
        host,
        port,
        remote_dns,
        url: u.to_string(),
        auth,
    })
}

/// `p` with any `USER:PASS@` replaced by `…@`, for messages: the user's proxy password is not
/// printed back.
fn without_credentials(p: &str) -> String {
    let start = p.find("://").map_or(0, |i| i + 3);
    let authority_end = p[start..]
        .find(['/', '?', '#'])
        .map_or(p.len(), |i| start + i);
    match p[start..authority_end].rfind('@') {
        Some(at) => format!("{}…{}", &p[..start], &p[start + at..]),
        None => p.to_string(),
    }
}

/// The HTTP client of one [`LedgerClient`]: its TLS configuration, and through the proxy with
/// its credentials.
fn http_client(
    tls: &Arc<rustls::ClientConfig>,
    socks: Option<&Socks>,
    connect_timeout: Duration,
    timeout: Duration,
) -> Result<reqwest::Client, LedgerError> {
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .user_agent("deaddrop")
        .http1_only()
        .tls_backend_preconfigured(rustls::ClientConfig::clone(tls));
    if let Some(s) = socks {
        let proxy = reqwest::Proxy::all(&s.url)
            .map_err(|e| LedgerError::BadProxy {
                proxy: s.url.clone(),
                detail: e.to_string(),
            })?
            .basic_auth(&s.auth.username, &s.auth.password);
        b = b.proxy(proxy);
    }
    b.build().map_err(|e| LedgerError::Setup(e.to_string()))
}

/// Runs `attempt` until it succeeds, fails with an error `is_transient` refuses, or `backoff`
/// runs out of patience (then the last error is returned).
pub async fn retry<T, E, Fut>(
    mut backoff: Backoff,
    is_transient: impl Fn(&E) -> bool,
    mut attempt: impl FnMut() -> Fut,
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
{
    loop {
        match attempt().await {
            Err(e) if is_transient(&e) => {
                if !backoff.wait().await {
                    return Err(e);
                }
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn ledger_urls_that_cannot_work_are_refused_with_what_to_write() {
        let fix = |url: &str| match ledger_url(url).unwrap_err() {
            LedgerError::BadUrl { fix, .. } => fix,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            ledger_url("http://127.0.0.1:8470/").unwrap(),
            "http://127.0.0.1:8470"
        );
        assert_eq!(
            ledger_url(" https://Ledger.example ").unwrap(),
            "https://ledger.example"
        );
        assert_eq!(
            ledger_url("http://[::1]:8470").unwrap(),
            "http://[::1]:8470"
        );
        assert_eq!(
            fix("http://127.0.0.1:8470/v1"),
            "give the ledger's base URL without /v1: http://127.0.0.1:8470"
        );
        assert_eq!(
            fix("http://127.0.0.1:8470/v1/info"),
            "give the ledger's base URL without /v1/info: http://127.0.0.1:8470"
        );
        assert!(fix("http://h:1/?x=1").contains("http://h:1"));
        assert_eq!(
            fix("127.0.0.1:8470"),
            "add http:// or https://: http://127.0.0.1:8470"
        );
        assert_eq!(
            fix("localhost:8470/v1"),
            "add http:// or https://: http://localhost:8470"
        );
        assert_eq!(fix("ws://h:1"), "use http:// or https://: http://h:1");
        assert!(fix("").contains("http://127.0.0.1:8470"));
        assert!(fix("http://u:p@h:1").contains("http://h:1"));
        let e = ledger_url("http://127.0.0.1:8470/v1")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/v1") && e.contains("http://127.0.0.1:8470"),
            "{e}"
        );
    }

    #[test]
    fn a_proxy_password_is_not_printed_back() {
        assert_eq!(
            without_credentials("socks5h://alice:s3cret@127.0.0.1:9050"),
            "socks5h://…@127.0.0.1:9050"
        );
        assert_eq!(
            without_credentials("socks5h://127.0.0.1:9050"),
            "socks5h://127.0.0.1:9050"
        );
        assert_eq!(
            without_credentials("socks5h://127.0.0.1:9050/x?y@z"),
            "socks5h://127.0.0.1:9050/x?y@z"
        );
        let e = parse_proxy("socks4://alice:s3cret@127.0.0.1:9050").unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
        let e = parse_proxy("socks5h://alice@127.0.0.1:9050").unwrap_err();
        assert!(!e.to_string().contains("alice"), "{e}");
    }

    #[test]
    fn credentials_in_the_proxy_url_are_the_users_and_others_are_fresh() {
        let given = parse_proxy("socks5h://al%40ice:pa%3Ass@127.0.0.1:9050").unwrap();
        assert!(given.auth.given);
        assert_eq!(given.auth.username, "al@ice");
        assert_eq!(given.auth.password, "pa:ss");
        assert_eq!(given.url, "socks5h://127.0.0.1:9050");
        assert!(!format!("{given:?}").contains("pa:ss"));
        let one = parse_proxy("socks5h://127.0.0.1:9050").unwrap();
        let two = parse_proxy("socks5h://127.0.0.1:9050").unwrap();
        assert!(!one.auth.given);
        assert_eq!(one.auth.username.len(), 32);
        assert_ne!(one.auth.username, two.auth.username);
        assert_ne!(one.auth.password, two.auth.password);
    }

    #[test]
    fn an_isolated_client_has_new_credentials_unless_the_user_gave_some() {
        let with = |proxy: &str| {
            LedgerClient::new(
                "http://127.0.0.1:8470",
                &ClientOptions {
                    proxy: Some(proxy.into()),
                    ..Default::default()
                },
            )
            .unwrap()
        };
        let auth = |c: &LedgerClient| {
            let a = &c.socks.as_ref().unwrap().auth;
            (a.username.clone(), a.password.clone())
        };
        let command = with("socks5h://127.0.0.1:9050");
        let part = command.isolated().unwrap();
        assert_ne!(auth(&command), auth(&part));
        assert_eq!(auth(&command), auth(&command.clone()));
        assert!(!Arc::ptr_eq(&command.tls, &part.tls));
        let mine = with("socks5h://me:pw@127.0.0.1:9050");
        assert_eq!(auth(&mine.isolated().unwrap()), ("me".into(), "pw".into()));
    }
}
