//! What the notify tests share: a retry policy quick enough for a test.

use std::time::Duration;

use golive_notify::Retry;

/// `retries` after the first attempt, 10 ms apart, 5 s per attempt.
pub fn quick(retries: u32) -> Retry {
    Retry {
        retries,
        backoff: Duration::from_millis(10),
        timeout: Duration::from_secs(5),
    }
}
