//! The load harness: `cargo bench --bench load` (CI-sized), `-- --vehicles 100000` (the full run),
//! `-- --smoke` (proves it works, in seconds). See README "Performance" and `options.rs`.
//!
//! One run, in order: the simulator with N vehicles; the store seeded with its users (one API key
//! each) and vehicles; the service with an empty store (baseline memory); the service restored
//! from the seeded store (start-up time, memory); the ceiling (a bare axum handler serving the
//! same bytes); every vehicle read once from both (the service renders each status body on its
//! first read); closed-loop reads against the ceiling and the service, back to back, in rounds;
//! fixed-rate reads at half the service's maximum; the Enode requests the reads caused; signed
//! webhook deliveries and the store catching up; what ractor costs per actor. Printed as markdown,
//! written as JSON.

mod admin_probe;
mod ceiling;
mod http1;
mod loadgen;
mod options;
mod process;
mod ractor_probe;
mod report;
mod seed;
mod webhooks;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use evconduit::store::testing::TestDatabase;

use crate::http1::{Connection, get_request};
use crate::loadgen::RunResult;
use crate::options::{Backend, Options};
use crate::process::{Server, cpu_by_thread, cpu_time, free_addr, others_between, others_cpu};
use crate::report::{Machine, Phase, Report, Round, Webhooks, median};
use crate::webhooks::WebhookLoad;

const SERVICE: &str = env!("CARGO_BIN_EXE_evconduit");
const READY_TIMEOUT: Duration = Duration::from_secs(300);
const WARMUP: Duration = Duration::from_millis(500);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The roles this binary plays as a child process of itself.
    match args.first().map(String::as_str) {
        Some("--serve-ceiling") => {
            let usage = "--serve-ceiling ADDR FILE [COPIES]";
            let addr = args.get(1).and_then(|a| a.parse().ok()).expect(usage);
            let copies = args.get(3).map_or(1, |n| n.parse().expect(usage));
            ceiling::serve(addr, Path::new(args.get(2).expect(usage)), copies);
        }
        Some("--ractor-probe") => {
            let n = args.get(1).and_then(|a| a.parse().ok()).expect("--ractor-probe N KIND");
            ractor_probe::run(n, args.get(2).map_or("ractor", String::as_str));
        }
        _ => {}
    }
    let options = Options::parse(&args).unwrap_or_else(|e| {
        eprintln!("load: {e}");
        std::process::exit(2)
    });
    let placement = Placement::decide(options.pin);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(placement.harness_threads)
        .enable_all()
        .build()
        .expect("harness runtime");
    runtime.block_on(run(options, placement));
}

/// Where the server and the harness run.
struct Placement {
    /// taskset CPU list for the servers, when pinned.
    server_cpus: Option<String>,
    harness_threads: usize,
    description: String,
}

impl Placement {
    /// Pins this process (before any thread exists, so every thread inherits it) to every core
    /// but the first, and the servers to the first. With fewer than two cores nothing is pinned.
    fn decide(pin: bool) -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        if !pin || cpus < 2 {
            let why = if pin { "only one core" } else { "--pin false" };
            return Self {
                server_cpus: None,
                harness_threads: cpus,
                description: format!("not pinned ({why}): servers and harness share {cpus} core(s)"),
            };
        }
        // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it; the call
        // affects only this thread, before any other exists.
        let pinned = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for cpu in 1..cpus {
                libc::CPU_SET(cpu, &mut set);
            }
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
        };
        if !pinned {
            return Self {
                server_cpus: None,
                harness_threads: cpus,
                description: "not pinned (sched_setaffinity refused)".into(),
            };
        }
        let harness = cpus - 1;
        Self {
            server_cpus: Some("0".into()),
            harness_threads: harness,
            description: format!(
                "server (evconduit or ceiling) pinned to core 0 with taskset; harness (load generator, \
                 simulator) pinned to core(s) 1..{} with sched_setaffinity, {harness} tokio worker(s)",
                cpus - 1
            ),
        }
    }
}

