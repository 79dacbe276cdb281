//! Stopping `sentrace serve` without surprising a load balancer or losing freshness: on
//! SIGTERM or ctrl-c the node first drains (`/readyz` answers 503 `draining` while the
//! listeners keep serving for `[server] drain_grace`), then stops its listeners and
//! background tasks, then flushes its buffered spans into blocks (bounded by `[store]
//! shutdown_flush_timeout`) before it closes the WAL. A flush that fails or runs out of
//! time is reported; its spans stay in the WAL and are replayed at the next start.

use std::time::{Duration, Instant};

use sentrace_store::Store;

/// Waits `grace` while the listeners keep serving (readiness already fails), or until a
/// second SIGTERM or SIGINT ends the wait early.
pub(crate) async fn drain(grace: Duration) -> anyhow::Result<()> {
    if grace.is_zero() {
        return Ok(());
    }
    tracing::info!(
        grace_secs = grace.as_secs_f64(),
        "draining: /readyz answers 503 while the listeners keep serving; send the signal again to stop at once"
    );
    let again = crate::shutdown_signal()?;
    tokio::select! {
        _ = tokio::time::sleep(grace) => {}
        _ = again => tracing::info!("second stop signal: ending the drain early"),
    }
    Ok(())
}

/// Flushes the store's buffered spans into blocks, waiting at most `timeout`. Call it once
/// ingest has stopped, before [`Store::close`].
pub(crate) async fn flush_before_exit(store: &Store, timeout: Duration) {
    if timeout.is_zero() {
        return;
    }
    let buffered = store.buffered_spans();
    if buffered == 0 {
        return;
    }
    tracing::info!(
        spans = buffered,
        timeout_secs = timeout.as_secs_f64(),
        "flushing buffered spans into blocks before exit"
    );
    let started = Instant::now();
    // A flush cut off by the timeout leaves the WAL segments in place (they are deleted
    // only after every block, tag and log tile is stored): the next start replays them,
    // and a block it had already stored holds the same spans, which reads and `verify`
    // count once.
    match tokio::time::timeout(timeout, store.flush()).await {
        Ok(Ok(report)) => {
            tracing::info!(
                spans = report.spans,
                blocks = report.blocks,
                seconds = started.elapsed().as_secs_f64(),
                "flushed before exit: nothing is left only in the WAL"
            );
        }
        Ok(Err(e)) => {
            tracing::error!(
                error = %e,
                spans = buffered,
                "the flush before exit failed: the spans stay in the WAL and are replayed at the next start"
            );
        }
        Err(_) => {
            tracing::error!(
                timeout_secs = timeout.as_secs_f64(),
                spans = buffered,
                "the flush before exit did not finish within [store] shutdown_flush_timeout: the spans stay in the WAL and are replayed at the next start"
            );
        }
    }
}
