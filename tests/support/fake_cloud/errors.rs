//! Error bodies of the two surfaces.
//!
//! Graph (graph-teams.md B.5, D.3): `{"error": {"code", "message", "innerError": {"date",
//! "request-id", "client-request-id"}}}`.
//! Identity platform (A.3, A.6; I5): `{"error", "error_description": "AADSTSnnn: text\r\nTrace
//! ID: …\r\nCorrelation ID: …\r\nTimestamp: …", "error_codes": [nnn], "timestamp", "trace_id",
//! "correlation_id", "error_uri"}`. Microsoft says to act on `error` and use `error_codes`
//! only for diagnostics (A.6), so the texts here are close to, not guaranteed equal to, Entra's.

use chrono::Utc;
use serde_json::json;

use super::web::{guid, json_response, Resp};
use super::GraphRequest;

/// A Graph error response. `client_request_id` is echoed from the request header when sent.
pub fn graph(status: u16, code: &str, message: &str, client_request_id: Option<&str>) -> Resp {
    graph_with_headers(status, code, message, client_request_id, &[])
}

pub fn graph_with_headers(
    status: u16,
    code: &str,
    message: &str,
    client_request_id: Option<&str>,
    headers: &[(&str, String)],
) -> Resp {
    let request_id = guid();
    let client_request_id = client_request_id.map_or_else(|| request_id.clone(), str::to_string);
    let body = json!({"error": {
        "code": code,
        "message": message,
        "innerError": {
            "date": Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
            "request-id": request_id,
            "client-request-id": client_request_id,
        }
    }});
    json_response(status, &body, headers)
}

/// An identity-platform error. `aadsts` is `None` for the RFC 8628 errors graph-teams.md lists
/// without an AADSTS code (`slow_down`, `authorization_declined`): then `error_codes` is empty
/// and the description carries no code [UNK: Entra's exact body for these is not documented].
pub fn identity(status: u16, error: &str, aadsts: Option<u32>, text: &str) -> Resp {
    let trace_id = guid();
    let correlation_id = guid();
    let timestamp = Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    let prefix = aadsts.map(|c| format!("AADSTS{c}: ")).unwrap_or_default();
    let mut body = json!({
        "error": error,
        "error_description": format!(
            "{prefix}{text}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}"
        ),
        "error_codes": aadsts.into_iter().collect::<Vec<_>>(),
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
    });
    if let Some(code) = aadsts {
        body["error_uri"] = json!(format!(
            "https://login.microsoftonline.com/error?code={code}"
        ));
    }
    json_response(status, &body, &[])
}

/// A Graph error not yet answered; small, so validation code can return it in a `Result`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl GraphError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> GraphError {
        GraphError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn respond(&self, req: &GraphRequest) -> Resp {
        graph(
            self.status,
            self.code,
            &self.message,
            req.client_request_id(),
        )
    }
}
