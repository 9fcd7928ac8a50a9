//! Talking to a ledger (docs/API.md) over HTTP and WebSocket, optionally through a SOCKS5 proxy
//! such as Tor (`socks5h://127.0.0.1:9050`: the proxy resolves names too, so DNS does not leak).
//! Every request, the push stream included, goes through the proxy when one is set.

use std::time::Duration;

use bytes::Bytes;
use deaddrop_proto::wire::{
    self, Accepted, Info, Problem, HEADER_GAP, HEADER_NEWEST, HEADER_NEXT_AFTER, HEADER_OLDEST,
};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::error::ClientError;

/// A ledger client.
#[derive(Clone, Debug)]
pub struct LedgerClient {
    base: String,
    http: reqwest::Client,
    proxy: Option<ProxyUrl>,
}

#[derive(Clone, Debug)]
struct ProxyUrl {
    host: String,
    port: u16,
    remote_dns: bool,
}

/// One page of a read.
#[derive(Debug)]
pub struct Page {
    /// The response body: frames (see [`deaddrop_proto::wire::frames`]).
    pub body: Bytes,
    /// Where the next page starts.
    pub next_after: u64,
    /// The oldest id the ledger holds.
    pub oldest: Option<u64>,
    /// The newest id the ledger assigned.
    pub newest: Option<u64>,
    /// Ids that expired before this reader read them.
    pub gap: Option<(u64, u64)>,
}

