//! [`LedgerClient`]: the one typed client of the ledger's API, used by the `deaddrop` client,
//! mirrors, benchmarks and tests. HTTP for info, reads and appends; a WebSocket for the push
//! stream; everything optionally through a SOCKS5 proxy such as Tor
//! (`socks5h://127.0.0.1:9050`: the proxy resolves names too, so DNS does not leak).

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::body::{Accepted, Info, StreamHello, CLOSE_LAGGED};
use crate::frame::{frames, Frames};
use crate::header::{HeaderError, PageMeta, ENTRY_MEDIA_TYPE};
use crate::id::EntryId;
use crate::path;
use crate::problem::{Problem, ProblemKind};
use crate::retry::Backoff;

/// Everything talking to a ledger can fail with. The messages name the ledger and say what
/// happened; callers add what to do.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The ledger's URL cannot be used.
    #[error("`{url}` is not a ledger URL: {detail}; write it like http://127.0.0.1:8470")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The proxy's URL cannot be used.
    #[error("the proxy `{proxy}` cannot be used: {detail}")]
    BadProxy {
        /// The proxy as given.
        proxy: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The HTTP stack could not be set up.
    #[error("cannot set up HTTP: {0}")]
    Setup(String),
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
    pub proxy: Option<String>,
    /// How long a connection may take to open.
    pub connect_timeout: Duration,
    /// How long one whole request may take.
    pub timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            proxy: None,
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
}

/// A client of one ledger. Cheap to clone; clones share connections.
#[derive(Clone, Debug)]
pub struct LedgerClient {
    base: String,
    host: String,
    port: u16,
    http: reqwest::Client,
    socks: Option<Socks>,
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
        let base = url.trim().trim_end_matches('/').to_string();
        let bad = |detail: String| LedgerError::BadUrl {
            url: base.clone(),
            detail,
        };
        let parsed = url::Url::parse(&base).map_err(|e| bad(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad("it must start with http:// or https://".into()));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| bad("it has no host".into()))?
            .to_string();
        let port = parsed
            .port_or_known_default()
            .ok_or_else(|| bad("it has no port".into()))?;
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(options.connect_timeout)
            .timeout(options.timeout)
            .user_agent("deaddrop")
            .http1_only();
        let socks = match options
            .proxy
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            None => None,
            Some(p) => {
                let bad = |detail: String| LedgerError::BadProxy {
                    proxy: p.to_string(),
                    detail,
                };
                let u = url::Url::parse(p)
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
                b = b.proxy(reqwest::Proxy::all(p).map_err(|e| bad(e.to_string()))?);
                Some(Socks {
                    host,
                    port,
                    remote_dns,
                })
            }
        };
        let http = b.build().map_err(|e| LedgerError::Setup(e.to_string()))?;
        Ok(LedgerClient {
            base,
            host,
            port,
            http,
            socks,
        })
    }

    /// The ledger's URL, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.base
    }

    fn target(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }

    fn unreachable(&self, e: reqwest::Error) -> LedgerError {
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

    /// Opens the push stream after `after`, through the proxy if one is set.
    pub async fn stream(&self, after: EntryId) -> Result<PushStream, LedgerError> {
        let ws_url = self.target(&path::stream(after)).replacen("http", "ws", 1);
        let request = ws_url
            .as_str()
            .into_client_request()
            .map_err(|e| LedgerError::BadUrl {
                url: ws_url.clone(),
                detail: e.to_string(),
            })?;
        let unreachable = |detail: String| LedgerError::Unreachable {
            url: self.base.clone(),
            detail,
        };
        let (ws, _) = match &self.socks {
            None => tokio_tungstenite::connect_async(request)
                .await
                .map_err(|e| unreachable(e.to_string()))?,
            Some(p) => {
                let proxy = (p.host.as_str(), p.port);
                let target = (self.host.as_str(), self.port);
                let socks = if p.remote_dns {
                    tokio_socks::tcp::Socks5Stream::connect(proxy, target).await
                } else {
                    let addr = tokio::net::lookup_host(target)
                        .await
                        .map_err(|e| unreachable(format!("cannot resolve {}: {e}", self.host)))?
                        .next()
                        .ok_or_else(|| unreachable(format!("cannot resolve {}", self.host)))?;
                    tokio_socks::tcp::Socks5Stream::connect(proxy, addr).await
                }
                .map_err(|e| unreachable(format!("through the proxy: {e}")))?;
                let stream = MaybeTlsStream::Plain(socks.into_inner());
                tokio_tungstenite::client_async(request, stream)
                    .await
                    .map_err(|e| unreachable(e.to_string()))?
            }
        };
        Ok(PushStream {
            url: self.base.clone(),
            ws,
            closed: false,
        })
    }
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
