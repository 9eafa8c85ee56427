//! Wire helpers shared by both surfaces: percent-decoding, form and query parsing, response
//! building, ids and timestamps in the formats Microsoft uses, and `@odata.nextLink` paging.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use warp::http::Response;

/// What every handler returns.
pub type Resp = Response<String>;

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`, as in form bodies).
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `application/x-www-form-urlencoded` pairs (form bodies and query strings), decoded.
pub fn form_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// The first value of `key` in decoded pairs.
pub fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

pub fn json_response(status: u16, body: &Value, headers: &[(&str, String)]) -> Resp {
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8");
    for (name, value) in headers {
        builder = builder.header(*name, value.as_str());
    }
    builder.body(body.to_string()).expect("response")
}

pub fn empty_response(status: u16) -> Resp {
    Response::builder()
        .status(status)
        .body(String::new())
        .expect("response")
}

/// A random version-4 GUID, as Microsoft uses for ids, trace and request ids.
pub fn guid() -> String {
    let mut b = [0u8; 16];
    openssl::rand::rand_bytes(&mut b).expect("random");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `n` random bytes as unpadded base64url: opaque tokens and codes.
pub fn opaque(n: usize) -> String {
    let mut b = vec![0u8; n];
    openssl::rand::rand_bytes(&mut b).expect("random");
    URL_SAFE_NO_PAD.encode(b)
}

/// `2026-11-29T10:15:23.4560000Z`: seven fractional digits, as Graph writes subscription
/// `expirationDateTime`.
pub fn graph_time(t: DateTime<Utc>) -> String {
    format!(
        "{}.{:07}Z",
        t.format("%Y-%m-%dT%H:%M:%S"),
        t.timestamp_subsec_nanos() / 100
    )
}

/// `2025-03-04T10:15:00.0000000+00:00`: `subscriptionExpirationDateTime` in notifications (H.1).
pub fn notification_time(t: DateTime<Utc>) -> String {
    format!(
        "{}.{:07}+00:00",
        t.format("%Y-%m-%dT%H:%M:%S"),
        t.timestamp_subsec_nanos() / 100
    )
}

/// `2026-11-29T10:15:23.456Z`: chat and message timestamps (H.7).
pub fn message_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// One page of `items` as an OData collection. `skip_token` is the opaque `$skiptoken` of the
/// request (if any); `next_base` is the absolute URL of the request without it, to which the
/// next page's token is appended as `@odata.nextLink`.
pub fn page(
    context: &str,
    items: Vec<Value>,
    skip_token: Option<&str>,
    size: usize,
    next_base: &str,
) -> Result<Value, String> {
    let skip = match skip_token {
        None => 0,
        Some(t) => URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("skip:").and_then(|n| n.parse().ok()))
            .ok_or_else(|| format!("Invalid $skiptoken '{t}'."))?,
    };
    let size = size.max(1);
    let total = items.len();
    let value: Vec<Value> = items.into_iter().skip(skip).take(size).collect();
    let mut body = json!({"@odata.context": context, "value": value});
    if skip + size < total {
        let sep = if next_base.contains('?') { '&' } else { '?' };
        let token = URL_SAFE_NO_PAD.encode(format!("skip:{}", skip + size));
        body["@odata.nextLink"] = json!(format!("{next_base}{sep}$skiptoken={token}"));
    }
    Ok(body)
}

/// The raw (still encoded) query string without `$skiptoken`, for building the next link.
pub fn query_without_skiptoken(raw_query: &str) -> String {
    raw_query
        .split('&')
        .filter(|p| {
            !p.is_empty() && !p.starts_with("$skiptoken=") && !p.starts_with("%24skiptoken=")
        })
        .collect::<Vec<_>>()
        .join("&")
}
