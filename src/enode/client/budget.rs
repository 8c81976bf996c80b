//! The global request budget: every request to Enode (token requests and retries included) first
//! takes a permit here, so Enode never sees more than `rate` requests per window plus `burst`.
//!
//! One dispatcher task owns two GCRA limiters from `governor` and two queues:
//! - calls a person waits for (`Priority::User`) get the next permit whenever one is waiting;
//! - background refreshes get a permit only when no user call waits AND their own limiter, set to
//!   `background_share` of the rate, allows it. So background work can never take more than its
//!   share, and can never delay a user call by more than the one permit already handed out.
//!
//! A single dispatcher (rather than callers racing for the limiter) is what makes the priority
//! strict: whoever is first in the user queue gets the next permit, however many background
//! callers are waiting. It also owns the 429 pause: while Enode asked us to wait, no permit is
//! given, so calls queued during the pause cannot all fire at once when it ends (the limiter paces
//! them as usual).
//!
//! The limiters read tokio's clock, so tests run the real dispatcher under a paused clock.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Who waits for a call, and so who goes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// A person waits for the answer: charging, linking, account changes. Always served first.
    User,
    /// Keeping state fresh: refreshes, reconciliation. Uses at most its share of the budget.
    Background,
}

/// The shape of the budget: `rate` requests per `window`, `burst` more after an idle spell.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BudgetConfig {
    pub rate: u32,
    pub window: Duration,
    pub burst: u32,
    pub background_share: f64,
}

/// The dispatcher is gone (the runtime is shutting down).
#[derive(Debug)]
pub(crate) struct BudgetStopped;

pub(crate) struct Budget {
    queue: mpsc::UnboundedSender<Waiter>,
    pause: Arc<Pause>,
}

impl Budget {
    /// Spawns the dispatcher on the current tokio runtime. It ends when the budget is dropped.
    pub fn start(config: BudgetConfig) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        let pause = Arc::new(Pause::default());
        let background_rate = f64::from(config.rate) * config.background_share;
        let background_burst = (f64::from(config.burst) * config.background_share).floor();
        let dispatcher = Dispatcher {
            rx,
            user: VecDeque::new(),
            background: VecDeque::new(),
            global: limiter(f64::from(config.rate), config.window, config.burst),
            background_limit: limiter(background_rate, config.window, background_burst as u32),
            background_credit: false,
            pause: Arc::clone(&pause),
        };
        tokio::spawn(dispatcher.run());
        Self { queue, pause }
    }

    /// Waits for a permit to send one request now; returns how long that took.
    pub async fn acquire(&self, priority: Priority) -> Result<Duration, BudgetStopped> {
        let start = Instant::now();
        let (reply, granted) = oneshot::channel();
        self.queue.send(Waiter { priority, reply }).map_err(|_| BudgetStopped)?;
        granted.await.map_err(|_| BudgetStopped)?;
        Ok(start.elapsed())
    }

    /// Enode answered 429: give no permit before `until`. A pause only ever grows.
    pub fn pause_until(&self, until: Instant) {
        self.pause.extend_to(until);
    }

    /// How much of a 429 pause is left, if one is in force.
    pub fn paused_for(&self, now: Instant) -> Option<Duration> {
        self.pause.until(now).map(|until| until - now)
    }
}

struct Waiter {
    priority: Priority,
    reply: oneshot::Sender<()>,
}

#[derive(Default)]
struct Pause(Mutex<Option<Instant>>);

impl Pause {
    fn extend_to(&self, until: Instant) {
        let mut current = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if current.is_none_or(|c| c < until) {
            *current = Some(until);
        }
    }

    /// The end of the pause, if it is still ahead of `now`.
    fn until(&self, now: Instant) -> Option<Instant> {
        let current = *self.0.lock().unwrap_or_else(PoisonError::into_inner);
        current.filter(|until| *until > now)
    }
}

/// governor's clock, read from tokio's so that a paused test clock drives the limiters too.
#[derive(Clone, Copy, Debug, Default)]
struct TokioClock;

impl Clock for TokioClock {
    type Instant = std::time::Instant;

