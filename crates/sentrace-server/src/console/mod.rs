//! The web console, served at `/` on the query port.
//!
//! - `GET /`: the shell page with a live session, else a redirect to the login page;
//! - `GET /console/login`, `POST /console/login`: a token form; the token is checked by
//!   the server's [`crate::auth::Authenticator`] exactly like a bearer request, then a
//!   session cookie is set ([`session`]);
//! - `POST /console/logout`: ends the session (needs the CSRF token);
//! - `GET /console/session`: `{tenant, principal, role, csrf}` for the JavaScript;
//! - `GET /console/a/<version>/<path>`: the embedded files ([`assets`]).
//!
//! The pages call the same JSON APIs as any client; the [`crate::app::Reader`] extractor
//! accepts the session cookie in place of the bearer header ([`session_bearer`]). The
//! console adds no authority of its own: what a page shows is what the query service's
//! policies let the session's credential read. Every console response carries a strict
//! Content-Security-Policy (no inline script or style) and anti-framing headers.

pub mod assets;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sentrace_core::Identity;

use crate::app::AppState;
use crate::auth::{Connection, Credentials};
pub use session::{ConsoleConfig, SessionError, Sessions};

/// The Content-Security-Policy of every console response.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// Largest login form body read.
const MAX_LOGIN_BODY: usize = 16 * 1024;

/// The console's routes (empty when `[console] enabled = false`).
pub fn router(enabled: bool) -> Router<Arc<AppState>> {
    if !enabled {
        return Router::new();
    }
    Router::new()
        .route("/", get(shell))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", axum::routing::post(logout))
        .route("/console/session", get(session_info))
        .route("/console/a/{version}/{*path}", get(asset))
        .route("/console/{*rest}", axum::routing::any(not_found))
        .layer(axum::middleware::map_response(security_headers))
}

/// Adds the CSP and the other protective headers.
async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

fn json_error(status: StatusCode, e: impl std::fmt::Display) -> Response {
    crate::api::problem(status, e.to_string())
}

fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

/// The answer to a refused session: 401 (none or ended), 403 (CSRF, origin), 503 (full).
pub fn refusal(e: &SessionError) -> Response {
    let status = match e {
        SessionError::Missing | SessionError::Unknown => StatusCode::UNAUTHORIZED,
        SessionError::Full => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::FORBIDDEN,
    };
    json_error(status, e)
}

/// The credential of a request's console session, for [`crate::app::Reader`]: `None` when
/// the request has an `Authorization` header (it wins) or no session cookie; an error
/// ([`refusal`] answers it) when the cookie names no live session or a state-changing
/// request fails the CSRF check.
pub fn session_bearer(
    st: &AppState,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
) -> Result<Option<(String, [u8; 32])>, SessionError> {
    if headers.contains_key(header::AUTHORIZATION) || !st.sessions.config().enabled {
        return Ok(None);
    }
    let live = match st.sessions.lookup(headers) {
        Ok(l) => l,
        Err(SessionError::Missing) => return Ok(None),
        Err(e) => return Err(e),
    };
    st.sessions.check_csrf(method, uri, headers, &live)?;
    Ok(Some((live.credential.authorization(), live.key)))
}

/// The live session of a console request and its freshly re-authenticated identity. A
/// session whose credential no longer authenticates (revoked, expired) is ended.
async fn authenticated(
    st: &AppState,
    headers: &HeaderMap,
    ext: &axum::http::Extensions,
) -> Result<(session::Live, Identity), SessionError> {
    let live = st.sessions.lookup(headers)?;
    let bearer = live.credential.authorization();
    let creds = Credentials {
        authorization: Some(&bearer),
        connection: ext.get::<Connection>(),
    };
    match st.auth.authenticate(creds).await {
        Ok(id) => Ok((live, id)),
        Err(e) => {
            tracing::info!(reason = %e, "console session ended: its credential no longer authenticates");
            st.sessions.end(&live.key);
            Err(SessionError::Unknown)
        }
    }
}