/// A push stream.
pub type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn header_u64(h: &reqwest::header::HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

impl LedgerClient {
    /// A client for the ledger at `url` (`http://host:port`), through `proxy` if given
    /// (`socks5://` resolves names locally, `socks5h://` at the proxy).
    pub fn new(url: &str, proxy: Option<&str>) -> Result<Self, ClientError> {
        let base = url.trim().trim_end_matches('/').to_string();
        let parsed = url::Url::parse(&base).map_err(|e| {
            ClientError::Input(format!(
                "--ledger `{base}` is not a URL ({e}); write it like http://127.0.0.1:8470"
            ))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ClientError::Input(format!(
                "--ledger `{base}` must start with http:// or https://"
            )));
        }
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .user_agent("deaddrop")
            .http1_only();
        let proxy = match proxy.map(str::trim).filter(|p| !p.is_empty()) {
            Some(p) => {
                let u = url::Url::parse(p).map_err(|e| {
                    ClientError::Input(format!(
                        "--proxy `{p}` is not a URL ({e}); write it like socks5h://127.0.0.1:9050"
                    ))
                })?;
                let remote_dns = match u.scheme() {
                    "socks5h" => true,
                    "socks5" => false,
                    other => return Err(ClientError::Input(format!("--proxy scheme `{other}` is not supported: use socks5h:// (names resolved by the proxy, as Tor needs) or socks5://"))),
                };
                let host = u
                    .host_str()
                    .ok_or_else(|| ClientError::Input(format!("--proxy `{p}` has no host")))?
                    .to_string();
                let port = u.port().unwrap_or(1080);
                b = b.proxy(
                    reqwest::Proxy::all(p)
                        .map_err(|e| ClientError::Input(format!("--proxy `{p}`: {e}")))?,
                );
                Some(ProxyUrl {
                    host,
                    port,
                    remote_dns,
                })
            }
            None => None,
        };
        let http = b
            .build()
            .map_err(|e| ClientError::Proto(format!("cannot set up HTTP: {e}")))?;
        Ok(LedgerClient { base, http, proxy })
    }

    /// The ledger's URL, as the sync position's key.
    pub fn url(&self) -> &str {
        &self.base
    }

    fn unreachable(&self, e: reqwest::Error) -> ClientError {
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
        ClientError::Unreachable {
            url: self.base.clone(),
            detail,
        }
    }

    async fn problem(&self, res: reqwest::Response) -> ClientError {
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        match serde_json::from_str::<Problem>(&text) {
            Ok(p) => ClientError::Ledger {
                url: self.base.clone(),
                status,
                reason: p.kind.rsplit(':').next().unwrap_or("").to_string(),
                title: p.title,
                detail: p.detail,
            },
            Err(_) => ClientError::Ledger {
                url: self.base.clone(),
                status,
                reason: String::new(),
                title: "error".into(),
                detail: text.chars().take(200).collect(),
            },
        }
    }

    /// `GET /v1/info`.
    pub async fn info(&self) -> Result<Info, ClientError> {
        let res = self
            .http
            .get(format!("{}/v1/info", self.base))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        if !res.status().is_success() {
            return Err(self.problem(res).await);
        }
        let body = res.bytes().await.map_err(|e| self.unreachable(e))?;
        serde_json::from_slice(&body).map_err(|e| ClientError::Protocol {
            url: self.base.clone(),
            detail: format!("/v1/info is not deaddrop's: {e}"),
        })
    }

    /// `POST /v1/entries`: one attempt.
    pub async fn append(&self, entry: Vec<u8>) -> Result<Accepted, ClientError> {
        let res = self
            .http
            .post(format!("{}/v1/entries", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(entry)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        if res.status() != reqwest::StatusCode::CREATED {
            return Err(self.problem(res).await);
        }
        let body = res.bytes().await.map_err(|e| self.unreachable(e))?;
        serde_json::from_slice(&body).map_err(|e| ClientError::Protocol {
            url: self.base.clone(),
            detail: format!("append answer: {e}"),
        })
    }

    /// `GET /v1/entries?after=..&limit=..`.
    pub async fn read(&self, after: u64, limit: usize) -> Result<Page, ClientError> {
        let res = self
            .http
            .get(format!(
                "{}/v1/entries?after={after}&limit={limit}",
                self.base
            ))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        if !res.status().is_success() {
            return Err(self.problem(res).await);
        }
        let h = res.headers().clone();
        let body = res.bytes().await.map_err(|e| self.unreachable(e))?;
        let gap = h
            .get(HEADER_GAP)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once('-'))
            .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
        Ok(Page {
            next_after: header_u64(&h, HEADER_NEXT_AFTER).unwrap_or(after),
            oldest: header_u64(&h, HEADER_OLDEST),
            newest: header_u64(&h, HEADER_NEWEST),
            gap,
            body,
        })
    }

    /// Opens the push stream after `after` (`GET /v1/stream`, WebSocket), through the proxy if
    /// one is set.
    pub async fn stream(&self, after: u64) -> Result<Stream, ClientError> {
        let ws_url = format!(
            "{}/v1/stream?after={after}",
            self.base.replacen("http", "ws", 1)
        );
        let request = ws_url
            .as_str()
            .into_client_request()
            .map_err(|e| ClientError::Input(format!("bad stream URL {ws_url}: {e}")))?;
        let unreachable = |detail: String| ClientError::Unreachable {
            url: self.base.clone(),
            detail,
        };
        let (ws, _) = match &self.proxy {
            None => tokio_tungstenite::connect_async(request)
                .await
                .map_err(|e| unreachable(e.to_string()))?,
            Some(p) => {
                let u =
                    url::Url::parse(&self.base).map_err(|e| ClientError::Input(e.to_string()))?;
                let host = u.host_str().unwrap_or("").to_string();
                let port = u.port_or_known_default().unwrap_or(80);
                let proxy_addr = (p.host.as_str(), p.port);
                let socks = if p.remote_dns {
                    tokio_socks::tcp::Socks5Stream::connect(proxy_addr, (host.as_str(), port)).await
                } else {
                    let target = tokio::net::lookup_host((host.as_str(), port))
                        .await
                        .map_err(|e| unreachable(format!("cannot resolve {host}: {e}")))?
                        .next()
                        .ok_or_else(|| unreachable(format!("cannot resolve {host}")))?;
                    tokio_socks::tcp::Socks5Stream::connect(proxy_addr, target).await
                }
                .map_err(|e| unreachable(format!("through the proxy: {e}")))?;
                let stream = MaybeTlsStream::Plain(socks.into_inner());
                tokio_tungstenite::client_async(request, stream)
                    .await
                    .map_err(|e| unreachable(e.to_string()))?
            }
        };
        Ok(ws)
    }
}

/// One decoded frame: id, time, entry bytes.
pub type FrameRef<'a> = (u64, u64, &'a [u8]);

/// Decodes a page or push message into `(id, time, entry bytes)`, refusing frames longer than
/// `entry_len`.
pub fn decode_frames(body: &[u8], entry_len: usize) -> Result<Vec<FrameRef<'_>>, ClientError> {
    wire::frames(body, entry_len)
        .map(|f| {
            f.map(|f| (f.id, f.time_ms, f.entry))
                .map_err(|e| ClientError::Proto(e.to_string()))
        })
        .collect()
}