    fn now(&self) -> Self::Instant {
        Instant::now().into_std()
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<std::time::Instant>>;

/// `per_window` cells per `window` (fractional for a share), at most `burst` at once.
fn limiter(per_window: f64, window: Duration, burst: u32) -> Limiter {
    const SHORTEST_PERIOD: Duration = Duration::from_micros(1);
    let period = if per_window > 0.0 { window.div_f64(per_window).max(SHORTEST_PERIOD) } else { window };
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(period).unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN)).allow_burst(burst);
    RateLimiter::direct_with_clock(quota, TokioClock)
}

struct Dispatcher {
    rx: mpsc::UnboundedReceiver<Waiter>,
    user: VecDeque<Waiter>,
    background: VecDeque<Waiter>,
    global: Limiter,
    background_limit: Limiter,
    /// A background permit already taken from the background limiter, not yet handed out
    /// (a user call came first). Kept rather than wasted: it only ever stands for one request.
    background_credit: bool,
    pause: Arc<Pause>,
}

impl Dispatcher {
    async fn run(mut self) {
        loop {
            while let Ok(waiter) = self.rx.try_recv() {
                self.push(waiter);
            }
            self.forget_abandoned();
            if self.user.is_empty() && self.background.is_empty() {
                match self.rx.recv().await {
                    Some(waiter) => self.push(waiter),
                    // Every sender is gone, so nobody can be waiting.
                    None => return,
                }
                continue;
            }
            if let Some(until) = self.pause.until(Instant::now()) {
                tokio::time::sleep_until(until).await;
                continue;
            }
            if self.user.is_empty() && !self.background_credit {
                match self.background_limit.check() {
                    Ok(()) => self.background_credit = true,
                    Err(not_until) => {
                        let wait = not_until.wait_time_from(TokioClock.now());
                        // A user call arriving meanwhile must not wait for background pacing.
                        tokio::select! {
                            () = tokio::time::sleep(wait) => {}
                            waiter = self.rx.recv() => match waiter {
                                Some(waiter) => self.push(waiter),
                                None => return,
                            },
                        }
                        continue;
                    }
                }
            }
            match self.global.check() {
                Ok(()) => self.hand_out(),
                Err(not_until) => {
                    // Whoever arrives meanwhile is placed by priority when the permit is handed out.
                    tokio::time::sleep(not_until.wait_time_from(TokioClock.now())).await;
                }
            }
        }
    }

    fn push(&mut self, waiter: Waiter) {
        match waiter.priority {
            Priority::User => self.user.push_back(waiter),
            Priority::Background => self.background.push_back(waiter),
        }
    }

    /// Callers that gave up (their future was dropped) must not be handed a permit.
    fn forget_abandoned(&mut self) {
        for queue in [&mut self.user, &mut self.background] {
            while queue.front().is_some_and(|w| w.reply.is_closed()) {
                queue.pop_front();
            }
        }
    }

    /// Gives the permit just taken from the global limiter to the first user call, else to the
    /// first background call if it holds background credit.
    fn hand_out(&mut self) {
        while let Some(waiter) = self.user.pop_front() {
            if waiter.reply.send(()).is_ok() {
                return;
            }
        }
        if self.background_credit {
            while let Some(waiter) = self.background.pop_front() {
                if waiter.reply.send(()).is_ok() {
                    self.background_credit = false;
                    return;
                }
            }
        }
        // Everyone who wanted it gave up in the meantime: the permit is lost, which only ever
        // errs on the safe side of the limit.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn budget(rate: u32, burst: u32) -> Budget {
        Budget::start(BudgetConfig { rate, window: MINUTE, burst, background_share: 0.8 })
    }

    type Grants = Arc<Mutex<Vec<(Priority, Duration)>>>;

    /// Spawns `n` callers of `priority` that record when (since `t0`) they got their permit.
    fn spawn_callers(budget: &Arc<Budget>, grants: &Grants, priority: Priority, n: usize, t0: Instant) {
        for _ in 0..n {
            let budget = Arc::clone(budget);
            let grants = Arc::clone(grants);
            tokio::spawn(async move {
                budget.acquire(priority).await.expect("budget running");
                grants.lock().unwrap().push((priority, t0.elapsed()));
            });
        }
    }

