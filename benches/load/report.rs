//! The results of one run: a markdown table for people, JSON for comparing runs.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use serde::Serialize;

use crate::admin_probe::LagDuring;
use crate::loadgen::RunResult;
use crate::options::Options;
use crate::ractor_probe::ProbeResult;

#[derive(Serialize, Default)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    pub kernel: String,
    /// 1, 5 and 15 minute load averages at the start and at the end of the run.
    pub load_before: [f64; 3],
    pub load_after: [f64; 3],
    pub build: &'static str,
    /// How the processes were placed on the cores.
    pub placement: String,
}

/// One measured read phase.
#[derive(Serialize, Clone)]
pub struct Phase {
    pub requests_per_sec: f64,
    pub ok: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// CPU the server used, in cores (1.0 = one core busy the whole phase).
    pub server_cores: f64,
    /// CPU the harness (load generator) used, in cores.
    pub harness_cores: f64,
    /// Fixed rate only: the generator's own lateness on sends it was ready for (see
    /// `RunResult::sends_late`), p99 and max, ms.
    pub generator_late_p99_ms: Option<f64>,
    pub generator_late_max_ms: Option<f64>,
    /// CPU every other process on the machine used meanwhile (the host's daemons, the kernel's
    /// threads, PostgreSQL's processes), ms, and the busiest of them by name.
    pub others_ms: f64,
    pub others_busiest: Vec<(String, f64)>,
}

impl Phase {
    pub fn new(r: &RunResult, server_cores: f64, harness_cores: f64) -> Self {
        Self {
            requests_per_sec: r.rps(),
            ok: r.ok,
            errors: r.errors,
            p50_ms: r.p(0.5),
            p99_ms: r.p(0.99),
            p999_ms: r.p(0.999),
            max_ms: r.latency.max() as f64 / 1000.0,
            server_cores,
            harness_cores,
            generator_late_p99_ms: r.send_late(0.99),
            generator_late_max_ms: r.send_late(1.0),
            others_ms: 0.0,
            others_busiest: Vec::new(),
        }
    }

    /// The phase with what other processes used meanwhile (see `process::others_between`).
    pub fn with_others(mut self, total: Duration, busiest: Vec<(String, Duration)>) -> Self {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        self.others_ms = ms(total);
        self.others_busiest = busiest.into_iter().take(3).map(|(name, d)| (name, ms(d))).collect();
        self
    }
}

#[derive(Serialize, Clone)]
pub struct Round {
    pub ceiling: Phase,
    pub service: Phase,
    pub ratio: f64,
    /// The ceiling over as many distinct bodies as vehicles (see ceiling.rs), and the service's
    /// throughput as a share of it. None for the first reads.
    pub cold_ceiling: Option<Phase>,
    pub cold_ratio: Option<f64>,
}

#[derive(Serialize, Default)]
pub struct Webhooks {
    pub deliveries: u64,
    pub events: u64,
    pub errors: u64,
    pub events_per_sec: f64,
    pub ack_p50_ms: f64,
    pub ack_p99_ms: f64,
    pub ack_max_ms: f64,
    /// Seconds from the last acknowledgement until the store held every acknowledged state.
    pub catch_up_secs: Option<f64>,
    /// Seconds from the last acknowledgement until the write-behind had nothing waiting or in
    /// flight, by the service's own count (`GET /admin/store`); the database is read only after.
    pub drained_secs: Option<f64>,
    pub behind_at_deadline: usize,
    /// Vehicle writes the write-behind still held when the load stopped (its lag), and how many
    /// it had stored during the load, by its own count (None if it could not be read).
    pub backlog_at_end: Option<u64>,
    pub written_during_load: Option<u64>,
    pub server_cores: f64,
    pub harness_cores: f64,
    /// The server's cores by kind of thread (its runtime's workers, the store's threads, ...), so
    /// a run shows where the server's CPU went without a profiler.
    pub server_threads: BTreeMap<String, f64>,
}

#[derive(Serialize, Default)]
pub struct Memory {
    /// The service with an empty store, ready.
    pub empty_rss_kib: u64,
    /// The service with N vehicles, just ready.
    pub ready_rss_kib: u64,
    /// After the read phases.
    pub after_reads_rss_kib: u64,
    /// Of that, in transparent huge pages.
    pub after_reads_huge_pages_kib: u64,
    /// After the webhook phase.
    pub after_webhooks_rss_kib: u64,
    /// (after reads - empty) / N: what a vehicle costs once polled (its status body rendered).
    pub bytes_per_vehicle: f64,
    /// after reads / N: the whole process per vehicle.
    pub total_bytes_per_vehicle: f64,
    pub ractor: Vec<ProbeResult>,
}

