//! When to connect again to a node whose connections failed.

use std::time::Duration;

/// The longest wait before a failing node is connected to again.
pub const MAX_RECONNECT_WAIT: Duration = Duration::from_secs(30);

/// How long to wait after `failures` consecutive failed connections before the next attempt:
/// none after the first (the next sample tries again), then `base`, 3 x `base`, 7 x `base`, ...
/// (2^(failures-1) - 1 times `base`), at most [`MAX_RECONNECT_WAIT`].
pub fn reconnect_after(failures: u32, base: Duration) -> Duration {
    let factor = 2u32
        .saturating_pow(failures.saturating_sub(1))
        .saturating_sub(1);
    base.saturating_mul(factor).min(MAX_RECONNECT_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_from_the_second_failure_and_is_capped() {
        let s = Duration::from_secs(1);
        let waits: Vec<u64> = (0..8).map(|n| reconnect_after(n, s).as_secs()).collect();
        assert_eq!(waits, vec![0, 0, 1, 3, 7, 15, 30, 30]);
        assert_eq!(reconnect_after(u32::MAX, s), MAX_RECONNECT_WAIT);
        assert_eq!(
            reconnect_after(3, Duration::from_millis(100)),
            Duration::from_millis(300)
        );
        assert_eq!(reconnect_after(5, Duration::ZERO), Duration::ZERO);
    }
}