async fn run(options: Options, placement: Placement) {
    let mut report = Report {
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        machine: machine(&placement),
        ..Report::default()
    };
    let n = options.vehicles;
    eprintln!("load: {}", report.machine.placement);
    eprintln!("load: starting the simulator with {n} vehicles");
    let sim = seed::start_sim(n).await;
    let db = database(options.backend).await;
    let empty_db = database(options.backend).await;
    eprintln!("load: seeding the store ({:?})", options.backend);
    let seeded_at = Instant::now();
    let seeded = {
        let store = db.store().await.expect("connect and migrate the store");
        seed::seed(&store, &sim).await
    };
    report.users = seeded.users;
    report.vehicles = seeded.vehicles.len();
    eprintln!(
        "load: seeded {} users and {} vehicles in {:.1?}",
        seeded.users,
        seeded.vehicles.len(),
        seeded_at.elapsed()
    );

    if options.backend == Backend::Postgres {
        // Fresh tables invite autovacuum, which then ran on the harness's core during the first
        // read phase (the ceiling's: 40 000 req/s against 98 000 with SQLite). Done now, and
        // waited for.
        let vacuumed_at = Instant::now();
        let pool = sqlx::PgPool::connect(db.url()).await.expect("connect to PostgreSQL");
        sqlx::query("VACUUM (ANALYZE)").execute(&pool).await.expect("vacuum the seeded store");
        pool.close().await;
        eprintln!("load: vacuumed and analysed the seeded store in {:.1?}", vacuumed_at.elapsed());
    }

    let work = std::env::temp_dir().join(format!("evconduit-load-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("create the harness's work directory");
    let cpus = placement.server_cpus.as_deref();

    // The service with nothing in it: what the process costs before any vehicle.
    let (empty_startup, empty_rss) = {
        let started = Instant::now();
        let mut server = service(&empty_db, &sim, free_addr(), &work, cpus);
        let took = server.wait_ready("/healthz", started, READY_TIMEOUT).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss = server.rss_kib();
        server.stop(Duration::from_secs(30)).await;
        (took, rss)
    };
    report.empty_startup_secs = empty_startup.as_secs_f64();
    report.memory.empty_rss_kib = empty_rss;

    // The service restored from the seeded store.
    let addr = free_addr();
    let started = Instant::now();
    let mut server = service(&db, &sim, addr, &work, cpus);
    let startup = server.wait_ready("/healthz", started, READY_TIMEOUT).await;
    report.startup_secs = startup.as_secs_f64();
    eprintln!("load: service restored {n} vehicles and served in {startup:.2?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    report.memory.ready_rss_kib = server.rss_kib();

    // Every vehicle, read with its owner's key: the pool both servers are asked from.
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
        seeded.vehicles.iter().map(|v| get_request(&format!("/api/status/{}", v.enode_id), Some(&v.key))).collect(),
    );
    let canned = capture(addr, &requests[0]).await;
    report.status_body_bytes = canned.body.len();
    let canned_path = work.join("canned.json");
    std::fs::write(&canned_path, serde_json::to_vec(&canned).expect("serialise")).expect("write canned answer");
    let self_exe = std::env::current_exe().expect("own path");
    let start_ceiling = |name: &'static str, copies: usize| {
        let addr = free_addr();
        let args = [
            "--serve-ceiling".to_owned(),
            addr.to_string(),
            canned_path.to_string_lossy().into_owned(),
            copies.to_string(),
        ];
        (addr, Server::spawn(name, &self_exe, &args.each_ref().map(String::as_str), &[], &work, cpus, addr))
    };
    let (ceiling_addr, mut ceiling) = start_ceiling("ceiling", 1);
    let (cold_addr, mut cold_ceiling) = start_ceiling("ceiling over N bodies", n);
    ceiling.wait_ready("/healthz", Instant::now(), READY_TIMEOUT).await;
    cold_ceiling.wait_ready("/healthz", Instant::now(), READY_TIMEOUT).await;

    sim.reset_stats();
    let c = options.connections;
    // The first poll of every vehicle, on both: the service renders each status body on its first
    // read (a state nobody reads is never rendered), so this is where it pays for that, once per
    // vehicle, as after every start. Reported; the rounds below measure polls of vehicles read
    // before, as HA's polls are between one change and the next.
    let ceiling_first = measure(&ceiling, || loadgen::each_once(ceiling_addr, Arc::clone(&requests), c)).await;
    // Its copies, like the service's bodies, are shared on their first answer.
    measure(&cold_ceiling, || loadgen::each_once(cold_addr, Arc::clone(&requests), c)).await;
    let service_first = measure(&server, || loadgen::each_once(addr, Arc::clone(&requests), c)).await;
    let ratio = service_first.requests_per_sec / ceiling_first.requests_per_sec.max(1.0);
    eprintln!(
        "load: first read of every vehicle: ceiling {:.0}/s, evconduit {:.0}/s ({ratio:.2} x)",
        ceiling_first.requests_per_sec, service_first.requests_per_sec
    );
    report.first_reads =
        Some(Round { ceiling: ceiling_first, service: service_first, ratio, cold_ceiling: None, cold_ratio: None });

    // Reads, closed loop: the ceiling, the ceiling over N bodies, then the service, back to back,
    // per round.
    let closed_loop =
        |server_addr| loadgen::closed_loop(server_addr, Arc::clone(&requests), c, WARMUP, options.read_secs);
    for round in 1..=options.rounds {
        let ceiling_phase = measure(&ceiling, || closed_loop(ceiling_addr)).await;
        let cold_phase = measure(&cold_ceiling, || closed_loop(cold_addr)).await;
        let service_phase = measure(&server, || closed_loop(addr)).await;
        let ratio = service_phase.requests_per_sec / ceiling_phase.requests_per_sec.max(1.0);
        let cold_ratio = service_phase.requests_per_sec / cold_phase.requests_per_sec.max(1.0);
        eprintln!(
            "load: round {round}: ceiling {:.0}/s, over N bodies {:.0}/s, evconduit {:.0}/s ({ratio:.2} x; \
             {cold_ratio:.2} x of N bodies)",
            ceiling_phase.requests_per_sec, cold_phase.requests_per_sec, service_phase.requests_per_sec
        );
        report.rounds.push(Round {
            ceiling: ceiling_phase,
            service: service_phase,
            ratio,
            cold_ceiling: Some(cold_phase),
            cold_ratio: Some(cold_ratio),
        });
    }
    let mut ratios: Vec<f64> = report.rounds.iter().map(|r| r.ratio).collect();
    report.ratio_median = median(&mut ratios);
    report.ratio_min = ratios.first().copied().unwrap_or(0.0);
    report.ratio_max = ratios.last().copied().unwrap_or(0.0);
    let mut cold_ratios: Vec<f64> = report.rounds.iter().filter_map(|r| r.cold_ratio).collect();
    report.cold_ratio_median = median(&mut cold_ratios);
    let mut service_rps: Vec<f64> = report.rounds.iter().map(|r| r.service.requests_per_sec).collect();

    // Reads at a fixed rate: half the service's closed-loop maximum, on both servers.
    let rate = (median(&mut service_rps) * 0.5).max(1.0);
    report.fixed_rate_rps = rate;
    // The service's runtime canary around its phase: a tail with the runtime on time is the
    // machine's (or the kernel's), not a stall of the service's own.
    let admin = admin_probe::AdminProbe::new(addr);
    let lag_before = admin.runtime_lag().await;
    report.fixed_rate_service =
        Some(measure(&server, || loadgen::open_loop(addr, Arc::clone(&requests), c, rate, options.read_secs)).await);
    let lag_after = admin.runtime_lag().await;
    report.fixed_rate_service_runtime = lag_before.zip(lag_after).map(|(before, after)| before.until(&after));
    report.fixed_rate_ceiling = Some(
        measure(&ceiling, || loadgen::open_loop(ceiling_addr, Arc::clone(&requests), c, rate, options.read_secs)).await,
    );
    eprintln!("load: fixed rate {rate:.0}/s done");

    // What the reads cost Enode.
    let stats = sim.stats();
    for (route, statuses) in &stats.requests {
        report.upstream_during_reads.insert(route.clone(), statuses.values().sum());
    }
    report.upstream_total_during_reads = stats.total_requests;
    report.memory.after_reads_rss_kib = server.rss_kib();
    report.memory.after_reads_huge_pages_kib = server.huge_pages_kib();
    ceiling.stop(Duration::from_secs(5)).await;
    cold_ceiling.stop(Duration::from_secs(5)).await;

    // Webhooks.
    let load = Arc::new(WebhookLoad::new(&seeded.vehicles));
    if options.webhook_warm {
        eprintln!("load: one event for each of {n} vehicles first (every actor woken)");
        let refused = load.wake_all(addr, options.webhook_connections, options.batch).await;
        let settled = load.wait_caught_up(options.backend, db.url(), &admin, Duration::from_secs(60)).await;
        if refused > 0 || settled.stored.is_none() {
            eprintln!("load: the warm-up had {refused} deliveries refused and {} vehicles not stored", settled.behind);
        }
    }
    eprintln!("load: webhooks for {:.0?}", options.webhook_secs);
    let lag_before = admin.write_behind().await;
    let cpu_before = (server.cpu(), cpu_time(std::process::id()));
    let threads_before = cpu_by_thread(server.pid());
    let result = load.run(addr, options.webhook_connections, options.batch, options.webhook_secs).await;
    let cpu_after = (server.cpu(), cpu_time(std::process::id()));
    let threads_after = cpu_by_thread(server.pid());
    let lag_at_end = admin.write_behind().await;
    let catch_up = load.wait_caught_up(options.backend, db.url(), &admin, Duration::from_secs(30)).await;
    let secs = result.elapsed.as_secs_f64();
    report.webhooks = Webhooks {
        deliveries: result.deliveries,
        events: result.events,
        errors: result.errors,
        events_per_sec: result.events as f64 / secs,
        ack_p50_ms: result.ack.value_at_quantile(0.5) as f64 / 1000.0,
        ack_p99_ms: result.ack.value_at_quantile(0.99) as f64 / 1000.0,
        ack_max_ms: result.ack.max() as f64 / 1000.0,
        catch_up_secs: catch_up.stored.map(|d| d.as_secs_f64()),
        drained_secs: catch_up.drained.map(|d| d.as_secs_f64()),
        behind_at_deadline: catch_up.behind,
        backlog_at_end: lag_at_end.map(|lag| lag.backlog),
        written_during_load: lag_before.zip(lag_at_end).map(|(before, end)| end.written.saturating_sub(before.written)),
        server_cores: (cpu_after.0 - cpu_before.0).as_secs_f64() / secs,
        harness_cores: (cpu_after.1 - cpu_before.1).as_secs_f64() / secs,
        server_threads: threads_after
            .into_iter()
            .map(|(name, cpu)| {
                let before = threads_before.get(&name).copied().unwrap_or_default();
                (name, cpu.saturating_sub(before).as_secs_f64() / secs)
            })
            // Threads that barely ran (the main thread, a walk) would only clutter the line.
            .filter(|(_, cores)| *cores >= 0.005)
            .collect(),
    };
    report.memory.after_webhooks_rss_kib = server.rss_kib();
    server.stop(Duration::from_secs(60)).await;

    let m = &mut report.memory;
    let vehicles = report.vehicles.max(1) as f64;
    m.bytes_per_vehicle = (m.after_reads_rss_kib.saturating_sub(m.empty_rss_kib) * 1024) as f64 / vehicles;
    m.total_bytes_per_vehicle = (m.after_reads_rss_kib * 1024) as f64 / vehicles;
    if options.ractor_probe > 0 {
        for kind in ["ractor", "task"] {
            m.ractor.push(probe(&self_exe, options.ractor_probe, kind, cpus));
        }
    }

    report.machine.load_after = load_average();
    report.options = Some(options.clone());
    report.judge();
    println!("{}", report.markdown());
    if let Some(dir) = options.json.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(&options.json, serde_json::to_vec_pretty(&report).expect("serialise report")) {
        Ok(()) => eprintln!("load: JSON report written to {}", options.json.display()),
        Err(e) => eprintln!("load: could not write {}: {e}", options.json.display()),
    }
    let _ = std::fs::remove_dir_all(&work);
    sim.shutdown().await;
    drop(empty_db);
    db.drop_db().await;
}

/// `evconduit serve` on `addr` against `db`, with Enode being the simulator.
fn service(
    db: &TestDatabase,
    sim: &evconduit::enode::sim::SimHandle,
    addr: std::net::SocketAddr,
    dir: &Path,
    cpus: Option<&str>,
) -> Server {
    let env = [
        ("DATABASE_URL", db.url().to_owned()),
        ("LISTEN", addr.to_string()),
        ("ADMIN_TOKEN", admin_probe::ADMIN_TOKEN.to_owned()),
        ("ENODE_WEBHOOK_SECRETS", webhooks::SECRET.to_owned()),
        ("ENODE_CLIENT_ID", sim.client_id().to_owned()),
        ("ENODE_CLIENT_SECRET", sim.client_secret().to_owned()),
        ("ENODE_API_URL", sim.base_url().to_owned()),
        ("ENODE_TOKEN_URL", sim.token_url()),
        // Warnings reach the harness's stderr; EVCONDUIT_LOAD_SERVER_LOG=info shows the
        // service's own account of start-up (how long restoring took) and shutdown.
        ("LOG_LEVEL", std::env::var("EVCONDUIT_LOAD_SERVER_LOG").unwrap_or_else(|_| "warn".to_owned())),
    ]
    .map(|(k, v)| (format!("EVCONDUIT_{k}"), v));
    // Other service settings pass through from the harness's environment (say,
    // EVCONDUIT_WRITE_BEHIND_BATCH=100), so a setting's effect can be measured without a rebuild.
    // The ones above are the harness's to choose; EVCONDUIT_LOAD_* are its own options and
    // EVCONDUIT_TEST_* the test suite's.
    let passed: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("EVCONDUIT_") && !k.starts_with("EVCONDUIT_LOAD_") && !k.starts_with("EVCONDUIT_TEST_")
        })
        .filter(|(k, _)| !env.iter().any(|(own, _)| own == k))
        .collect();
    let env: Vec<(String, String)> = env.into_iter().chain(passed).collect();
    Server::spawn("evconduit", Path::new(SERVICE), &["serve"], &env, dir, cpus, addr)
}

