//! The HTTP API (`docs/API.md`): routes, query parsing, framing, the push stream, and limits.
//! Nothing here reads the peer's address: handlers have no access to it, and nothing is logged
//! per request.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use deaddrop_api::header::{ENTRY_MEDIA_TYPE, POW_BITS};
use deaddrop_api::{
    path, EntryId, Frame, PageMeta, StreamHello, CLOSE_LAGGED, ENTRIES_MEDIA_TYPE, FRAME_HEADER_LEN,
};
use tokio::sync::{broadcast, Semaphore};

use crate::ledger::Ledger;
use crate::problem::ApiError;

/// The router for `ledger`.
pub fn router(ledger: Arc<Ledger>) -> Router {
    let inflight = Arc::new(Semaphore::new(ledger.config().max_inflight));
    Router::new()
        .route(path::INFO, get(info))
        .route(path::ENTRIES, get(read).post(append))
        .route(path::STREAM, get(stream))
        .route(path::HEALTHZ, get(healthz))
        .route(path::READYZ, get(readyz))
        .route(path::METRICS, get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            (ledger.clone(), inflight),
            limit,
        ))
        .with_state(ledger)
}

/// Refuses requests beyond `max_inflight` with 503 and bounds each request's time.
async fn limit(
    State((ledger, inflight)): State<(Arc<Ledger>, Arc<Semaphore>)>,
    req: Request,
    next: Next,
) -> Response {
    let Ok(_permit) = inflight.try_acquire() else {
        let e = ApiError::overloaded("requests");
        ledger.count_rejection(&e);
        return e.into_response();
    };
    let is_stream = req.uri().path() == path::STREAM;
    if is_stream {
        // The upgrade response returns at once; the stream itself is bounded by the
        // subscriber limit, not by the request timeout.
        return next.run(req).await;
    }
    match tokio::time::timeout(ledger.config().request_timeout, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            let e = ApiError::timeout();
            ledger.count_rejection(&e);
            e.into_response()
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// `200 ready` while appends can succeed, `503 store-unavailable` while they cannot.
async fn readyz(State(ledger): State<Arc<Ledger>>) -> Response {
    match ledger.ready() {
        Ok(()) => "ready\n".into_response(),
        Err(why) => ApiError::store(why).into_response(),
    }
}

async fn metrics(State(ledger): State<Arc<Ledger>>) -> Response {
    let mut res = ledger.metrics.render().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    res
}

async fn info(State(ledger): State<Arc<Ledger>>) -> Response {
    let mut res = Json(ledger.info()).into_response();
    res.headers_mut()
        .insert(POW_BITS, HeaderValue::from(u16::from(ledger.pow_bits())));
    res
}

async fn not_found(State(ledger): State<Arc<Ledger>>, uri: Uri) -> ApiError {
    let e = ApiError::not_found(uri.path());
    ledger.count_rejection(&e);
    e
}

async fn method_not_allowed(
    State(ledger): State<Arc<Ledger>>,
    method: Method,
    uri: Uri,
) -> ApiError {
    let e = ApiError::method(method.as_str(), uri.path());
    ledger.count_rejection(&e);
    e
}

async fn append(
    State(ledger): State<Arc<Ledger>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ctype.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case(ENTRY_MEDIA_TYPE) {
        let e = ApiError::media_type();
        ledger.count_rejection(&e);
        return Err(e);
    }
    let limit = ledger.config().suite.layout().entry_len;
    let Ok(bytes) = to_bytes(body, limit).await else {
        let e = ApiError::too_large(limit);
        ledger.count_rejection(&e);
        // The rest of the body stays unread and the connection ends after this response: say
        // so, or a keep-alive client sends its next request into a closed connection.
        let mut res = e.into_response();
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Ok(res);
    };
    let accepted = ledger.append(bytes).await?;
    // A repeat of bytes the ledger holds is answered with their id, and nothing is created.
    let status = if accepted.repeat {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut res = (status, Json(accepted)).into_response();
    res.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&path::location(accepted.id))
            .unwrap_or(HeaderValue::from_static(path::ENTRIES)),
    );
    Ok(res)
}

/// Reads an optional unsigned integer parameter, with messages that say what is allowed.
fn param(q: &HashMap<String, String>, name: &str) -> Result<Option<u64>, ApiError> {
    match q.get(name) {
        None => Ok(None),
        Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
            ApiError::bad_query(format!(
                "`{name}` must be a whole number from 0 to {}; got `{}`",
                u64::MAX,
                v.chars().take(40).collect::<String>()
            ))
        }),
    }
}