#[derive(Serialize)]
pub struct Target {
    pub what: String,
    pub target: String,
    pub measured: String,
    pub met: bool,
}

#[derive(Serialize, Default)]
pub struct Report {
    pub started_at: String,
    pub machine: Machine,
    pub options: Option<Options>,
    pub users: usize,
    pub vehicles: usize,
    pub status_body_bytes: usize,
    pub startup_secs: f64,
    pub empty_startup_secs: f64,
    /// Every vehicle read once, in order, before the rounds (the service renders each body then).
    pub first_reads: Option<Round>,
    pub rounds: Vec<Round>,
    pub ratio_median: f64,
    pub ratio_min: f64,
    pub ratio_max: f64,
    /// Median of the rounds' throughput as a share of the ceiling over N bodies.
    pub cold_ratio_median: f64,
    pub fixed_rate_rps: f64,
    pub fixed_rate_service: Option<Phase>,
    pub fixed_rate_ceiling: Option<Phase>,
    /// How late the service's runtime was during its fixed-rate phase (`/admin/runtime`).
    pub fixed_rate_service_runtime: Option<LagDuring>,
    /// Requests the simulator (Enode) counted during the read phases, by route.
    pub upstream_during_reads: BTreeMap<String, u64>,
    pub upstream_total_during_reads: u64,
    pub webhooks: Webhooks,
    pub memory: Memory,
    pub targets: Vec<Target>,
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

impl Report {
    /// Judges the targets against what was measured.
    pub fn judge(&mut self) {
        let mut t = Vec::new();
        let mut add = |what: &str, target: String, measured: String, met: bool| {
            t.push(Target { what: what.into(), target, measured, met })
        };
        add(
            "reads: throughput vs ceiling",
            ">= 0.85 x".into(),
            format!("{:.2} x (min {:.2}, max {:.2})", self.ratio_median, self.ratio_min, self.ratio_max),
            self.ratio_median >= 0.85,
        );
        if let Some(fixed) = &self.fixed_rate_service {
            add(
                "reads: fixed-rate p99",
                "<= 2 ms".into(),
                format!("{:.2} ms at {:.0}/s", fixed.p99_ms, self.fixed_rate_rps),
                fixed.p99_ms <= 2.0,
            );
        }
        add(
            "reads: Enode requests",
            "0".into(),
            self.upstream_total_during_reads.to_string(),
            self.upstream_total_during_reads == 0,
        );
        let w = &self.webhooks;
        add(
            "webhooks: events/s acknowledged",
            ">= 50 000".into(),
            format!("{:.0}", w.events_per_sec),
            w.events_per_sec >= 50_000.0,
        );
        add("webhooks: ack p99", "<= 50 ms".into(), format!("{:.1} ms", w.ack_p99_ms), w.ack_p99_ms <= 50.0);
        add(
            "webhooks: store caught up",
            "<= 2 s".into(),
            match w.catch_up_secs {
                Some(s) => format!("{s:.2} s"),
                None => format!("not within the deadline ({} behind)", w.behind_at_deadline),
            },
            w.catch_up_secs.is_some_and(|s| s <= 2.0),
        );
        let m = &self.memory;
        add(
            "memory: RSS per vehicle",
            "<= 8 KiB".into(),
            format!(
                "{:.1} KiB ({:.1} KiB whole process / N)",
                m.bytes_per_vehicle / 1024.0,
                m.total_bytes_per_vehicle / 1024.0
            ),
            m.bytes_per_vehicle <= 8.0 * 1024.0,
        );
        add(
            "start-up: restored and serving",
            "<= 3 s (at 100 000)".into(),
            format!("{:.2} s for {}", self.startup_secs, self.vehicles),
            self.startup_secs <= 3.0,
        );
        self.targets = t;
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let m = &self.machine;
        let _ = writeln!(s, "\n## evconduit load run, {}\n", self.started_at);
        let _ = writeln!(
            s,
            "Machine: {} x {}, {:.0} GiB, {}; build: {}; load average before {:.2} {:.2} {:.2}, after {:.2} {:.2} {:.2}.",
            m.cpus,
            m.cpu_model,
            m.memory_gib,
            m.kernel,
            m.build,
            m.load_before[0],
            m.load_before[1],
            m.load_before[2],
            m.load_after[0],
            m.load_after[1],
            m.load_after[2]
        );
        let _ = writeln!(s, "Placement: {}", m.placement);
        if let Some(o) = &self.options {
            let _ = writeln!(
                s,
                "Run: {} vehicles, {} users with a key each, {:?} store, {} connections, {} x {:.0} s read rounds, {:.0} s webhooks on {} connections x {} events; status body {} bytes.\n",
                self.vehicles,
                self.users,
                o.backend,
                o.connections,
                o.rounds,
                o.read_secs.as_secs_f64(),
                o.webhook_secs.as_secs_f64(),
                o.webhook_connections,
                o.batch,
                self.status_body_bytes
            );
        }
        let _ = writeln!(
            s,
            "| phase | req/s | p50 ms | p99 ms | p99.9 ms | errors | server cores | harness cores | vs ceiling |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        if let Some(r) = &self.first_reads {
            row(&mut s, "ceiling, every vehicle once", &r.ceiling, "1.00");
            row(&mut s, "evconduit, every vehicle once (renders)", &r.service, &format!("{:.2}", r.ratio));
        }
        for (i, r) in self.rounds.iter().enumerate() {
            row(&mut s, &format!("ceiling, closed loop #{}", i + 1), &r.ceiling, "1.00");
            if let Some(cold) = &r.cold_ceiling {
                let of_ceiling = cold.requests_per_sec / r.ceiling.requests_per_sec.max(1.0);
                row(
                    &mut s,
                    &format!("ceiling over N bodies, closed loop #{}", i + 1),
                    cold,
                    &format!("{of_ceiling:.2}"),
                );
            }
            row(&mut s, &format!("evconduit, closed loop #{}", i + 1), &r.service, &format!("{:.2}", r.ratio));
        }
        if let (Some(c), Some(v)) = (&self.fixed_rate_ceiling, &self.fixed_rate_service) {
            let rate = self.fixed_rate_rps;
            row(&mut s, &format!("ceiling, fixed {rate:.0}/s"), c, "");
            row(&mut s, &format!("evconduit, fixed {rate:.0}/s"), v, "");
        }
        if let (Some(c), Some(v)) = (&self.fixed_rate_ceiling, &self.fixed_rate_service)
            && let (Some(c99), Some(cmax), Some(v99), Some(vmax)) =
                (c.generator_late_p99_ms, c.generator_late_max_ms, v.generator_late_p99_ms, v.generator_late_max_ms)
        {
            let _ = writeln!(
                s,
                "\nThe load generator's own lateness in those phases (sends it was waiting to make, late because \
                 its thread did not run): max {cmax:.1} ms against the ceiling, {vmax:.1} ms against evconduit (p99 \
                 {c99:.2} and {v99:.2} ms). A stall of the generator makes every send scheduled during it late, but \
                 counts here once per connection, so its p99 understates it: a max near a phase's tail says the \
                 tail is the host's."
            );
        }
        if let (Some(c), Some(v)) = (&self.fixed_rate_ceiling, &self.fixed_rate_service) {
            let busiest = |p: &Phase| {
                p.others_busiest.iter().map(|(name, ms)| format!("{name} {ms:.0}")).collect::<Vec<_>>().join(", ")
            };
            let _ = writeln!(
                s,
                "\nEvery other process on the machine in those phases (the host's daemons, the kernel's threads, \
                 PostgreSQL's processes): {:.0} ms of CPU during evconduit's (busiest, ms: {}), {:.0} ms during the \
                 ceiling's ({}). A kernel thread or daemon busy for tens of ms stalls whatever shares its core.",
                v.others_ms,
                busiest(v),
                c.others_ms,
                busiest(c)
            );
        }
        if let Some(lag) = &self.fixed_rate_service_runtime {
            let worst =
                lag.worst_within_ms.map_or_else(|| "some over 1 s".to_owned(), |ms| format!("none over {ms} ms"));
            let _ = writeln!(
                s,
                "\nevconduit's runtime during its fixed-rate phase (a canary due every 10 ms, {} wakes): late by \
                 more than 2 ms {} times, 5 ms {}, 10 ms {}, 25 ms {}; {worst}.",
                lag.wakes, lag.later_than_2ms, lag.later_than_5ms, lag.later_than_10ms, lag.later_than_25ms
            );
        }
        if !self.rounds.is_empty() {
            let _ = writeln!(
                s,
                "\nThe ceiling over N bodies answers each vehicle with its own copy of the body (memory-bound, \
                 nothing looked up): evconduit's closed-loop throughput is {:.2} x of it (median), against {:.2} x \
                 of the ceiling.",
                self.cold_ratio_median, self.ratio_median
            );
        }
        let w = &self.webhooks;
        let _ = writeln!(
            s,
            "\nWebhooks{}: {} deliveries, {} events, {:.0} events/s, ack p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {} errors; server {:.2} cores, harness {:.2} cores; store caught up {}.",
            if self.options.as_ref().is_some_and(|o| o.webhook_warm) {
                " (every actor woken first: --webhook-warm)"
            } else {
                ""
            },
            w.deliveries,
            w.events,
            w.events_per_sec,
            w.ack_p50_ms,
            w.ack_p99_ms,
            w.ack_max_ms,
            w.errors,
            w.server_cores,
            w.harness_cores,
            w.catch_up_secs
                .map_or_else(|| "NOT within the deadline".to_owned(), |s| format!("{s:.2} s after the load stopped"))
        );
        if let (Some(backlog), Some(written)) = (w.backlog_at_end, w.written_during_load) {
            let _ = writeln!(
                s,
                "Write-behind: {written} vehicle writes stored during the load, {backlog} waiting when it stopped{}{}.",
                w.catch_up_secs.map_or_else(String::new, |secs| format!(
                    " ({:.0} per second until caught up)",
                    backlog as f64 / secs.max(0.001)
                )),
                w.drained_secs.map_or_else(String::new, |secs| format!(
                    "; nothing left to write after {secs:.2} s by its own count"
                ))
            );
        }
        if !w.server_threads.is_empty() {
            let mut threads: Vec<_> = w.server_threads.iter().collect();
            threads.sort_by(|a, b| b.1.total_cmp(a.1));
            let listed: Vec<String> = threads.iter().map(|(name, cores)| format!("{name} {cores:.2}")).collect();
            let _ = writeln!(s, "Server cores during the webhooks, by thread: {}.", listed.join(", "));
        }
        let _ = writeln!(
            s,
            "Enode requests during the read phases: {} {:?}.",
            self.upstream_total_during_reads, self.upstream_during_reads
        );
        let mem = &self.memory;
        let _ = writeln!(
            s,
            "Memory: empty service {} KiB; with {} vehicles {} KiB at start, {} KiB after reads ({} KiB of it in huge pages), {} KiB after webhooks.",
            mem.empty_rss_kib,
            self.vehicles,
            mem.ready_rss_kib,
            mem.after_reads_rss_kib,
            mem.after_reads_huge_pages_kib,
            mem.after_webhooks_rss_kib
        );
        for p in &mem.ractor {
            let _ = writeln!(
                s,
                "Probe: {} idle {} cost {:.0} bytes each (RSS {} -> {} KiB).",
                p.actors, p.kind, p.bytes_per_actor, p.rss_before_kib, p.rss_after_kib
            );
        }
        let _ = writeln!(
            s,
            "Start-up: {:.2} s with {} vehicles ({:.2} s with an empty store).\n",
            self.startup_secs, self.vehicles, self.empty_startup_secs
        );
        let _ = writeln!(s, "| target | wanted | measured | met |");
        let _ = writeln!(s, "|---|---|---|---|");
        for t in &self.targets {
            let _ =
                writeln!(s, "| {} | {} | {} | {} |", t.what, t.target, t.measured, if t.met { "yes" } else { "NO" });
        }
        s
    }
}

fn row(s: &mut String, name: &str, p: &Phase, ratio: &str) {
    let _ = writeln!(
        s,
        "| {name} | {:.0} | {:.3} | {:.3} | {:.3} | {} | {:.2} | {:.2} | {ratio} |",
        p.requests_per_sec, p.p50_ms, p.p99_ms, p.p999_ms, p.errors, p.server_cores, p.harness_cores
    );
}