async fn database(backend: Backend) -> TestDatabase {
    match backend {
        Backend::Sqlite => TestDatabase::sqlite(),
        Backend::Postgres => TestDatabase::postgres().await.expect("PostgreSQL is not reachable (see README, Testing)"),
    }
}

/// Runs one load phase and reports it with the CPU the server and the harness used meanwhile.
async fn measure<F, Fut>(server: &Server, phase: F) -> Phase
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = RunResult>,
{
    let own = std::process::id();
    let others_before = others_cpu(&[own, server.pid()]);
    let before = (server.cpu(), cpu_time(own), Instant::now());
    let result = phase().await;
    let wall = before.2.elapsed().as_secs_f64();
    let server_cores = (server.cpu() - before.0).as_secs_f64() / wall;
    let harness_cores = (cpu_time(own) - before.1).as_secs_f64() / wall;
    let (others, busiest) = others_between(&others_before, &others_cpu(&[own, server.pid()]));
    Phase::new(&result, server_cores, harness_cores).with_others(others, busiest)
}

/// One real status answer from the service, for the ceiling to serve.
async fn capture(addr: std::net::SocketAddr, request: &[u8]) -> ceiling::Canned {
    let mut conn = Connection::open(addr).await.expect("connect to the service");
    let response = conn.send(request).await.expect("status request");
    assert_eq!(
        response.status,
        200,
        "the service answers a seeded vehicle: {}",
        String::from_utf8_lossy(&response.body)
    );
    ceiling::Canned {
        headers: response.headers,
        body: String::from_utf8(response.body).expect("the status body is UTF-8 JSON"),
    }
}

