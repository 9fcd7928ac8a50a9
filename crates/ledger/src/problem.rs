//! RFC 9457 problem documents: every error the API returns, each with a stable type.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use deaddrop_proto::wire::Problem;

/// An error response.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The stable reason, the last part of the type URI and the metrics label.
    pub reason: &'static str,
    /// Summary.
    pub title: &'static str,
    /// What was wrong and what to do.
    pub detail: String,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
    /// An upstream's problem, passed on as it is (mirrors).
    pub upstream: Option<Box<Problem>>,
}

impl ApiError {
    fn new(
        status: StatusCode,
        reason: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        ApiError {
            upstream: None,
            status,
            reason,
            title,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// 400: the body is not one entry of this ledger's size.
    pub fn entry_size(suite: &str, expected: usize, got: usize) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "entry-size",
            "Entry has the wrong size",
            format!("this ledger carries {suite} entries of exactly {expected} bytes; the body has {got} bytes"),
        )
    }

    /// 400: the proof of work is missing or too weak.
    pub fn pow(needed: u8) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "pow-insufficient",
            "Proof of work missing or too weak",
            format!("the entry's stamp does not meet the {needed} bits this ledger needs now; solve again at the difficulty in GET /v1/info"),
        )
    }

    /// 413: the body is larger than any entry.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Body too large",
            format!("a request body may be at most {limit} bytes: one entry"),
        )
    }

    /// 415: not `application/octet-stream`.
    pub fn media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send the entry's bytes with Content-Type: application/octet-stream",
        )
    }

    /// 400: a query parameter is wrong.
    pub fn bad_query(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-query", "Bad query", detail)
    }

    /// 400: a push request that is not a WebSocket upgrade.
    pub fn not_websocket() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "not-websocket",
            "WebSocket required",
            "GET /v1/stream is a WebSocket endpoint; connect with a WebSocket client",
        )
    }

    /// 404.
    pub fn not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "No such resource",
            format!("{path} does not exist; the API is /v1/info, /v1/entries, /v1/stream, /healthz and /metrics"),
        )
    }

    /// 405.
    pub fn method(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            format!("{method} is not allowed on {path}; see docs/API.md"),
        )
    }

    /// 503: too many requests or subscribers at once.
    pub fn overloaded(what: &str) -> Self {
        ApiError {
            retry_after: Some(1),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "Overloaded",
                format!("the ledger is serving the most {what} it allows; retry shortly"),
            )
        }
    }

    /// 503: the ledger holds `max_bytes` even at its shortest lifetime.
    pub fn full() -> Self {
        ApiError {
            retry_after: Some(30),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ledger-full",
                "Ledger full",
                "the ledger holds all the bytes it may at its shortest lifetime; retry once older entries expire",
            )
        }
    }

    /// 503: the store failed or is unreachable.
    pub fn store(detail: impl Into<String>) -> Self {
        ApiError {
            retry_after: Some(2),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store-unavailable",
                "Storage unavailable",
                detail,
            )
        }
    }

    /// 503: the request took longer than the ledger allows.
    pub fn timeout() -> Self {
        ApiError {
            retry_after: Some(1),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "Timed out",
                "the request took too long; retry",
            )
        }
    }

    /// The upstream's answer to a forwarded append, passed on unchanged.
    pub fn forwarded(p: Problem) -> Self {
        let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_GATEWAY);
        ApiError {
            retry_after: (status == StatusCode::SERVICE_UNAVAILABLE).then_some(1),
            upstream: Some(Box::new(p)),
            ..Self::new(status, "upstream", "Refused upstream", "")
        }
    }

    /// The problem document.
    pub fn problem(&self) -> Problem {
        if let Some(p) = &self.upstream {
            return (**p).clone();
        }
        Problem {
            kind: format!("urn:deaddrop:problem:{}", self.reason),
            title: self.title.to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut res = (self.status, body).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(s) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        res
    }
}
