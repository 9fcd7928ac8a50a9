//! A small client for the ledger's HTTP API (`docs/API.md`) that checks what it gets: appends,
//! paged reads with their headers, info, metrics, the push stream, and refusals as problem
//! documents. Tests of bad input send raw requests through [`Api::http`].

use deaddrop_api::header::{
    GAP as HEADER_GAP, NEWEST as HEADER_NEWEST, NEXT_AFTER as HEADER_NEXT_AFTER,
    OLDEST as HEADER_OLDEST,
};
use deaddrop_api::{
    frames, path, Accepted, EntryId, Info, Problem, StreamHello, ENTRIES_MEDIA_TYPE,
};
use deaddrop_proto::rng::SystemRng;
use deaddrop_proto::Suite;
use futures_util::StreamExt;
use rand_core::RngCore;
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::StatusCode;
use tokio_tungstenite::tungstenite::Message;

use crate::WAIT;

/// The length of an entry on the xwing ledgers the tests run.
pub fn entry_len() -> usize {
    Suite::XWing.layout().entry_len
}

/// Deterministic, distinct entry bytes for `tag`: with proof of work off, any bytes of the
/// right length are an entry.
pub fn entry(tag: u64) -> Vec<u8> {
    let mut state = tag ^ 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(entry_len() + 8);
    while out.len() < entry_len() {
        // SplitMix64: enough to make every tag's bytes differ everywhere.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_be_bytes());
    }
    out.truncate(entry_len());
    out
}

/// `n` random entries of `len` bytes: entries no one can open, just like someone else's.
pub fn random_entries(n: usize, len: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|_| {
            let mut e = vec![0u8; len];
            SystemRng.fill_bytes(&mut e);
            e
        })
        .collect()
}

/// One random xwing entry.
pub fn random_entry() -> Vec<u8> {
    random_entries(1, entry_len()).remove(0)
}

/// One entry as read or pushed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rec {
    /// Its id.
    pub id: u64,
    /// Its time, ms since the Unix epoch.
    pub time_ms: u64,
    /// Its bytes.
    pub entry: Vec<u8>,
}

/// Parses frames of xwing entries, panicking on a malformed one.
pub fn parse_frames(data: &[u8]) -> Vec<Rec> {
    frames(data, entry_len())
        .map(|f| {
            let f = f.expect("well-formed frames");
            Rec {
                id: f.id.get(),
                time_ms: f.time_ms,
                entry: f.entry.to_vec(),
            }
        })
        .collect()
}

/// One response to a read.
#[derive(Debug)]
pub struct Page {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// The raw body.
    pub body: Vec<u8>,
    /// The entries in it (none unless the status is 200).
    pub records: Vec<Rec>,
}

impl Page {
    fn number(&self, name: &str) -> Option<u64> {
        self.headers.get(name).map(|v| {
            v.to_str()
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name}: {v:?} is not a number"))
        })
    }

    /// `deaddrop-next-after`, which every read carries.
    pub fn next_after(&self) -> u64 {
        self.number(HEADER_NEXT_AFTER)
            .expect("every read names the next `after`")
    }

    /// `deaddrop-oldest-id`.
    pub fn oldest(&self) -> Option<u64> {
        self.number(HEADER_OLDEST)
    }

    /// `deaddrop-newest-id`.
    pub fn newest(&self) -> Option<u64> {
        self.number(HEADER_NEWEST)
    }

    /// `deaddrop-gap` as `(first, last)`; panics unless it is written exactly `FIRST-LAST`.
    pub fn gap(&self) -> Option<(u64, u64)> {
        let v = self
            .headers
            .get(HEADER_GAP)?
            .to_str()
            .expect("an ASCII gap");
        let parsed = v
            .split_once('-')
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
        match parsed {
            Some((a, b)) if format!("{a}-{b}") == v => Some((a, b)),
            _ => panic!("{HEADER_GAP}: {v:?} is not FIRST-LAST"),
        }
    }

    /// The ids returned, in order.
    pub fn ids(&self) -> Vec<u64> {
        self.records.iter().map(|r| r.id).collect()
    }
}

