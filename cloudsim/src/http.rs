//! Small HTTP helpers shared by the Entra, ARM, Key Vault and admin handlers: JSON responses,
//! query-string parsing, GUIDs and clock access.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use serde_json::Value;

/// Content type Azure services use for JSON bodies.
pub const JSON_UTF8: &str = "application/json; charset=utf-8";

/// The response type every handler returns.
pub type Resp = Response<Body>;

/// Current Unix time in seconds.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Now as `2024-01-31T12:00:00.1234567Z` (seven fractional digits, as ARM writes them; chrono
/// has no `%.7f`).
pub fn timestamp_7() -> String {
    let t = chrono::Utc::now();
    format!("{}.{:07}Z", t.format("%Y-%m-%dT%H:%M:%S"), t.timestamp_subsec_nanos() / 100)
}

/// A fresh random GUID in the lowercase hyphenated form Azure uses.
pub fn guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Builds a JSON response with the given status and body.
pub fn json(status: StatusCode, body: &Value) -> Resp {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    resp.headers_mut().insert("content-type", HeaderValue::from_static(JSON_UTF8));
    resp
}

/// Sets (or replaces) a header on a response, ignoring values that are not valid header text.
pub fn set_header(resp: &mut Resp, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(HeaderName::from_static(name), v);
    }
}

/// Parses a query string (without the `?`) into a map; later duplicates win.
pub fn parse_query(query: Option<&str>) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Extracts the bearer token from an `Authorization` header, if present.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = raw.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") { Some(token.trim().to_string()) } else { None }
}

/// Splits a request path into its non-empty segments (a trailing slash is ignored).
pub fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_else(|| s.to_string())
        })
        .collect()
}

/// Formats `host:port` for URLs, bracketing IPv6 addresses.
pub fn host_port(addr: std::net::SocketAddr) -> String {
    match addr.ip() {
        std::net::IpAddr::V4(ip) => format!("{ip}:{}", addr.port()),
        std::net::IpAddr::V6(ip) => format!("[{ip}]:{}", addr.port()),
    }
}