/// `GET /`: the shell page, or the login page's address.
async fn shell(State(st): State<Arc<AppState>>, req: axum::extract::Request) -> Response {
    match authenticated(&st, req.headers(), req.extensions()).await {
        Ok(_) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            assets::shell(),
        )
            .into_response(),
        Err(_) => redirect("/console/login"),
    }
}

/// `GET /console/login`.
async fn login_page() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        assets::login_page(None),
    )
        .into_response()
}

fn login_failed(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        assets::login_page(Some(message)),
    )
        .into_response()
}

/// `POST /console/login` with the form field `token`.
async fn login(State(st): State<Arc<AppState>>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    if let Err(e) = st.sessions.check_origin(&parts.uri, &parts.headers) {
        return login_failed(StatusCode::FORBIDDEN, &e.to_string());
    }
    let body: Bytes = match axum::body::to_bytes(body, MAX_LOGIN_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return login_failed(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the login form is larger than 16 KiB",
            );
        }
    };
    let token = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    if token.is_empty() {
        return login_failed(StatusCode::BAD_REQUEST, "enter an API token");
    }
    let bearer = format!("Bearer {token}");
    let creds = Credentials {
        authorization: Some(&bearer),
        connection: parts.extensions.get::<Connection>(),
    };
    let source = creds.remote().map(|a| a.ip().to_string());
    let identity = match st.auth.authenticate(creds).await {
        Ok(id) => id,
        Err(e) => {
            st.metrics.auth_failure();
            st.query
                .audit_unauthenticated(
                    &crate::api::credential_hint(&creds),
                    source,
                    "POST /console/login",
                    &e.to_string(),
                )
                .await;
            return login_failed(
                StatusCode::UNAUTHORIZED,
                "That token was not accepted: it is unknown, expired or revoked.",
            );
        }
    };
    match st.sessions.open(&token) {
        Ok((_, cookie)) => {
            tracing::info!(tenant = %identity.tenant, principal = %identity.principal, "console login");
            (
                StatusCode::SEE_OTHER,
                [
                    (header::LOCATION, "/".to_string()),
                    (header::SET_COOKIE, cookie),
                ],
            )
                .into_response()
        }
        Err(e) => login_failed(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// `POST /console/logout`: ends the session (CSRF token required) and clears the cookie.
async fn logout(
    State(st): State<Arc<AppState>>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let live = match st.sessions.lookup(&headers) {
        Ok(l) => l,
        Err(e) => return refusal(&e),
    };
    if let Err(e) = st.sessions.check_csrf(&method, &uri, &headers, &live) {
        return refusal(&e);
    }
    st.sessions.end(&live.key);
    (
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, Sessions::clear_cookie())],
    )
        .into_response()
}

/// `GET /console/session`: who the session is, and its CSRF token.
async fn session_info(State(st): State<Arc<AppState>>, req: axum::extract::Request) -> Response {
    match authenticated(&st, req.headers(), req.extensions()).await {
        Ok((live, id)) => axum::Json(serde_json::json!({
            "tenant": id.tenant.as_str(),
            "principal": id.principal,
            "role": id.role,
            "csrf": live.csrf,
        }))
        .into_response(),
        Err(e) => refusal(&e),
    }
}

/// `GET /console/a/<version>/<path>`: an embedded file. Only the login page's files are
/// served without a session.
async fn asset(
    State(st): State<Arc<AppState>>,
    Path((version, path)): Path<(String, String)>,
    req: axum::extract::Request,
) -> Response {
    let Some(a) = assets::get(&path).filter(|_| version == assets::version()) else {
        return json_error(StatusCode::NOT_FOUND, "no such console file");
    };
    if !a.public
        && let Err(e) = authenticated(&st, req.headers(), req.extensions()).await
    {
        return refusal(&e);
    }
    (
        [
            (header::CONTENT_TYPE, a.content_type),
            (
                header::CACHE_CONTROL,
                "private, max-age=31536000, immutable",
            ),
        ],
        a.bytes,
    )
        .into_response()
}

async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "no such console page")
}
