//! Unauthenticated liveness and readiness probes for load balancers and orchestrators.
//! They answer a fixed word and a status code, nothing else: no version, no tenant, no
//! counts, no reason text that could map the deployment.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;

/// What readiness depends on besides the store: listeners bound and not shutting down.
#[derive(Debug)]
pub struct Health {
    listeners_expected: usize,
    listeners_bound: AtomicUsize,
    stopping: AtomicBool,
}

impl Health {
    /// Readiness waits for `listeners` bound listeners.
    pub fn new(listeners: usize) -> Self {
        Self {
            listeners_expected: listeners,
            listeners_bound: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
        }
    }

    /// One more listener is bound and serving.
    pub fn listener_bound(&self) {
        self.listeners_bound.fetch_add(1, Ordering::AcqRel);
    }

    /// Shutdown has begun: readiness fails from now on, so load balancers drain the node.
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// Whether shutdown has begun (the node is draining).
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Whether the node should get traffic, given whether its store is open.
    pub fn ready(&self, store_open: bool) -> bool {
        store_open
            && !self.stopping.load(Ordering::Acquire)
            && self.listeners_bound.load(Ordering::Acquire) >= self.listeners_expected
    }
}

fn plain(status: StatusCode, word: &'static str) -> Response {
    let mut r = (status, word).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `GET /healthz`: 200 `ok` while the process serves requests.
pub async fn healthz() -> Response {
    plain(StatusCode::OK, "ok\n")
}

/// `GET /readyz`: 200 `ready` when the store is open, every listener is bound and the node
/// is not shutting down; 503 `draining` once shutdown has begun (the listeners still serve
/// for `[server] drain_grace`); otherwise 503 `not ready`.
pub async fn readyz(State(st): State<Arc<AppState>>) -> Response {
    if st.health.ready(st.store.is_open()) {
        plain(StatusCode::OK, "ready\n")
    } else if st.health.is_stopping() {
        plain(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    } else {
        plain(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_needs_every_listener_an_open_store_and_no_stop() {
        let h = Health::new(2);
        assert!(!h.ready(true));
        h.listener_bound();
        assert!(!h.ready(true));
        h.listener_bound();
        assert!(h.ready(true));
        assert!(!h.ready(false));
        assert!(!h.is_stopping());
        h.stopping();
        assert!(!h.ready(true));
        assert!(h.is_stopping());
    }
}