fn probe(exe: &Path, actors: usize, kind: &str, cpus: Option<&str>) -> ractor_probe::ProbeResult {
    let mut command = match cpus {
        Some(cpus) => {
            let mut c = std::process::Command::new("taskset");
            c.args(["-c", cpus]).arg(exe);
            c
        }
        None => std::process::Command::new(exe),
    };
    let output = command.args(["--ractor-probe", &actors.to_string(), kind]).output().expect("run the ractor probe");
    let line = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("probe {kind} printed {line:?}: {e}"))
}

fn machine(placement: &Placement) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or_else(|| "unknown CPU".to_owned(), |m| m.trim().to_owned());
    let memory_kib: f64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".into(), |k| format!("Linux {}", k.trim()));
    Machine {
        cpus: num_cpus_online(),
        cpu_model: model,
        memory_gib: memory_kib / 1024.0 / 1024.0,
        kernel,
        load_before: load_average(),
        load_after: [0.0; 3],
        build: if cfg!(debug_assertions) { "debug (numbers meaningless)" } else { "release" },
        placement: placement.description.clone(),
    }
}

fn num_cpus_online() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1)
}

fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut values = text.split_whitespace().filter_map(|v| v.parse().ok());
    [values.next().unwrap_or(0.0), values.next().unwrap_or(0.0), values.next().unwrap_or(0.0)]
}
