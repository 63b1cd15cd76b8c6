//! The retry policy: a pure function of the attempt, the job's backoff and a random number.

use std::time::Duration;

use crate::job::Backoff;

/// What happens after a step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryDecision {
    /// Run the step again after this delay.
    RetryAfter(Duration),
    /// No attempts left (or the error was permanent): fail the run.
    Fail,
}

/// Decides what follows failed attempt `attempt` (1-based) of a step. `unit` is a random number
/// in `[0, 1)` that spreads the delay by ±25% so that failing runs do not retry in lockstep.
pub(crate) fn decide(
    attempt: u32,
    max_attempts: u32,
    permanent: bool,
    backoff: Backoff,
    unit: f64,
) -> RetryDecision {
    if permanent || attempt >= max_attempts {
        return RetryDecision::Fail;
    }
    let exp = attempt.saturating_sub(1).min(62);
    let base = backoff.base.as_secs_f64() * 2f64.powi(exp as i32);
    let capped = base.min(backoff.max.as_secs_f64());
    let jitter = 0.75 + 0.5 * unit.clamp(0.0, 1.0);
    let secs = (capped * jitter).min(backoff.max.as_secs_f64());
    RetryDecision::RetryAfter(Duration::from_secs_f64(secs.max(0.0)))
}

/// A small random number in `[0, 1)` for jitter (no need for cryptographic quality).
pub(crate) fn jitter_unit(seed: i64) -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(seed);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        base: Duration::from_secs(1),
        max: Duration::from_secs(60),
    };

    #[test]
    fn doubles_per_attempt_without_jitter_at_midpoint() {
        let d = |a| decide(a, 100, false, B, 0.5);
        assert_eq!(d(1), RetryDecision::RetryAfter(Duration::from_secs(1)));
        assert_eq!(d(2), RetryDecision::RetryAfter(Duration::from_secs(2)));
        assert_eq!(d(4), RetryDecision::RetryAfter(Duration::from_secs(8)));
    }

    #[test]
    fn capped_at_max_and_jitter_bounded() {
        for unit in [0.0, 0.3, 0.999] {
            let RetryDecision::RetryAfter(d) = decide(40, 100, false, B, unit) else {
                panic!("expected a retry")
            };
            assert!(d <= B.max && d >= B.max.mul_f64(0.75), "{d:?}");
        }
        let RetryDecision::RetryAfter(lo) = decide(3, 100, false, B, 0.0) else {
            panic!()
        };
        let RetryDecision::RetryAfter(hi) = decide(3, 100, false, B, 0.999) else {
            panic!()
        };
        assert_eq!(lo, Duration::from_secs(3));
        assert!(hi > Duration::from_millis(4990) && hi < Duration::from_secs(5));
    }

    #[test]
    fn fails_when_attempts_run_out_or_error_is_permanent() {
        assert_eq!(decide(3, 3, false, B, 0.5), RetryDecision::Fail);
        assert_eq!(decide(1, 3, true, B, 0.5), RetryDecision::Fail);
        assert!(matches!(
            decide(2, 3, false, B, 0.5),
            RetryDecision::RetryAfter(_)
        ));
    }

    #[test]
    fn jitter_unit_is_in_range() {
        for s in 0..1000 {
            let u = jitter_unit(s);
            assert!((0.0..1.0).contains(&u));
        }
    }
}