async fn read(
    State(ledger): State<Arc<Ledger>>,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query.map(|Query(q)| q).map_err(|e| {
        let e = ApiError::bad_query(format!("the query string cannot be read: {e}"));
        ledger.count_rejection(&e);
        e
    })?;
    let parsed = (|| {
        let after = EntryId(param(&q, "after")?.unwrap_or(0));
        let max = ledger.config().max_page;
        let limit = match param(&q, "limit")? {
            None => ledger.config().default_page,
            Some(0) => {
                return Err(ApiError::bad_query(format!(
                    "`limit` must be from 1 to {max}"
                )))
            }
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX).min(max),
        };
        Ok((after, limit))
    })();
    let (after, limit) = parsed.inspect_err(|e| ledger.count_rejection(e))?;
    let entry_len = ledger.config().suite.layout().entry_len;
    // Every page body in memory counts against one budget, held until the body is sent or the
    // connection is gone: readers that never read cannot hold more than the budget between
    // them, and the next reader waits (within the request time) instead.
    let budget = ledger.read_budget();
    let want = budget_units(limit * (FRAME_HEADER_LEN + entry_len), READ_BUDGET);
    let permit = budget
        .acquire_many_owned(want)
        .await
        .map_err(|_| ApiError::overloaded("reads"))?;
    let page = ledger.read(after, limit).await?;
    let mut body = Vec::with_capacity(page.records.len() * (FRAME_HEADER_LEN + entry_len));
    for r in &page.records {
        Frame {
            id: r.id,
            time_ms: r.time_ms,
            entry: &r.entry,
        }
        .encode(&mut body);
    }
    let gap = page.gap;
    let meta = PageMeta {
        next_after: page
            .records
            .last()
            .map_or(after, |r| r.id)
            .max(gap.map_or(EntryId::START, |g| g.last())),
        oldest: page.oldest,
        newest: page.newest,
        gap,
        pow_bits: Some(ledger.pow_bits()),
    };
    let mut res = Body::new(Budgeted::new(body, permit)).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(ENTRIES_MEDIA_TYPE),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    meta.write_headers(h);
    Ok(res)
}

async fn stream(
    State(ledger): State<Arc<Ledger>>,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let count = |e: ApiError| {
        ledger.count_rejection(&e);
        e
    };
    let q = query.map(|Query(q)| q).map_err(|e| {
        count(ApiError::bad_query(format!(
            "the query string cannot be read: {e}"
        )))
    })?;
    let after = EntryId(param(&q, "after").map_err(count)?.unwrap_or(0));
    let ws = ws.map_err(|_| count(ApiError::not_websocket()))?;
    let slot = ledger
        .subscriber_slot()
        .ok_or_else(|| count(ApiError::overloaded("push subscribers")))?;
    let l = ledger.clone();
    Ok(ws
        .max_message_size(64 * 1024)
        // Subscribers send nothing but a close (or a ping). Each delivery polls the socket for
        // them, and tungstenite zero-fills its whole read buffer before every read attempt: at
        // the default 128 KiB that memset was a quarter of the ledger's CPU with 500
        // subscribers. Larger messages still arrive, in several reads.
        .read_buffer_size(SUBSCRIBER_READ_BUFFER)
        .on_upgrade(move |socket| async move {
            l.metrics.subscribers.inc();
            subscriber(l.clone(), socket, after).await;
            l.metrics.subscribers.dec();
            drop(slot);
        }))
}

