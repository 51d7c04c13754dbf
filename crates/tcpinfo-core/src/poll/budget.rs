//! The CPU budget of a poller thread: after each poll the thread's own CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`) sets the interval before the next one, never below the
//! configured interval, so that CPU / wall time stays at most `max_cpu`.
//!
//! A poll that cost `c` ns of CPU is followed by a wait until `c / max_cpu` after its
//! start: summed over any run of polls, CPU ≤ `max_cpu` × elapsed. The interval used is
//! the larger of that and a moving average (so one cheap poll does not halve it), and it
//! only ever errs on the side of the budget.

use std::time::Duration;

/// Weight of the newest poll in the moving average of CPU per poll.
const AVERAGE_WEIGHT: f64 = 0.5;

/// CPU time of the calling thread, ns.
pub fn thread_cpu_nanos() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid, writable timespec; the clock id is a constant.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut ts) } != 0 {
        return 0;
    }
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

/// Interval bookkeeping of one poller thread.
#[derive(Debug, Clone)]
pub struct Budget {
    interval: Duration,
    max_cpu: Option<f64>,
    average_cpu_nanos: f64,
    effective: Duration,
    long_polls: u32,
}

impl Budget {
    /// A budget of `max_cpu` (fraction of one core; `None`: none) over `interval`.
    pub fn new(interval: Duration, max_cpu: Option<f64>) -> Self {
        Self {
            interval,
            max_cpu,
            average_cpu_nanos: 0.0,
            effective: interval,
            long_polls: 0,
        }
    }

    /// Accounts one poll that took `cpu_nanos` of CPU and `wall` time; returns the
    /// interval to wait from its start to the next poll's.
    pub fn after_poll(&mut self, cpu_nanos: u64, wall: Duration) -> Duration {
        if wall > self.interval {
            self.long_polls = self.long_polls.saturating_add(1);
        }
        let Some(max_cpu) = self.max_cpu else {
            return self.interval;
        };
        #[expect(clippy::cast_precision_loss, reason = "ns of one poll, far below 2^53")]
        let cpu = cpu_nanos as f64;
        self.average_cpu_nanos += AVERAGE_WEIGHT * (cpu - self.average_cpu_nanos);
        let needed = cpu.max(self.average_cpu_nanos) / max_cpu;
        self.effective = Duration::try_from_secs_f64(needed / 1e9)
            .unwrap_or(Duration::MAX)
            .clamp(
                self.interval,
                super::config::MAX_POLL_INTERVAL.max(self.interval),
            );
        self.effective
    }

    /// Polls that took longer than the configured interval.
    pub fn long_polls(&self) -> u32 {
        self.long_polls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_stretches_to_the_budget_and_never_below_the_configured_one() {
        let ms = Duration::from_millis;
        let mut b = Budget::new(ms(10), Some(0.2));
        // 1 ms of CPU per poll at 20%: 5 ms needed, the configured 10 ms stays.
        assert_eq!(b.after_poll(1_000_000, ms(1)), ms(10));
        // 20 ms of CPU: 100 ms.
        assert_eq!(b.after_poll(20_000_000, ms(25)), ms(100));
        assert_eq!(b.long_polls(), 1);
        // One cheap poll does not drop it at once (the average is 5.625 ms: 28.125 ms).
        assert_eq!(
            b.after_poll(1_000_000, ms(1)),
            Duration::from_micros(28_125)
        );
        let mut none = Budget::new(ms(10), None);
        assert_eq!(none.after_poll(50_000_000, ms(60)), ms(10));
        assert_eq!(none.long_polls(), 1);
    }

    #[test]
    fn thread_cpu_time_advances_with_work() {
        let t0 = thread_cpu_nanos();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        assert!(thread_cpu_nanos() > t0, "{x}");
    }
}
