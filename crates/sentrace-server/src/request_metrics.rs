//! Request latency per listener: one layer around each listener's router observes how long
//! every request took to answer (until its response head; a streamed body is not waited
//! for) in `sentrace_request_duration_seconds{listener}`.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};

use crate::metrics::Metrics;

/// `router` with its requests timed under `listener` (`otlp-grpc`, `otlp-http` or `query`,
/// as the listeners are named in the logs; the label uses `_`).
pub fn layer(router: Router, metrics: Arc<Metrics>, listener: &str) -> Router {
    let label: &'static str = match listener {
        "otlp-grpc" => "otlp_grpc",
        "otlp-http" => "otlp_http",
        _ => "query",
    };
    router.layer(middleware::from_fn(move |req: Request, next: Next| {
        let metrics = metrics.clone();
        async move {
            let started = Instant::now();
            let res = next.run(req).await;
            metrics.request_duration(label, started.elapsed());
            res
        }
    }))
}
