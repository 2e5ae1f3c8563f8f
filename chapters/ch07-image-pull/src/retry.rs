//! Trying again: what a pull does when the network or the registry fails for
//! a moment, as it does on Wi-Fi, behind a proxy, or when a registry is busy.
//!
//! - A request that fails before an answer arrives (the connection refused or
//!   reset, no byte for [`read_timeout`]), or that the registry answers with
//!   a server error (5xx), is sent again after a pause that doubles each time:
//!   1, 2, 4, 8 seconds, five attempts in all, as Docker tries each layer five
//!   times.
//! - `429 Too Many Requests` is tried again only when the registry says when
//!   (`Retry-After: SECONDS`) and that is soon. Docker Hub's pull limit
//!   answers 429 without it: waiting hours is not a retry, so that error is
//!   shown at once, with the limit's headers (see [`crate::registry`]).
//! - A layer whose download breaks in the middle is not started over: the
//!   download asks for the rest (`Range: bytes=N-`) and goes on where it
//!   stopped (see `pull::BlobReader`).

use std::time::Duration;

/// How many times a request or a download is tried in all.
pub const ATTEMPTS: u32 = 5;

/// The longest `Retry-After` worth waiting for.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How long to wait before attempt `attempt` + 1 (after `attempt` failures,
/// the first being 1): 1 s, 2 s, 4 s, 8 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1 << attempt.saturating_sub(1).min(5))
}

/// How long a download may go without receiving a byte before it counts as
/// stalled and is tried again: 30 seconds, or `MINIBOX_READ_TIMEOUT` seconds.
/// (A stalled connection otherwise waits forever: the server sent nothing,
/// and TCP has no reason to give up.)
pub fn read_timeout() -> Duration {
    std::env::var("MINIBOX_READ_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .map_or(Duration::from_secs(30), Duration::from_secs_f64)
}

/// Whether an answer with `status` is worth asking again, and after how long
/// (`attempt` failures so far): server errors after [`backoff`], a 429 after
/// its `Retry-After` (seconds) if that is at most [`MAX_RETRY_AFTER`].
///
/// SIMPLIFICATION: `Retry-After` may also be an HTTP date; minibox reads only
/// the number of seconds, which is what registries send.
pub fn after_status(status: u16, retry_after: Option<&str>, attempt: u32) -> Option<Duration> {
    match status {
        429 => retry_after
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
            .filter(|d| *d <= MAX_RETRY_AFTER),
        500 | 502 | 503 | 504 => Some(backoff(attempt)),
        _ => None,
    }
}

/// `Retrying in 2 seconds`, Docker's words on a layer's line.
pub fn message(delay: Duration) -> String {
    match delay.as_secs() {
        1 => "Retrying in 1 second".to_string(),
        n => format!("Retrying in {n} seconds"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_and_429_waits_only_when_told() {
        let secs: Vec<u64> = (1..=4).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8]);
        assert_eq!(after_status(503, None, 2), Some(Duration::from_secs(2)));
        assert_eq!(
            after_status(429, Some("3"), 1),
            Some(Duration::from_secs(3))
        );
        assert_eq!(after_status(429, None, 1), None, "Docker Hub's quota");
        assert_eq!(after_status(429, Some("21600"), 1), None, "hours away");
        assert_eq!(after_status(404, None, 1), None);
        assert_eq!(message(Duration::from_secs(1)), "Retrying in 1 second");
        assert_eq!(message(Duration::from_secs(4)), "Retrying in 4 seconds");
    }
}
