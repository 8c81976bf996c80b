//! `evconduit demo`, the real binary: it prints a key and its addresses, the demo user's cars are
//! served at once, their state moves within seconds (simulator -> signed webhooks -> actors ->
//! HA reads, all over HTTP), SIGTERM ends it cleanly, and a rerun in the same directory reuses
//! the database and still moves.
#![cfg(unix)]

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// Generous: a loaded 2-core machine may be compiling next to this test.
const START_TIMEOUT: Duration = Duration::from_secs(120);
const CHANGE_TIMEOUT: Duration = Duration::from_secs(60);
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_live_changing_state_and_stops_cleanly_and_reruns() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = run_once(dir.path()).await;
    assert!(dir.path().join("evconduit-demo.db").exists(), "the demo's database is a file in the working directory");
    let second = run_once(dir.path()).await;
    assert_ne!(first.key, second.key, "a rerun prints a new key");
    assert_eq!(first.cars, second.cars, "a rerun reuses the same users and cars");
}

struct Run {
    key: String,
    cars: Vec<String>,
}

async fn run_once(dir: &Path) -> Run {
    let stderr = std::fs::File::create(dir.join("demo.log")).expect("log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_evconduit"))
        .arg("demo")
        .current_dir(dir)
        .env("EVCONDUIT_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .env_remove("EVCONDUIT_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("start the demo");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let printed = tokio::time::timeout(START_TIMEOUT, read_banner(&mut lines))
        .await
        .unwrap_or_else(|_| panic!("no banner within {START_TIMEOUT:?}; log:\n{}", log(dir)));
    // Keep reading stdout so the demo never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let key = printed["API key: "].clone();
    let base = printed["Listening on "].clone();
    let sim = printed["Enode simulator: "].clone();
    assert!(key.starts_with("evc_"), "{key}");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("http client");

    // The demo user's cars are served as soon as the banner is out.
    let vehicles = get_json(&http, &format!("{base}/api/user/vehicles"), &key).await;
    let mut cars: Vec<String> = vehicles
        .as_array()
        .expect("an array of vehicles")
        .iter()
        .filter_map(|v| v["id"].as_str().map(str::to_owned))
        .collect();
    cars.sort();
    assert!(!cars.is_empty(), "the demo user has cars: {vehicles}");

    // Some car's state moves within seconds, and it came by webhook.
    let started = Instant::now();
    let mut first_seen: HashMap<String, (Value, Value)> = HashMap::new();
    let moved = 'poll: loop {
        for id in &cars {
            let response =
                http.get(format!("{base}/api/status/{id}")).bearer_auth(&key).send().await.expect("status request");
            assert_eq!(response.status(), 200, "status of {id}");
            let source = header(&response, "x-data-source");
            let body: Value = response.json().await.expect("status json");
            let now = (body["lastSeen"].clone(), body["chargeState"]["batteryLevel"].clone());
            let first = first_seen.entry(id.clone()).or_insert_with(|| now.clone());
            if *first != now {
                break 'poll (id.clone(), first.clone(), now, source);
            }
        }
        assert!(
            started.elapsed() < CHANGE_TIMEOUT,
            "no car's state changed within {CHANGE_TIMEOUT:?}: {first_seen:?}; log:\n{}",
            log(dir)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let (id, before, after, source) = moved;
    eprintln!("{id} moved from {before:?} to {after:?} ({source}) after {:?}", started.elapsed());
    assert_eq!(source, "webhook", "the change arrived by Enode webhook");

    // The service set up the webhook itself, at the simulator, and the simulator delivered.
    let stats = get_json(&http, &format!("{sim}/_sim/stats"), &key).await;
    assert_eq!(stats["requests"]["POST /webhooks"]["200"], 1, "one subscription created: {}", stats["requests"]);
    assert!(stats["webhooks"]["succeeded"].as_u64().unwrap_or(0) > 0, "{}", stats["webhooks"]);

    stop(&mut child, dir).await;
    Run { key, cars }
}

/// Reads stdout until the three fixed lines have been printed; returns them by prefix.
async fn read_banner(lines: &mut Lines<BufReader<ChildStdout>>) -> HashMap<&'static str, String> {
    const PREFIXES: [&str; 3] = ["API key: ", "Listening on ", "Enode simulator: "];
    let mut found = HashMap::new();
    while found.len() < PREFIXES.len() {
        let line = lines.next_line().await.expect("read stdout").expect("the demo exited before its banner");
        for prefix in PREFIXES {
            if let Some(rest) = line.strip_prefix(prefix) {
                found.insert(prefix, rest.trim().to_owned());
            }
        }
    }
    for url in [&found["Listening on "], &found["Enode simulator: "]] {
        assert!(url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"), "a real bound address: {url}");
    }
    found
}

async fn get_json(http: &reqwest::Client, url: &str, key: &str) -> Value {
    let response = http.get(url).bearer_auth(key).send().await.expect("request");
    assert_eq!(response.status(), 200, "{url}");
    response.json().await.expect("json")
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// SIGTERM, as a service manager stops it; the graceful path must end with exit code 0.
async fn stop(child: &mut Child, dir: &Path) {
    let pid = child.id().expect("the demo is running");
    let kill = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("run kill");
    assert!(kill.success());
    let status = tokio::time::timeout(EXIT_TIMEOUT, child.wait())
        .await
        .unwrap_or_else(|_| panic!("no exit within {EXIT_TIMEOUT:?} of SIGTERM; log:\n{}", log(dir)))
        .expect("wait");
    assert!(status.success(), "exit status {status:?}; log:\n{}", log(dir));
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("demo.log")).unwrap_or_default()
}
