//! Checkers for chapter 14's exercises. They are ignored by plain `cargo
//! test`: run them with `cargo xtask exercise ch14` (or `cargo xtask
//! exercise ch14 personality`). The book's chapter 14 page describes each
//! exercise; reference solutions are in `book/exercises/ch14-oci-runtime/`.
//!
//! Every checker drives `minibox-runc` as an engine would, on a busybox
//! bundle of its own (`common::Sandbox`), and ends by checking that nothing
//! is left: no state directory, no cgroup, no process, no mount.

mod common;

use std::os::unix::process::CommandExt;
use std::process::Command;

use common::{BUSYBOX, Ran, Sandbox};
use serde_json::{Value, json};

/// What a run printed, for a checker's message.
fn seen(ran: &Ran) -> String {
    format!(
        "exit {:?}, stdout {:?}, stderr {:?}",
        ran.code, ran.stdout, ran.stderr
    )
}

/// `run --bundle B ID` of the sandbox's bundle, waited for: the container's
/// output is `run`'s.
fn run(sandbox: &Sandbox, id: &str) -> Ran {
    let bundle = sandbox.bundle.to_str().expect("UTF-8 path");
    sandbox.runc(&["run", "--bundle", bundle, id])
}

/// `uname -m` on the host, with personality(2) `persona` set first: what the
/// kernel reports to a process of that personality (`i686` for PER_LINUX32
/// on x86_64, `armv8l` on aarch64).
fn machine_with(persona: libc::c_ulong) -> String {
    let mut uname = Command::new(BUSYBOX);
    uname.args(["uname", "-m"]);
    // SAFETY: personality(2) is a system call on integers, safe between
    // fork and exec.
    unsafe {
        uname.pre_exec(move || {
            if libc::personality(persona) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = uname.output().expect("run busybox uname -m on the host");
    assert!(
        out.status.success(),
        "busybox uname -m on the host: {out:?}"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "an exercise: cargo xtask exercise ch14 personality"]
fn exercise_personality() {
    if !harness::require_root("exercise_personality") {
        return;
    }
    let sandbox = Sandbox::new("ex-personality");
    let linux32 = machine_with(0x0008); // PER_LINUX32
    let host = machine_with(0x0000); // PER_LINUX
    assert_ne!(
        linux32, host,
        "this kernel reports the same machine for both personalities"
    );
    for (domain, expected) in [("LINUX32", &linux32), ("LINUX", &host)] {
        let id = format!("persona-{}", domain.to_lowercase());
        let mut config = sandbox.config(&id, &["uname", "-m"]);
        config["linux"]["personality"] = json!({"domain": domain});
        sandbox.write_config(&config);
        let ran = run(&sandbox, &id);
        assert!(
            ran.code == Some(0) && &ran.stdout == expected,
            "expected a container with linux.personality.domain {domain} to print {expected:?} \
             for `uname -m` (what the kernel says to a process of that personality), but saw {}",
            seen(&ran)
        );
    }
    // runc's tests send an empty list of flags with the domain.
    let id = "persona-flags";
    let mut config = sandbox.config(id, &["uname", "-m"]);
    config["linux"]["personality"] = json!({"domain": "LINUX32", "flags": []});
    sandbox.write_config(&config);
    let ran = run(&sandbox, id);
    assert!(
        ran.code == Some(0) && ran.stdout == linux32,
        "expected {linux32:?} with an empty list of personality flags too, but saw {}",
        seen(&ran)
    );
    // A domain the specification does not name: one line, naming the field.
    let id = "persona-bad";
    let mut config = sandbox.config(id, &["uname", "-m"]);
    config["linux"]["personality"] = json!({"domain": "LINUX64"});
    sandbox.write_config(&config);
    let bundle = sandbox.bundle.to_str().expect("UTF-8 path");
    let refused = sandbox.runc(&["create", "--bundle", bundle, id]);
    let line = refused.one_line_failure();
    assert!(
        line.contains("linux.personality.domain") && line.contains("LINUX64"),
        "expected `create` with linux.personality.domain LINUX64 to fail naming the field and \
         the value, but it said {line:?}"
    );
    sandbox.assert_clean();
}

/// The container's memory use as its cgroup counts it, read by the checker
/// itself: v1's `memory.usage_in_bytes` in the memory hierarchy, or v2's
/// `memory.current`.
fn memory_usage(sandbox: &Sandbox, id: &str) -> u64 {
    let hierarchies = harness::cgroups::hierarchies();
    let (hierarchy, file) = match hierarchies
        .iter()
        .find(|h| h.controllers.iter().any(|c| c == "memory"))
    {
        Some(v1) => (v1, "memory.usage_in_bytes"),
        None => (
            hierarchies
                .iter()
                .find(|h| h.fs_type == "cgroup2")
                .expect("a memory hierarchy or cgroup v2"),
            "memory.current",
        ),
    };
    let path = hierarchy
        .parent_dir(&sandbox.cgroup_parent)
        .join(id)
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("expected to read {}, but: {e}", path.display()));
    text.trim().parse().expect("a number of bytes")
}

#[test]
#[ignore = "an exercise: cargo xtask exercise ch14 events-stats"]
fn exercise_events_stats() {
    if !harness::require_root("exercise_events_stats") {
        return;
    }
    let sandbox = Sandbox::new("ex-events");
    let id = "counted";
    sandbox.write_config(&sandbox.config(id, &["sh", "-c", "sleep 100 & sleep 100 & wait"]));
    sandbox.create_and_start(id);
    sandbox.wait_for_procs(id, 3);
    let before = memory_usage(&sandbox, id);
    let ran = sandbox.runc(&["events", "--stats", id]);
    let after = memory_usage(&sandbox, id);
    assert_eq!(
        ran.code,
        Some(0),
        "expected `events --stats {id}` to succeed, but saw {}",
        seen(&ran)
    );
    let lines: Vec<&str> = ran.stdout.lines().collect();
    let event: Option<Value> = match lines[..] {
        [line] => serde_json::from_str(line).ok(),
        _ => None,
    };
    let Some(event) = event else {
        panic!(
            "expected `events --stats` to print one line of JSON, but it printed {:?}",
            ran.stdout
        );
    };
    assert!(
        event["type"] == "stats" && event["id"] == id,
        "expected \"type\": \"stats\" and \"id\": {id:?}, but the event is {event}"
    );
    let data = &event["data"];
    assert_eq!(
        data["pids"]["current"],
        json!(3),
        "expected data.pids.current 3 (sh and its two sleeps: the cgroup's pids.current), \
         but the event is {event}"
    );
    let total = data["cpu"]["usage"]["total"].as_u64().unwrap_or(0);
    assert!(
        total > 0,
        "expected data.cpu.usage.total, the CPU time of the container's processes in \
         nanoseconds, to be more than 0, but the event is {event}"
    );
    // The counter moves a little as the kernel charges and uncharges pages:
    // what `events` reads must lie within 256 KiB of the checker's readings.
    let usage = data["memory"]["usage"]["usage"].as_u64().unwrap_or(0);
    let slack = 256 * 1024;
    let (low, high) = (before.min(after), before.max(after));
    assert!(
        usage > 0 && usage + slack >= low && usage <= high + slack,
        "expected data.memory.usage.usage to be the cgroup's memory usage ({before} bytes \
         before `events`, {after} after), but the event is {event}"
    );
    let unknown = sandbox.runc(&["events", "--stats", "nosuch"]);
    let line = unknown.one_line_failure();
    assert!(
        line.contains("nosuch"),
        "expected `events --stats nosuch` to name the ID it did not find, but it said {line:?}"
    );
    sandbox.runc(&["delete", "--force", id]).ok();
    sandbox.assert_clean();
}
