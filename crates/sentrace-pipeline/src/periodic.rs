//! The loop of the background savers and publishers: wait for the next tick, or stop at
//! shutdown.

use tokio::sync::watch;
use tokio::time::Interval;

/// Waits for `tick`; false once `shutdown` changes (the caller then does its final work).
pub async fn tick_or_shutdown(tick: &mut Interval, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tick.tick() => true,
        _ = shutdown.changed() => false,
    }
}
