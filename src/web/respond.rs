//! Responses every route uses: rendered pages, redirects, refusals, JSON, cookies, and the
//! security headers added to every answer (CSP without inline script, frame denial, …).

use askama::Template;
use warp::http::header::{self, HeaderValue};
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::session::Session;

/// Whether a refused request should get a page (redirect to the login) or a bare status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Page,
    Api,
}

/// A rendered page (500 with a plain sentence if the template fails).
pub fn page<T: Template>(template: &T) -> Response {
    match template.render() {
        Ok(html) => warp::reply::html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console: a page could not be rendered");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page could not be shown; see the log.",
            )
        }
    }
}

/// A page with a status other than 200.
pub fn page_with_status<T: Template>(template: &T, status: StatusCode) -> Response {
    let mut response = page(template);
    if response.status() == StatusCode::OK {
        *response.status_mut() = status;
    }
    response
}

/// Plain text.
pub fn text(status: StatusCode, body: &str) -> Response {
    let mut response = warp::reply::with_header(
        body.to_string(),
        header::CONTENT_TYPE,
        "text/plain; charset=utf-8",
    )
    .into_response();
    *response.status_mut() = status;
    response
}

/// JSON.
pub fn json<T: serde::Serialize>(value: &T) -> Response {
    warp::reply::json(value).into_response()
}

/// JSON with a status.
pub fn json_status<T: serde::Serialize>(value: &T, status: StatusCode) -> Response {
    let mut response = json(value);
    *response.status_mut() = status;
    response
}

/// 303 See Other to `location` (after a form, or to the login).
pub fn redirect(location: &str) -> Response {
    let mut response = warp::reply().into_response();
    *response.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// 401 for API clients without a session.
pub fn unauthorized() -> Response {
    json_status(
        &serde_json::json!({"error": "log in first (session cookie)"}),
        StatusCode::UNAUTHORIZED,
    )
}

/// 403: logged in, but the role does not allow it.
pub fn forbidden(session: &Session, audience: Audience) -> Response {
    let sentence = format!(
        "You are logged in as {} ({}); this needs an administrator.",
        session.user,
        session.role.name()
    );
    match audience {
        Audience::Api => json_status(
            &serde_json::json!({ "error": sentence }),
            StatusCode::FORBIDDEN,
        ),
        Audience::Page => text(StatusCode::FORBIDDEN, &sentence),
    }
}

/// 403 for a form without the right CSRF token.
pub fn csrf_refused() -> Response {
    text(
        StatusCode::FORBIDDEN,
        "The form was refused: its security token is missing or stale. Reload the page and try again.",
    )
}

/// Adds `Set-Cookie`.
pub fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The headers every response carries. `csp` is the page policy; `tls` adds HSTS.
pub fn secure(mut response: Response, csp: &HeaderValue, tls: bool) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, csp.clone());
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if tls {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// The Content-Security-Policy: scripts, styles and everything else from this origin only
/// (no inline script), map tiles from `tiles_origin`, no framing.
pub fn content_security_policy(tiles_origin: &str) -> HeaderValue {
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: {tiles_origin}; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    HeaderValue::from_str(&policy).unwrap_or_else(|_| {
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        )
    })
}