/// A client for the API of the ledger at one base URL: no proxy, 60 s at most per request.
#[derive(Clone, Debug)]
pub struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    /// A client for the ledger at `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: &str) -> Api {
        Api {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(std::time::Duration::from_secs(60))
                .build()
                .expect("an HTTP client"),
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The HTTP client, for requests the helpers do not cover (bad input, other headers).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `BASE<path>`, e.g. `endpoint(path::INFO)`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `BASE<path>` with `ws://` for `http://`, e.g. `ws_url(&path::stream(EntryId(0)))`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{path}", self.base.replacen("http://", "ws://", 1))
    }

    /// An append of `body` as `application/octet-stream`, whatever the answer.
    pub async fn post_entry(&self, body: &[u8]) -> reqwest::Result<reqwest::Response> {
        self.http
            .post(self.endpoint(path::ENTRIES))
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(body.to_vec())
            .send()
            .await
    }

    /// Appends `body` and expects `201 Created` with an `Accepted` document.
    pub async fn append(&self, body: &[u8]) -> Accepted {
        let (status, a) = self.append_answer(body).await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "POST {} answered {status} (a repeat), where a new entry was expected: {a:?}",
            self.endpoint(path::ENTRIES)
        );
        a
    }

    /// Appends `body` and returns the status (`201` new, `200` a repeat) with the `Accepted`
    /// document; any other answer fails the test.
    pub async fn append_answer(&self, body: &[u8]) -> (StatusCode, Accepted) {
        let url = self.endpoint(path::ENTRIES);
        let res = self
            .post_entry(body)
            .await
            .unwrap_or_else(|e| panic!("POST {url} failed: {e}"));
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        assert!(
            status == StatusCode::CREATED || status == StatusCode::OK,
            "POST {url} answered {status}: {text}"
        );
        let a = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{status} body {text:?} is not Accepted: {e}"));
        (status, a)
    }

    /// A read with `query` (raw, `?` included, so tests can send nonsense),
    /// whatever the status; a 200 must carry well-formed frames of the entries' media type.
    pub async fn read_query(&self, query: &str) -> Page {
        let url = self.endpoint(&format!("{}{query}", path::ENTRIES));
        let res = self
            .http
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url} failed: {e}"));
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.bytes().await.expect("a read body").to_vec();
        let mut records = Vec::new();
        if status == StatusCode::OK {
            assert_eq!(
                headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()),
                Some(ENTRIES_MEDIA_TYPE),
                "GET {url}"
            );
            records = parse_frames(&body);
        }
        Page {
            status,
            headers,
            body,
            records,
        }
    }

    /// A read with `query`, which must answer 200.
    pub async fn read_page(&self, query: &str) -> Page {
        let page = self.read_query(query).await;
        assert_eq!(
            page.status,
            StatusCode::OK,
            "GET {}: {}",
            self.endpoint(&format!("{}{query}", path::ENTRIES)),
            String::from_utf8_lossy(&page.body)
        );
        page
    }

    /// A read of `limit` entries after `after`, which must answer 200.
    pub async fn read(&self, after: u64, limit: usize) -> Page {
        self.read_page(&format!("?after={after}&limit={limit}"))
            .await
    }

    /// [`Api::read_all`] as id → entry bytes.
    pub async fn read_all_by_id(&self) -> std::collections::BTreeMap<u64, Vec<u8>> {
        self.read_all()
            .await
            .into_iter()
            .map(|r| (r.id, r.entry))
            .collect()
    }

    /// Every entry held, read page by page as a client would (past gaps too); ids must
    /// strictly increase.
    pub async fn read_all(&self) -> Vec<Rec> {
        let mut all: Vec<Rec> = Vec::new();
        let mut after = 0;
        loop {
            let page = self.read(after, 1024).await;
            if page.records.is_empty() && page.next_after() <= after {
                return all;
            }
            let next = page.next_after();
            for r in page.records {
                let last = all.last().map_or(after, |l| l.id);
                assert!(r.id > last, "ids increase: {} after {last}", r.id);
                all.push(r);
            }
            after = next;
        }
    }

    /// The ledger's info, which must answer 200 with an `Info` document.
    pub async fn info(&self) -> Info {
        let url = self.endpoint(path::INFO);
        let res = self
            .http
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url} failed: {e}"));
        assert_eq!(res.status(), StatusCode::OK, "GET {url}");
        res.json()
            .await
            .unwrap_or_else(|e| panic!("GET {url} is not Info: {e}"))
    }

    /// `GET /metrics`, as text.
    pub async fn metrics(&self) -> String {
        let url = self.endpoint("/metrics");
        let res = self
            .http
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url} failed: {e}"));
        assert_eq!(res.status(), StatusCode::OK, "GET {url}");
        res.text().await.expect("a metrics body")
    }

    /// The value of one sample in `/metrics`, e.g. `deaddrop_appends_total` or
    /// `deaddrop_rejections_total{reason="entry-size"}`.
    pub async fn metric(&self, sample: &str) -> Option<f64> {
        metric_value(&self.metrics().await, sample)
    }

    /// A subscriber of the push stream after `after`, its hello read.
    pub async fn subscribe(&self, after: u64) -> Subscriber {
        Subscriber::connect(&self.base, after).await
    }
}

