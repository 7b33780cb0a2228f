//! Time left for the current operation.
//!
//! Pacemaker SIGKILLs the agent's whole process group when `OCF_RESKEY_CRM_meta_timeout`
//! expires. Every wait in pgha is bounded by a `Deadline` that ends a margin earlier, so the
//! agent gets to say what it was waiting for instead of dying silently.
//!
//! Budgets come from numbers people and files type (`OCF_RESKEY_CRM_meta_timeout`,
//! `rewind_timeout`, `pgha rewind --timeout`); parsing refuses the absurd ones, and every
//! `Instant` computed here saturates instead of overflowing (which panics).
//!
//! The lowest floor: it imports nothing of pgha. A wait that runs out is reported as
//! [`Expired`], which each caller's error type takes in (`From<Expired>`).

use std::thread::sleep;
use std::time::{Duration, Instant};

/// A wait that ran out: what was awaited, and for how long.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("gave up after {waited:.1?} waiting for {what}")]
pub struct Expired {
    pub what: String,
    pub waited: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    start: Instant,
    end: Instant,
}

impl Deadline {
    /// The operation timeout minus a margin: a tenth of it, at least 1 s and at most 5 s
    /// (half the timeout when that is shorter than 2 s).
    pub fn for_operation(timeout: Duration) -> Deadline {
        let margin = if timeout < Duration::from_secs(2) {
            timeout / 2
        } else {
            (timeout / 10).clamp(Duration::from_secs(1), Duration::from_secs(5))
        };
        Deadline::after(timeout - margin)
    }

    /// `budget` from now; a budget past [`LONGEST`] counts as `LONGEST`.
    pub fn after(budget: Duration) -> Deadline {
        let start = Instant::now();
        Deadline {
            start,
            end: later(start, budget),
        }
    }

    pub fn remaining(&self) -> Duration {
        self.end.saturating_duration_since(Instant::now())
    }

    pub fn expired(&self) -> bool {
        self.remaining().is_zero()
    }

    /// [`Deadline::expired`], looked at on every 256th `step` only (the first included): for
    /// loops of many short steps, such as the records of a WAL read (0.2 µs each), where
    /// reading the clock at each step took a tenth of the time.
    pub fn expired_by_step(&self, step: u64) -> bool {
        step.is_multiple_of(256) && self.expired()
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// A shorter deadline inside this one.
    pub fn at_most(&self, budget: Duration) -> Deadline {
        let start = Instant::now();
        Deadline {
            start,
            end: self.end.min(later(start, budget)),
        }
    }

    /// Calls `probe` every `every` until it returns `Some`, fails, or the deadline passes;
    /// then the error is an [`Expired`] naming `what` was awaited, in the probe's own error
    /// type (so a probe's failure and the expiry come back as one type, the caller's).
    pub fn poll<T, E: From<Expired>>(
        &self,
        what: &str,
        every: Duration,
        mut probe: impl FnMut() -> Result<Option<T>, E>,
    ) -> Result<T, E> {
        loop {
            if let Some(value) = probe()? {
                return Ok(value);
            }
            let left = self.remaining();
            if left.is_zero() {
                return Err(Expired {
                    what: what.to_owned(),
                    waited: self.elapsed(),
                }
                .into());
            }
            sleep(every.min(left));
        }
    }
}

/// The longest wait any budget stands for: a year, far beyond any operation timeout, and
/// small enough that `Instant + LONGEST` cannot overflow (Linux counts `Instant` in an i64
/// of seconds since boot).
pub const LONGEST: Duration = Duration::from_secs(365 * 24 * 3600);

/// `from + budget`, with the budget clamped to [`LONGEST`]. Should even that overflow, the
/// deadline is `from`: a wait that ends at once, never a panic.
fn later(from: Instant, budget: Duration) -> Instant {
    from.checked_add(budget.min(LONGEST)).unwrap_or(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_is_a_tenth_bounded() {
        let close = |d: Deadline, want: u64| {
            let left = d.remaining().as_millis() as u64;
            assert!(left <= want && left + 50 >= want, "{left} vs {want}");
        };
        close(Deadline::for_operation(Duration::from_secs(10)), 9_000);
        close(Deadline::for_operation(Duration::from_secs(20)), 18_000);
        close(Deadline::for_operation(Duration::from_secs(120)), 115_000);
        close(Deadline::for_operation(Duration::from_secs(5)), 4_000);
        close(Deadline::for_operation(Duration::from_secs(1)), 500);
    }

    #[test]
    fn poll_returns_the_first_answer() {
        let mut n = 0;
        let got = Deadline::after(Duration::from_secs(5))
            .poll("n to reach 3", Duration::from_millis(1), || {
                n += 1;
                Ok::<_, Expired>((n >= 3).then_some(n))
            })
            .unwrap();
        assert_eq!(got, 3);
    }

    #[test]
    fn poll_times_out_naming_what_it_waited_for() {
        let err = Deadline::after(Duration::from_millis(30))
            .poll("godot", Duration::from_millis(5), || {
                Ok::<_, Expired>(None::<()>)
            })
            .unwrap_err();
        assert!(err.to_string().contains("godot"), "{err}");
    }

    #[test]
    fn at_most_never_extends() {
        let outer = Deadline::after(Duration::from_millis(100));
        assert!(outer.at_most(Duration::from_secs(10)).remaining() <= Duration::from_millis(100));
        assert!(outer.at_most(Duration::from_millis(10)).remaining() <= Duration::from_millis(10));
    }

    #[test]
    fn finding_9_huge_budgets_saturate_instead_of_panicking() {
        let huge = Duration::from_secs(u64::MAX);
        let d = Deadline::after(huge);
        assert!(d.remaining() > Duration::from_secs(300 * 24 * 3600));
        assert!(d.remaining() <= LONGEST);
        let inner = Deadline::after(Duration::from_secs(5)).at_most(huge);
        assert!(inner.remaining() <= Duration::from_secs(5));
        assert!(Deadline::for_operation(huge).remaining() <= LONGEST);
        assert!(Deadline::after(Duration::MAX).remaining() <= LONGEST);
    }
}
