//! Refused credentials in the server's log: at warn, so an operator sees a misconfigured
//! client or a credential-guessing run, and rate-limited, so a flood of bad requests
//! cannot flood the log. A line names the reason (never the credential), the endpoint and
//! the peer address; the first line of a new window says how many were left out.
//! Every refusal is still counted (`sentrace_auth_failures_total`) and audited.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lines written per window at most.
pub const LINES_PER_WINDOW: u32 = 10;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(60);

/// A fixed-window limiter.
#[derive(Debug)]
struct Window {
    start: Instant,
    written: u32,
    suppressed: u64,
}

static LIMITER: Mutex<Option<Window>> = Mutex::new(None);

/// Whether a line may be written at `now`, and how many were left out before it.
fn admit(slot: &mut Option<Window>, now: Instant) -> Option<u64> {
    let w = slot.get_or_insert(Window {
        start: now,
        written: 0,
        suppressed: 0,
    });
    if now.duration_since(w.start) >= WINDOW {
        let left_out = w.suppressed;
        *w = Window {
            start: now,
            written: 1,
            suppressed: 0,
        };
        return Some(left_out);
    }
    if w.written < LINES_PER_WINDOW {
        w.written += 1;
        Some(0)
    } else {
        w.suppressed += 1;
        None
    }
}

/// Logs one refused credential at warn, within the rate limit.
pub fn log_refused(reason: &dyn std::fmt::Display, endpoint: &str, peer: Option<&str>) {
    let admitted = match LIMITER.lock() {
        Ok(mut slot) => admit(&mut slot, Instant::now()),
        Err(_) => Some(0),
    };
    if let Some(left_out) = admitted {
        tracing::warn!(
            %reason,
            endpoint,
            peer = peer.unwrap_or("-"),
            earlier_refusals_not_logged = left_out,
            "credential refused"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_the_limit_per_window_then_the_count_of_those_left_out() {
        let mut slot = None;
        let t0 = Instant::now();
        for _ in 0..LINES_PER_WINDOW {
            assert_eq!(admit(&mut slot, t0), Some(0));
        }
        for _ in 0..25 {
            assert_eq!(admit(&mut slot, t0 + Duration::from_secs(1)), None);
        }
        assert_eq!(admit(&mut slot, t0 + WINDOW), Some(25));
        assert_eq!(admit(&mut slot, t0 + WINDOW), Some(0));
    }
}