/// The value of `sample` (name and labels exactly as exported) in a metrics text.
pub fn metric_value(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .filter_map(|l| l.strip_prefix(sample))
        .filter_map(|rest| rest.strip_prefix(' '))
        .find_map(|v| v.split_whitespace().next()?.parse().ok())
}

/// A refusal, as [`expect_problem`] checked it.
#[derive(Debug)]
pub struct Refusal {
    /// The problem document.
    pub problem: Problem,
    /// The response's headers (`Retry-After`...).
    pub headers: HeaderMap,
}

/// Reads an error response and checks it is a problem document (`application/problem+json`)
/// with status `status`, type `urn:deaddrop:problem:KIND`, and a title and detail.
pub async fn expect_problem(res: reqwest::Response, status: u16, kind: &str) -> Refusal {
    let headers = res.headers().clone();
    let got = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    assert_eq!(got, status, "expected {status} {kind}, got {got}: {text}");
    assert_eq!(
        headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "{kind}: an error is a problem document: {text}"
    );
    let problem: Problem = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{text:?} is not a problem document: {e}"));
    assert_eq!(
        problem.kind.uri(),
        format!("urn:deaddrop:problem:{kind}"),
        "{text}"
    );
    assert_eq!(problem.status, status, "{text}");
    assert!(
        !problem.detail.is_empty() && !problem.title.is_empty(),
        "{text}"
    );
    Refusal { problem, headers }
}

/// A WebSocket subscriber of the push stream.
pub struct Subscriber {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    /// The hello message.
    pub hello: StreamHello,
}

impl Subscriber {
    /// Connects to the push stream after `after` (`base` as `http://...`) and reads the hello,
    /// which must come first.
    pub async fn connect(base: &str, after: u64) -> Subscriber {
        let ws_url = format!(
            "{}{}",
            base.replacen("http://", "ws://", 1),
            path::stream(EntryId(after))
        );
        let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
            .await
            .unwrap_or_else(|e| panic!("connecting to {ws_url}: {e}"));
        Subscriber::on(ws).await
    }

    /// Reads the hello on a WebSocket opened by the test (on a socket of its own).
    pub async fn on(
        mut ws: tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
    ) -> Subscriber {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a hello within the wait")
            .expect("the stream open")
            .expect("a message");
        let Message::Text(t) = msg else {
            panic!("expected the hello text message, got {msg:?}");
        };
        let hello = serde_json::from_str::<StreamHello>(t.as_str())
            .unwrap_or_else(|e| panic!("{t:?} is not a hello: {e}"));
        assert_eq!(hello.kind, "hello");
        Subscriber { ws, hello }
    }

    /// The next pushed entry, within [`WAIT`]: one frame in one binary message. Pings are
    /// skipped; anything else fails the test.
    pub async fn next(&mut self) -> Rec {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a pushed entry within the wait")
                .expect("the stream still open")
                .expect("a message");
            match msg {
                Message::Binary(data) => {
                    let mut recs = parse_frames(&data);
                    assert_eq!(recs.len(), 1, "one frame per push message");
                    return recs.remove(0);
                }
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("expected a pushed entry, got {other:?}"),
            }
        }
    }

    /// Closes the connection cleanly.
    pub async fn close(mut self) {
        self.ws.close(None).await.expect("closing the push stream");
    }
}