/// Serves one push subscriber: a hello, the backlog after `after`, then live entries. A
/// subscriber that falls more than `subscriber_buffer` entries behind is closed with
/// [`CLOSE_LAGGED`] and resumes by reading.
async fn subscriber(ledger: Arc<Ledger>, mut socket: WebSocket, after: EntryId) {
    let tx = &mut socket;
    let mut live = ledger.subscribe_frames();
    let mut stop = ledger.shutdown_signal();
    let mut cursor = after;

    // Backlog: everything already stored after `after`, page by page.
    let mut first = true;
    loop {
        // Small pages: a subscriber that stops reading holds one page, not `max_page` entries.
        let page = match ledger.read(cursor, BACKLOG_PAGE).await {
            Ok(p) => p,
            Err(_) => return,
        };
        if first {
            let hello = StreamHello::new(page.oldest, page.newest, page.gap);
            let text = serde_json::to_string(&hello).unwrap_or_default();
            if !deliver(tx, Message::Text(text.into())).await {
                return;
            }
            if let Some(g) = page.gap {
                cursor = cursor.max(g.last());
            }
            first = false;
        }
        if page.records.is_empty() {
            break;
        }
        for r in &page.records {
            if !deliver(tx, frame_message(r)).await {
                return;
            }
            ledger.metrics.pushed.inc();
            cursor = r.id;
        }
    }

    loop {
        tokio::select! {
            got = live.recv() => match got {
                Ok(r) if r.id <= cursor => {}
                Ok(r) => {
                    // Concurrent appends reach the feed in the order their tasks resume, not
                    // in id order. Everything below `r.id` is readable once `r` is in the
                    // feed, so a hole is filled from the store; the late records are then
                    // skipped above, and the stream stays complete and in order.
                    while cursor + 1 < r.id {
                        let missing = usize::try_from(r.id.get() - cursor.get() - 1)
                            .unwrap_or(usize::MAX)
                            .min(ledger.config().max_page);
                        let Ok(records) = ledger.store().read(cursor, missing).await else {
                            return;
                        };
                        let before = cursor;
                        for m in records.iter().filter(|m| m.id < r.id) {
                            if !deliver(tx, frame_message(m)).await {
                                return;
                            }
                            ledger.metrics.pushed.inc();
                            cursor = m.id;
                        }
                        if cursor == before {
                            break; // expired meanwhile: nothing more to fill
                        }
                    }
                    if !deliver(tx, Message::Binary(r.frame.clone())).await {
                        return;
                    }
                    ledger.metrics.push_delay_seconds.observe(r.at.elapsed().as_secs_f64());
                    ledger.metrics.pushed.inc();
                    cursor = r.id;
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    ledger.metrics.lagged.inc();
                    let reason = format!("lagged: read {} and reconnect", path::read(cursor, ledger.config().max_page));
                    let _ = deliver(tx, Message::Close(Some(CloseFrame { code: CLOSE_LAGGED, reason: reason.into() }))).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            incoming = tx.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            _ = stop.changed() => {
                let _ = deliver(tx, Message::Close(Some(CloseFrame { code: 1001, reason: "the ledger is shutting down".into() }))).await;
                return;
            }
        }
    }
}

fn frame_message(r: &crate::store::Record) -> Message {
    Message::Binary(crate::ledger::encode_frame(r))
}

/// Sends `msg`; false once the subscriber is gone. A subscriber that takes nothing is cut off
/// by its connection's write-stall deadline (`listen::Limits::write_stall`), which fails the
/// send: no timer per message.
async fn deliver(tx: &mut WebSocket, msg: Message) -> bool {
    tx.send(msg).await.is_ok()
}

/// The read buffer of a push subscriber's connection.
const SUBSCRIBER_READ_BUFFER: usize = 4096;

/// Entries per backlog page of a push subscriber: what one stalled subscriber can hold.
const BACKLOG_PAGE: usize = 64;

/// The most page-body bytes all readers may hold in memory at once.
pub const READ_BUDGET: usize = 64 << 20;

/// The budget is counted in KiB: a semaphore holds at most `u32::MAX` permits.
pub const BUDGET_UNIT: usize = 1024;

/// The permits for `bytes`, never more than the whole budget (a page larger than the budget
/// waits until it is alone).
fn budget_units(bytes: usize, budget: usize) -> u32 {
    u32::try_from(bytes.min(budget).div_ceil(BUDGET_UNIT)).unwrap_or(u32::MAX)
}

/// A read's body, sent in chunks so that it leaves memory only as the client takes it; its
/// share of the read budget is returned when it is dropped (sent, or the connection gone).
struct Budgeted {
    data: bytes::Bytes,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Budgeted {
    /// What hyper takes per frame; it asks for the next only once it has room.
    const CHUNK: usize = 64 << 10;

    fn new(data: Vec<u8>, permit: tokio::sync::OwnedSemaphorePermit) -> Budgeted {
        Budgeted {
            data: data.into(),
            _permit: permit,
        }
    }
}

impl http_body::Body for Budgeted {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        if self.data.is_empty() {
            return std::task::Poll::Ready(None);
        }
        let n = self.data.len().min(Self::CHUNK);
        let chunk = self.data.split_to(n);
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.data.len() as u64)
    }
}