    async fn wait_for(grants: &Grants, n: usize) -> Vec<(Priority, Duration)> {
        loop {
            {
                let g = grants.lock().unwrap();
                if g.len() >= n {
                    let mut all = g.clone();
                    all.sort_by_key(|(_, t)| *t);
                    return all;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The most grants in any window of length `window`.
    fn busiest_window(times: &[Duration], window: Duration) -> usize {
        (0..times.len()).map(|i| times[i..].iter().take_while(|t| **t < times[i] + window).count()).max().unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_rate_plus_burst_in_any_window() {
        let budget = Arc::new(budget(60, 5));
        let grants = Grants::default();
        let t0 = Instant::now();
        spawn_callers(&budget, &grants, Priority::Background, 150, t0);
        spawn_callers(&budget, &grants, Priority::User, 100, t0);
        let all = wait_for(&grants, 250).await;
        let times: Vec<Duration> = all.iter().map(|(_, t)| *t).collect();
        assert!(busiest_window(&times, MINUTE) <= 65, "{}", busiest_window(&times, MINUTE));
        // The limiter paces rather than refuses: at least (250 - burst) seconds at one a second,
        // and not much more although background only ever uses 80% of it.
        let last = times[times.len() - 1];
        assert!(last >= Duration::from_secs(244) && last <= Duration::from_secs(300), "{last:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn user_calls_go_first_however_much_background_waits() {
        let budget = Arc::new(budget(60, 5));
        let grants = Grants::default();
        let t0 = Instant::now();
        spawn_callers(&budget, &grants, Priority::Background, 1000, t0);
        tokio::time::sleep(Duration::from_secs(10)).await;
        let users_arrive = t0.elapsed();
        spawn_callers(&budget, &grants, Priority::User, 20, t0);
        let all = loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let all = grants.lock().unwrap().clone();
            if all.iter().filter(|(p, _)| *p == Priority::User).count() == 20 {
                break all;
            }
        };
        let last_user = all.iter().filter(|(p, _)| *p == Priority::User).map(|(_, t)| *t).max().unwrap();
        // At the full rate of one a second: 20 users in about 20 s, not behind 1000 refreshes.
        assert!(last_user <= users_arrive + Duration::from_secs(22), "{last_user:?}");
        let background_meanwhile =
            all.iter().filter(|(p, t)| *p == Priority::Background && *t > users_arrive && *t <= last_user).count();
        assert!(background_meanwhile <= 1, "{background_meanwhile}");
    }

    #[tokio::test(start_paused = true)]
    async fn background_alone_gets_its_share_and_waits() {
        let budget = Arc::new(budget(60, 5));
        let grants = Grants::default();
        let t0 = Instant::now();
        spawn_callers(&budget, &grants, Priority::Background, 200, t0);
        let all = wait_for(&grants, 200).await;
        let times: Vec<Duration> = all.iter().map(|(_, t)| *t).collect();
        // 80% of 60/min is 48/min, plus a background burst of 4.
        assert!(busiest_window(&times, MINUTE) <= 52, "{}", busiest_window(&times, MINUTE));
        assert!(busiest_window(&times, MINUTE) >= 47, "{}", busiest_window(&times, MINUTE));
    }

    #[tokio::test(start_paused = true)]
    async fn no_permit_during_a_rate_limit_pause() {
        let budget = budget(600, 5);
        let t0 = Instant::now();
        budget.pause_until(t0 + Duration::from_secs(2));
        // A shorter pause never shortens the one in force.
        budget.pause_until(t0 + Duration::from_secs(1));
        assert_eq!(budget.paused_for(t0), Some(Duration::from_secs(2)));
        budget.acquire(Priority::User).await.expect("budget running");
        assert!(t0.elapsed() >= Duration::from_secs(2), "{:?}", t0.elapsed());
        assert_eq!(budget.paused_for(Instant::now()), None);
    }

    #[tokio::test(start_paused = true)]
    async fn callers_that_give_up_use_no_permit() {
        let budget = budget(60, 1);
        budget.acquire(Priority::User).await.expect("budget running");
        let t0 = Instant::now();
        for _ in 0..8 {
            let gave_up = tokio::time::timeout(Duration::from_millis(100), budget.acquire(Priority::User)).await;
            assert!(gave_up.is_err());
        }
        budget.acquire(Priority::User).await.expect("budget running");
        // The next permit after the first is due at 1 s; eight abandoned waits did not push it out.
        assert!(t0.elapsed() <= Duration::from_millis(1500), "{:?}", t0.elapsed());
    }
}
