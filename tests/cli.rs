//! The command line, through the real binary: scripts rely on the command names and on the last
//! line of output (a user id, a key).

use std::process::{Command, Output};

use evconduit::store::testing::TestDatabase;

fn evconduit(db: &TestDatabase, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_evconduit"))
        .args(args)
        .env("EVCONDUIT_DATABASE_URL", db.url())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run evconduit")
}

fn last_line(output: &Output) -> String {
    assert!(output.status.success(), "failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).lines().last().unwrap_or_default().trim().to_owned()
}

#[test]
fn users_and_keys_from_the_command_line() {
    let db = TestDatabase::sqlite();
    assert!(evconduit(&db, &["migrate"]).status.success());

    let id = "6f0e2a40-3c1d-4e5f-8a9b-0c1d2e3f4a5b";
    let printed =
        last_line(&evconduit(&db, &["users", "add", "--email", "kept@example.com", "--id", id, "--tier", "basic"]));
    assert_eq!(printed, id, "an existing id is kept and printed alone");
    let trial = last_line(&evconduit(&db, &["users", "add", "--email", "Trial@Example.com", "--name", "Tia"]));
    assert!(uuid::Uuid::parse_str(&trial).is_ok(), "{trial}");
    let duplicate = evconduit(&db, &["users", "add", "--email", "trial@example.com"]);
    assert!(!duplicate.status.success(), "emails are unique, whatever their case");

    let key = last_line(&evconduit(&db, &["keys", "create", "--email", "kept@example.com", "--label", "garage"]));
    assert!(key.starts_with("evc_") && key.len() == 44, "the key alone: {key}");
    let listed = evconduit(&db, &["keys", "list", "--email", "kept@example.com"]);
    let listing = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(listing.contains("garage") && listing.contains("active"), "{listing}");
    assert!(!listing.contains(&key), "the key is shown once, never listed");
    let key_id = listing.split_whitespace().next().unwrap().to_owned();
    assert!(evconduit(&db, &["keys", "revoke", "--id", &key_id]).status.success());
    let listing =
        String::from_utf8_lossy(&evconduit(&db, &["keys", "list", "--email", "kept@example.com"]).stdout).to_string();
    assert!(listing.contains("revoked"), "{listing}");

    let users = String::from_utf8_lossy(&evconduit(&db, &["users", "list"]).stdout).to_string();
    assert!(users.contains("kept@example.com") && users.contains("basic"), "{users}");
    assert!(users.contains("pro") && users.contains("trial until"), "{users}");
    let unknown = evconduit(&db, &["keys", "create", "--email", "nobody@example.com"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("nobody@example.com"));
}
