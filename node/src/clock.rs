//! The Raft loop's notion of elapsed time, and the ticks it turns into.
//!
//! The core counts ticks, the runtime turns wall time into ticks. A clock
//! fault (a node whose clock runs fast or slow, or jumps) therefore lives
//! here: [`Clock`] is the monotonic wall clock scaled by a rate and shifted
//! by jumps, and [`Ticker`] says how many ticks are due. Without
//! `--clock-control` the rate stays 1 and nothing jumps, so the loop runs on
//! plain monotonic time; with it, `POST /debug/clock` changes the rate or
//! jumps (no root needed, unlike faking the system clock).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest accepted rate: beyond it a tick is due faster than the loop runs.
pub const MAX_RATE: f64 = 100.0;

/// Elapsed time as this node sees it. Cloning shares the clock (the HTTP
/// endpoint skews what the loop reads).
#[derive(Clone, Debug)]
pub struct Clock {
    state: Arc<Mutex<State>>,
    ticks: Arc<AtomicU64>,
}

#[derive(Debug)]
struct State {
    /// Real instant at which the rate last changed.
    real_anchor: Instant,
    /// Elapsed time as seen at `real_anchor`.
    seen_anchor: Duration,
    rate: f64,
}

/// What `GET /debug/clock` reports.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct ClockStatus {
    pub rate: f64,
    /// Elapsed time as this node sees it, since it started.
    pub elapsed_ms: u64,
    /// Ticks the Raft core was given so far.
    pub ticks: u64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl Clock {
    pub fn new() -> Clock {
        Clock::starting_at(Instant::now())
    }

    /// A clock whose elapsed time is zero at `real` (tests pass explicit instants).
    pub fn starting_at(real: Instant) -> Clock {
        Clock {
            state: Arc::new(Mutex::new(State {
                real_anchor: real,
                seen_anchor: Duration::ZERO,
                rate: 1.0,
            })),
            ticks: Arc::new(AtomicU64::new(0)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is three plain values, valid even if a holder panicked.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Elapsed time as this node sees it at real instant `real`.
    pub fn elapsed_at(&self, real: Instant) -> Duration {
        let st = self.lock();
        let real_since = real.saturating_duration_since(st.real_anchor);
        st.seen_anchor + real_since.mul_f64(st.rate)
    }

    /// Real time from `real` until this clock shows `seen`; `None` while the
    /// clock stands still (rate 0) short of it.
    pub fn real_until_at(&self, seen: Duration, real: Instant) -> Option<Duration> {
        let now = self.elapsed_at(real);
        if seen <= now {
            return Some(Duration::ZERO);
        }
        let rate = self.lock().rate;
        (rate > 0.0).then(|| (seen - now).div_f64(rate))
    }

    /// From real instant `real` on, time passes `rate` times as fast as real
    /// time (0 stops it). Rates outside `0..=MAX_RATE` are refused.
    pub fn set_rate_at(&self, rate: f64, real: Instant) -> Result<(), String> {
        if !(0.0..=MAX_RATE).contains(&rate) {
            return Err(format!("rate must be within 0..={MAX_RATE}, got {rate}"));
        }
        let seen = self.elapsed_at(real);
        let mut st = self.lock();
        st.real_anchor = real;
        st.seen_anchor = seen;
        st.rate = rate;
        Ok(())
    }

    pub fn set_rate(&self, rate: f64) -> Result<(), String> {
        self.set_rate_at(rate, Instant::now())
    }

    /// Moves this clock by `ms` at once (backwards for a negative value, but
    /// never before its start). Backwards, no tick is due until it catches up.
    pub fn jump_ms(&self, ms: i64) {
        let mut st = self.lock();
        let by = Duration::from_millis(ms.unsigned_abs());
        st.seen_anchor = if ms >= 0 {
            st.seen_anchor + by
        } else {
            st.seen_anchor.saturating_sub(by)
        };
    }

    pub fn status(&self) -> ClockStatus {
        let elapsed = self.elapsed_at(Instant::now());
        ClockStatus {
            rate: self.lock().rate,
            elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            ticks: self.ticks.load(Ordering::Relaxed),
        }
    }
}

/// Turns a [`Clock`] into ticks of a fixed length.
#[derive(Debug)]
pub struct Ticker {
    clock: Clock,
    tick: Duration,
    /// Elapsed time (as the clock sees it) at which the next tick is due.
    next: Duration,
    /// Most ticks handed out at once: a process resumed after a long pause
    /// needs enough to expire its lease and election timer, not all it missed.
    max_catch_up: u64,
}

impl Ticker {
    pub fn new(clock: Clock, tick: Duration, max_catch_up: u64) -> Ticker {
        assert!(!tick.is_zero(), "a tick must have a length");
        let next = clock.elapsed_at(Instant::now()) + tick;
        Ticker {
            clock,
            tick,
            next,
            max_catch_up: max_catch_up.max(1),
        }
    }

    /// How long the loop may wait (real time) before a tick is due. Capped at
    /// one tick so that a rate change takes effect within a tick.
    pub fn wait_at(&self, real: Instant) -> Duration {
        self.clock
            .real_until_at(self.next, real)
            .map_or(self.tick, |d| d.min(self.tick))
    }

    pub fn wait(&self) -> Duration {
        self.wait_at(Instant::now())
    }

    /// The ticks due at real instant `real` (at most `max_catch_up`); the
    /// ones beyond the cap are skipped, not owed.
    pub fn due_at(&mut self, real: Instant) -> u64 {
        let now = self.clock.elapsed_at(real);
        if now < self.next {
            return 0;
        }
        let behind = ((now - self.next).as_nanos() / self.tick.as_nanos()) as u64 + 1;
        self.next += self
            .tick
            .saturating_mul(u32::try_from(behind).unwrap_or(u32::MAX));
        let due = behind.min(self.max_catch_up);
        self.clock.ticks.fetch_add(due, Ordering::Relaxed);
        due
    }

    pub fn due(&mut self) -> u64 {
        self.due_at(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_rate_change_changes_how_many_ticks_are_due() {
        let t0 = Instant::now();
        let clock = Clock::starting_at(t0);
        let mut ticker = Ticker::new(clock.clone(), 10 * MS, 1000);
        ticker.next = 10 * MS; // as if created at t0
        assert_eq!(ticker.due_at(t0 + 5 * MS), 0);
        assert_eq!(ticker.due_at(t0 + 100 * MS), 10);
        clock.set_rate_at(2.0, t0 + 100 * MS).unwrap();
        assert_eq!(ticker.due_at(t0 + 200 * MS), 20, "twice as fast");
        clock.set_rate_at(0.5, t0 + 200 * MS).unwrap();
        assert_eq!(ticker.due_at(t0 + 400 * MS), 10, "half as fast");
        assert_eq!(clock.status().ticks, 40);
        clock.set_rate_at(0.0, t0 + 400 * MS).unwrap();
        assert_eq!(ticker.due_at(t0 + 900 * MS), 0, "a stopped clock");
        assert_eq!(ticker.wait_at(t0 + 900 * MS), 10 * MS, "waits are capped");
        assert!(clock.set_rate_at(-1.0, t0).is_err());
        assert!(clock.set_rate_at(f64::NAN, t0).is_err());
    }

    #[test]
    fn jumps_make_ticks_due_at_once_up_to_the_cap_and_back_jumps_delay_them() {
        let t0 = Instant::now();
        let clock = Clock::starting_at(t0);
        let mut ticker = Ticker::new(clock.clone(), 10 * MS, 31);
        ticker.next = 10 * MS;
        clock.jump_ms(200);
        assert_eq!(ticker.due_at(t0), 20);
        clock.jump_ms(5_000);
        assert_eq!(ticker.due_at(t0), 31, "capped; the rest is skipped");
        assert_eq!(ticker.due_at(t0 + 9 * MS), 0);
        clock.jump_ms(-50);
        assert_eq!(ticker.due_at(t0 + 50 * MS), 0, "the clock went back 50 ms");
        assert_eq!(ticker.due_at(t0 + 60 * MS), 1);
        assert_eq!(ticker.wait_at(t0 + 65 * MS), 5 * MS);
    }
}
