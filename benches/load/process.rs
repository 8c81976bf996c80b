//! Servers under test run as their own processes, so that their memory and start-up are theirs
//! alone: the real release binary (`evconduit serve`, configured by environment) and the ceiling
//! (this harness binary re-run with `--serve-ceiling`). Both can be pinned to one core.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::http1::{Connection, get_request};

pub struct Server {
    pub name: &'static str,
    pub addr: SocketAddr,
    child: Child,
}

impl Server {
    /// Starts `program args..` pinned to `cpus` (a taskset list like "0") when given, with
    /// exactly the environment `env` plus PATH/HOME, in `dir`.
    pub fn spawn(
        name: &'static str,
        program: &Path,
        args: &[&str],
        env: &[(String, String)],
        dir: &Path,
        cpus: Option<&str>,
        addr: SocketAddr,
    ) -> Self {
        let mut command = match cpus {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.args(["-c", cpus]).arg(program);
                c
            }
            None => Command::new(program),
        };
        command.args(args).current_dir(dir).env_clear().stdin(Stdio::null()).stdout(Stdio::null());
        // GLIBC_TUNABLES too, so an allocator setting can be measured on the servers.
        for var in ["PATH", "HOME", "TMPDIR", "GLIBC_TUNABLES"] {
            if let Some(value) = std::env::var_os(var) {
                command.env(var, value);
            }
        }
        command.envs(env.iter().map(|(k, v)| (k, v)));
        let child = command.spawn().unwrap_or_else(|e| panic!("cannot start {name} ({}): {e}", program.display()));
        Self { name, addr, child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `GET path` answers 200; returns how long that took from `since`.
    pub async fn wait_ready(&mut self, path: &str, since: Instant, timeout: Duration) -> Duration {
        let request = get_request(path, None);
        loop {
            if let Ok(mut conn) = Connection::open(self.addr).await
                && let Ok(status) = conn.status(&request).await
                && status == 200
            {
                return since.elapsed();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited during start-up ({status})", self.name);
            }
            assert!(since.elapsed() < timeout, "{} not ready after {timeout:?}", self.name);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Resident memory now, KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        status_field(self.pid(), "VmRSS:")
    }

    /// Of the resident memory, what is in transparent huge pages, KiB (`AnonHugePages`). Where
    /// the kernel gives them only when asked (`madvise`, as on the development machine), glibc asks
    /// only under `GLIBC_TUNABLES=glibc.malloc.hugetlb=1`, and then in some starts only; they move
    /// the read figures (README, "Reads").
    pub fn huge_pages_kib(&self) -> u64 {
        proc_field(self.pid(), "smaps_rollup", "AnonHugePages:")
    }

    /// CPU time used so far (user + system).
    pub fn cpu(&self) -> Duration {
        cpu_time(self.pid())
    }

    /// SIGTERM, as an orchestrator stops it (the service flushes); SIGKILL after `grace`.
    pub async fn stop(mut self, grace: Duration) -> Duration {
        let started = Instant::now();
        // SAFETY: kill(2) with a pid this process spawned and still owns (not yet reaped).
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        while started.elapsed() < grace {
            if let Ok(Some(_)) = self.child.try_wait() {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        eprintln!("{} did not stop within {grace:?}; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
        started.elapsed()
    }
}

impl Drop for Server {
    /// A panicking harness must not leave servers behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A free port on the loopback interface (bound, then released for the server to take).
pub fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address")
}

/// A `/proc/<pid>/status` field in KiB (0 when unreadable).
pub fn status_field(pid: u32, field: &str) -> u64 {
    proc_field(pid, "status", field)
}

/// A field in KiB of `/proc/<pid>/<file>` (0 when unreadable).
fn proc_field(pid: u32, file: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// User + system CPU time of a process, from `/proc/<pid>/stat`.
pub fn cpu_time(pid: u32) -> Duration {
    stat_cpu(&format!("/proc/{pid}/stat"))
}

/// CPU time so far of each kind of thread of a process, by thread name (`comm`: tokio's workers
/// are all `tokio-rt-worker`, sqlx's SQLite threads `sqlx-sqlite-wor`, truncated by the kernel).
/// A thread that has exited is no longer listed, so a difference of two of these counts the
/// threads that lived through both.
pub fn cpu_by_thread(pid: u32) -> BTreeMap<String, Duration> {
    let mut by_name = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return by_name };
    for (name, cpu) in tasks.flatten().filter_map(|task| named_cpu(&task.path())) {
        *by_name.entry(name).or_default() += cpu;
    }
    by_name
}

/// CPU time so far of every process on the machine but `exclude` (kernel threads included), by
/// pid, with its name: what the host ran beside the server and the harness.
pub fn others_cpu(exclude: &[u32]) -> BTreeMap<u32, (String, Duration)> {
    let mut others = BTreeMap::new();
    let Ok(procs) = std::fs::read_dir("/proc") else { return others };
    for entry in procs.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
        if exclude.contains(&pid) {
            continue;
        }
        if let Some(named) = named_cpu(&entry.path()) {
            others.insert(pid, named);
        }
    }
    others
}

/// The name (`comm`) and CPU time so far of a process or thread, from its `/proc` directory;
/// None when it has gone.
fn named_cpu(dir: &Path) -> Option<(String, Duration)> {
    let name = std::fs::read_to_string(dir.join("comm")).ok()?;
    Some((name.trim().to_owned(), stat_cpu(&dir.join("stat").to_string_lossy())))
}

/// What other processes ran between two `others_cpu` snapshots: the total, and the busiest names
/// (processes of one name summed), most first. A process that started meanwhile counts whole.
pub fn others_between(
    before: &BTreeMap<u32, (String, Duration)>,
    after: &BTreeMap<u32, (String, Duration)>,
) -> (Duration, Vec<(String, Duration)>) {
    let mut by_name: BTreeMap<&str, Duration> = BTreeMap::new();
    for (pid, (name, cpu)) in after {
        let earlier = before.get(pid).map_or(Duration::ZERO, |(_, cpu)| *cpu);
        let used = cpu.saturating_sub(earlier);
        if !used.is_zero() {
            *by_name.entry(name).or_default() += used;
        }
    }
    let total = by_name.values().sum();
    let mut busiest: Vec<(String, Duration)> = by_name.into_iter().map(|(n, d)| (n.to_owned(), d)).collect();
    busiest.sort_by_key(|(_, used)| std::cmp::Reverse(*used));
    (total, busiest)
}

/// utime + stime of a `/proc/.../stat` file (zero when unreadable).
fn stat_cpu(path: &str) -> Duration {
    let Ok(stat) = std::fs::read_to_string(path) else { return Duration::ZERO };
    // Fields after the command name (which may contain spaces) are space separated; utime and
    // stime are fields 14 and 15, i.e. the 12th and 13th after the closing parenthesis.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else { return Duration::ZERO };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11..13).map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / hz)
}
