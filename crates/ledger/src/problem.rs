//! The server's side of RFC 9457 problem documents: [`ApiError`], one constructor per
//! [`ProblemKind`] with the detail that tells the client what to do, rendered as a response.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use deaddrop_api::header::PROBLEM_MEDIA_TYPE;
use deaddrop_api::{path, Problem, ProblemKind};

/// An error response.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The reason.
    pub kind: ProblemKind,
    /// What was wrong and what to do.
    pub detail: String,
    /// An upstream's problem, passed on as it is (mirrors).
    pub upstream: Option<Box<Problem>>,
}

impl ApiError {
    fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        ApiError {
            kind,
            detail: detail.into(),
            upstream: None,
        }
    }

    /// The metric label of this refusal: the reason, or `upstream` for a forwarded one.
    pub fn label(&self) -> &'static str {
        if self.upstream.is_some() {
            return "upstream";
        }
        self.kind.known_reason().unwrap_or("other")
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        let code = match &self.upstream {
            Some(p) => p.status,
            None => self.kind.status(),
        };
        StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY)
    }

    /// 400: the body is not one entry of this ledger's size.
    pub fn entry_size(suite: &str, expected: usize, got: usize) -> Self {
        Self::new(
            ProblemKind::EntrySize,
            format!("this ledger carries {suite} entries of exactly {expected} bytes; the body has {got} bytes"),
        )
    }

    /// 400: the proof of work is missing or too weak.
    pub fn pow(needed: u8) -> Self {
        Self::new(
            ProblemKind::PowInsufficient,
            format!("the entry's stamp does not meet the {needed} bits this ledger needs now; solve again at the difficulty in GET {}", path::INFO),
        )
    }

    /// 413: the body is larger than any entry.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            ProblemKind::BodyTooLarge,
            format!("a request body may be at most {limit} bytes: one entry"),
        )
    }

    /// 415: not `application/octet-stream`.
    pub fn media_type() -> Self {
        Self::new(
            ProblemKind::UnsupportedMediaType,
            "send the entry's bytes with Content-Type: application/octet-stream",
        )
    }

    /// 400: a query parameter is wrong.
    pub fn bad_query(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::BadQuery, detail)
    }

    /// 400: a push request that is not a WebSocket upgrade.
    pub fn not_websocket() -> Self {
        Self::new(
            ProblemKind::NotWebsocket,
            format!(
                "GET {} is a WebSocket endpoint; connect with a WebSocket client",
                path::STREAM
            ),
        )
    }

    /// 404.
    pub fn not_found(p: &str) -> Self {
        Self::new(
            ProblemKind::NotFound,
            format!("{p} does not exist; the API is {}", path::ALL.join(", ")),
        )
    }

    /// 405.
    pub fn method(method: &str, path: &str) -> Self {
        Self::new(
            ProblemKind::MethodNotAllowed,
            format!("{method} is not allowed on {path}; see docs/API.md"),
        )
    }

    /// 503: too many requests or subscribers at once.
    pub fn overloaded(what: &str) -> Self {
        Self::new(
            ProblemKind::Overloaded,
            format!("the ledger is serving the most {what} it allows; retry shortly"),
        )
    }

    /// 503: the ledger holds `max_bytes`.
    pub fn full() -> Self {
        Self::new(
            ProblemKind::LedgerFull,
            "the ledger holds all the bytes it may; retry once older entries expire (the lifetime shortens under load, down to its minimum)",
        )
    }

    /// 503: the store failed or is unreachable.
    pub fn store(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::StoreUnavailable, detail)
    }

    /// 503: the request took longer than the ledger allows.
    pub fn timeout() -> Self {
        Self::new(ProblemKind::Timeout, "the request took too long; retry")
    }

    /// The upstream's answer to a forwarded append, passed on unchanged.
    pub fn forwarded(p: Problem) -> Self {
        ApiError {
            kind: p.kind.clone(),
            detail: p.detail.clone(),
            upstream: Some(Box::new(p)),
        }
    }

    /// Seconds for a `Retry-After` header.
    pub fn retry_after(&self) -> Option<u64> {
        match &self.upstream {
            Some(_) => (self.status() == StatusCode::SERVICE_UNAVAILABLE).then_some(1),
            None => self.kind.retry_after(),
        }
    }

    /// The problem document.
    pub fn problem(&self) -> Problem {
        if let Some(p) = &self.upstream {
            return (**p).clone();
        }
        Problem::new(self.kind.clone(), self.detail.clone())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut res = (self.status(), body).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_MEDIA_TYPE),
        );
        if let Some(s) = self.retry_after() {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        res
    }
}
