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
pub mod oidc;
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
        .route("/console/oidc/{n}/start", get(oidc_start))
        .route("/console/oidc/callback", get(oidc_callback))
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
async fn login_page(State(st): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        assets::login_page(None, &st.sessions.oidc.labels()),
    )
        .into_response()
}

fn login_failed_with(st: &AppState, status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        assets::login_page(Some(message), &st.sessions.oidc.labels()),
    )
        .into_response()
}

/// `POST /console/login` with the form field `token`.
async fn login(State(st): State<Arc<AppState>>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    if let Err(e) = st.sessions.check_origin(&parts.uri, &parts.headers) {
        return login_failed_with(&st, StatusCode::FORBIDDEN, &e.to_string());
    }
    let body: Bytes = match axum::body::to_bytes(body, MAX_LOGIN_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return login_failed_with(
                &st,
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
        return login_failed_with(&st, StatusCode::BAD_REQUEST, "enter an API token");
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
            st.metrics.auth_failure("console");
            st.query
                .audit_unauthenticated(
                    &crate::api::credential_hint(&creds),
                    source,
                    "POST /console/login",
                    &e.to_string(),
                )
                .await;
            return login_failed_with(
                &st,
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
        Err(e) => login_failed_with(&st, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
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

/// `GET /console/oidc/{n}/start`: redirects to provider `n` with a fresh state, nonce and
/// PKCE challenge; the state is bound to the browser by a short-lived cookie.
async fn oidc_start(State(st): State<Arc<AppState>>, Path(n): Path<usize>) -> Response {
    match st.sessions.oidc.start(n).await {
        Ok((url, state)) => (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, url),
                (
                    header::SET_COOKIE,
                    // Lax: the provider's redirect back is a cross-site top-level GET.
                    format!(
                        "{}={state}; HttpOnly; Secure; SameSite=Lax; Path=/console/oidc; Max-Age=600",
                        oidc::STATE_COOKIE
                    ),
                ),
            ],
        )
            .into_response(),
        Err(e) => login_failed_with(&st, StatusCode::BAD_GATEWAY, &e.to_string()),
    }
}

/// `GET /console/oidc/callback?code=&state=`: redeems the code, opens the session with the
/// access token and sends the browser on to `/` from a same-origin page (a redirect would
/// still count as the provider's cross-site navigation, and the SameSite=Strict session
/// cookie would not be sent).
async fn oidc_callback(State(st): State<Arc<AppState>>, req: axum::extract::Request) -> Response {
    let query = req.uri().query().unwrap_or("");
    let mut code = None;
    let mut state = None;
    let mut error = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "code" => code = Some(v.into_owned()),
            "state" => state = Some(v.into_owned()),
            "error" => error = Some(v.chars().take(100).collect::<String>()),
            _ => {}
        }
    }
    if let Some(e) = error {
        return login_failed_with(
            &st,
            StatusCode::UNAUTHORIZED,
            &oidc::OidcLoginError::Provider(e).to_string(),
        );
    }
    let (Some(code), Some(state)) = (code, state) else {
        return login_failed_with(
            &st,
            StatusCode::BAD_REQUEST,
            "the identity provider sent no code or state",
        );
    };
    let bound = session::cookie_named(req.headers(), oidc::STATE_COOKIE);
    let access = match st
        .sessions
        .oidc
        .finish(&code, &state, bound, crate::auth::now_unix())
        .await
    {
        Ok(t) => t,
        Err(e) => {
            tracing::info!(error = %e, "console OIDC login failed");
            return login_failed_with(&st, StatusCode::UNAUTHORIZED, &e.to_string());
        }
    };
    let bearer = format!("Bearer {access}");
    let creds = Credentials {
        authorization: Some(&bearer),
        connection: req.extensions().get::<Connection>(),
    };
    let identity = match st.auth.authenticate(creds).await {
        Ok(id) => id,
        Err(e) => {
            st.metrics.auth_failure("console");
            tracing::info!(reason = %e, "console OIDC login: the access token does not authenticate");
            return login_failed_with(
                &st,
                StatusCode::UNAUTHORIZED,
                "The identity provider's access token was not accepted here (audience, tenant or roles: see [[auth.oidc]]).",
            );
        }
    };
    match st.sessions.open(&access) {
        Ok((_, cookie)) => {
            tracing::info!(tenant = %identity.tenant, principal = %identity.principal, "console login (OIDC)");
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            for c in [
                cookie,
                format!(
                    "{}=; HttpOnly; Secure; SameSite=Lax; Path=/console/oidc; Max-Age=0",
                    oidc::STATE_COOKIE
                ),
            ] {
                if let Ok(v) = HeaderValue::from_str(&c) {
                    headers.append(header::SET_COOKIE, v);
                }
            }
            (
                headers,
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0;url=/\"><title>Logged in</title></head><body><p><a href=\"/\">Continue to the console</a></p></body></html>",
            )
                .into_response()
        }
        Err(e) => login_failed_with(&st, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}
