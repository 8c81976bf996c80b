//! Everything a running simulator shares between its HTTP handlers, its clock task and its
//! webhook workers.

use std::sync::Mutex;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::bus::Bus;
use super::clock::{SimClock, SimMillis};
use super::config::SimConfig;
use super::faults::{FaultState, Knobs};
use super::lock;
use super::outbox::Outbox;
use super::stats::Stats;
use super::tokens::TokenStore;
use super::world::World;

pub struct SimState {
    pub config: SimConfig,
    /// Where the simulator is reached, e.g. `http://127.0.0.1:41234`.
    pub base_url: String,
    pub clock: SimClock,
    pub world: Mutex<World>,
    pub bus: Bus,
    pub faults: Mutex<FaultState>,
    pub tokens: Mutex<TokenStore>,
    pub stats: Mutex<Stats>,
    /// Sends webhook deliveries.
    pub http: reqwest::Client,
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
}

impl SimState {
    pub fn new(config: SimConfig, base_url: String) -> anyhow::Result<Self> {
        let origin = config.start_time.unwrap_or_else(chrono::Utc::now);
        let clock = SimClock::new(origin, config.time_factor);
        let world = World::new(&config, clock.now());
        let knobs =
            Knobs { faults: config.faults.clone(), rate_per_minute: config.rate_per_minute, rate_limit_next: None };
        let http = reqwest::Client::builder()
            .timeout(config.webhook_timeout)
            // Deliveries go where subscriptions say, not where redirects lead.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            base_url,
            clock,
            world: Mutex::new(world),
            bus: Bus::new(config.webhook_queue_limit),
            faults: Mutex::new(FaultState::new(knobs, config.seed)),
            tokens: Mutex::new(TokenStore::new(config.token_ttl)),
            stats: Mutex::new(Stats::new(config.request_log_limit)),
            http,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            config,
        })
    }

    /// Runs one change to the world at the current simulated time and queues the events it
    /// produced. Events are queued before the world's lock is let go, so two changes to one
    /// vehicle queue their events in the order they happened.
    pub fn change<T>(&self, f: impl FnOnce(&mut World, SimMillis, &mut Outbox) -> T) -> T {
        let mut out = Outbox::new(self.bus.listening());
        let now = self.clock.now();
        let mut world = lock(&self.world);
        let result = f(&mut world, now, &mut out);
        let discarded = self.bus.publish(&out.events);
        drop(world);
        if discarded > 0 {
            lock(&self.stats).webhooks().events_discarded += discarded;
        }
        result
    }

    /// Reads the world (no events).
    pub fn read<T>(&self, f: impl FnOnce(&World) -> T) -> T {
        f(&lock(&self.world))
    }

    /// One step of the simulated clock: due actions resolve, due vehicles report.
    pub fn tick(&self) {
        self.change(|world, now, out| world.tick(now, out));
    }
}
