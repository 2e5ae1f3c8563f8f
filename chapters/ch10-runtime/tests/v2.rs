//! Chapter 10's runtime on a pure cgroup v2 host, for real. This machine's
//! cgroups are hybrid (v2 has no controllers here), so these tests mean
//! something only under a pure cgroup v2 kernel: they are chapter 10's v2
//! suite, which `cargo xtask test-v2` runs inside a small VM (`v2vm`, see
//! ../shared/tools) with every controller enabled, all of them
//! (`--include-ignored`), counting that each one ran and passed. Plain
//! `cargo test` lists them as ignored. Run by hand on a host that is not pure
//! v2, they skip through `harness::skip`, which fails instead under
//! `MINIBOX_REQUIRE_PRIVILEGED=1` (set by `cargo xtask test-v2` in the VM).
//!
//! The VM has no registry and no network: `cargo xtask test-v2` pulls busybox
//! from the fixture registry into a store on the host and copies that store
//! into the VM, where `MINIBOX_V2_STORE` names it. Each test copies it into a
//! store of its own (`harness::env::Env`: `MINIBOX_ROOT`, `MINIBOX_RUN` inside
//! it, on the VM's tmpfs, and a cgroup parent of its own below the test's
//! cgroup, the VM's root), so nothing is pulled. Containers run with
//! `--network none`: the bridge's outbound NAT needs `iptables`, which the VM
//! does not have. Every test ends with no container and no cgroup left below
//! its parent; a test that fails half way removes its containers with
//! `rm -f` (`Store`'s drop).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{MINIBOX, table, wait_until};
use harness::env::Env;
use harness::process::Run;
use serde_json::Value;

/// dd allocates one 64 MiB buffer: twice a 32m limit.
const DD_64M: [&str; 5] = ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"];

/// Forks 20 sleeps in a child shell (which dies at the first failed fork), and
/// says the container lives on.
const FORK_20: &str =
    "sh -c 'for i in $(seq 20); do sleep 1 & done' 2>&1 | tail -n 1; echo still running";

/// The test's store, with busybox, or `None` (after a SKIP line) when this is
/// not a pure v2 host with the prepared store.
fn on_v2(test: &str) -> Option<Store> {
    harness::cgroups::on_v2_with_store(test).map(|store| Store::new(test, &store))
}

/// A store of the test's own, its containers removed when it goes.
struct Store {
    env: Env,
}

impl Store {
    fn new(test: &str, prepared: &Path) -> Store {
        let env = Env::builder(MINIBOX, "ch10", test).build();
        env.copy_store_from(prepared);
        Store { env }
    }

    fn minibox(&self, args: &[&str]) -> Run {
        self.env.minibox(args)
    }

    /// `run -d --quiet --network none ARGS`: the new container's ID.
    fn run_d(&self, args: &[&str]) -> String {
        let mut all = vec!["run", "-d", "--quiet", "--network", "none"];
        all.extend(args);
        let run = self.minibox(&all).expect(0);
        let id = run.stdout.trim_end().to_string();
        assert!(common::is_full_id(&id), "not an ID: {:?}", run.stdout);
        id
    }

    /// Container `id`'s `state.json`.
    fn state(&self, id: &str) -> Value {
        let path = self.env.run_dir().join(id).join("state.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        serde_json::from_str(&text).unwrap()
    }

    /// The one cgroup directory of running container `id` (v2 has one tree).
    fn cgroup(&self, id: &str) -> PathBuf {
        let state = self.state(id);
        let dirs = state["cgroups"].as_array().expect("cgroups in the state");
        assert_eq!(dirs.len(), 1, "{state}");
        PathBuf::from(dirs[0].as_str().unwrap())
    }

    /// `docker inspect`'s object for one container.
    fn inspect(&self, container: &str) -> Value {
        let run = self.minibox(&["inspect", container]).expect(0);
        serde_json::from_str::<Value>(&run.stdout).unwrap()[0].clone()
    }

    /// `stats --no-stream CONTAINER`: its one row, header to value.
    fn stats(&self, container: &str) -> std::collections::BTreeMap<String, String> {
        let run = self.minibox(&["stats", "--no-stream", container]).expect(0);
        let rows = table(&run.stdout);
        assert_eq!(rows.len(), 1, "{}", run.stdout);
        rows.into_iter().next().unwrap()
    }

    /// Asserts that no container is left, and no cgroup below the test's
    /// cgroup parent (nor the parent itself).
    fn assert_clean(&self) {
        let ids = self.minibox(&["ps", "-a", "-q"]).expect(0).stdout;
        assert_eq!(ids, "", "containers left");
        let left = harness::cgroups::leftovers(self.env.cgroup_parent());
        assert_eq!(left, [] as [PathBuf; 0], "cgroups left");
    }
}

impl Drop for Store {
    /// A test that failed half way leaves containers behind: removed here,
    /// before `Env` checks that no cgroup is left.
    fn drop(&mut self) {
        let listed = self.env.command(&["ps", "-a", "-q", "--no-trunc"]).output();
        let ids: Vec<String> = listed
            .map(|out| {
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if !ids.is_empty() {
            let mut rm = vec!["rm", "-f"];
            rm.extend(ids.iter().map(String::as_str));
            let _ = self.env.command(&rm).output();
        }
    }
}

/// The PIDs a cgroup directory's `cgroup.procs` lists.
fn procs(dir: &Path) -> BTreeSet<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect()
}

/// Process `pid`'s command line, its words joined by spaces.
fn cmdline(pid: i32) -> String {
    let bytes = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let words: Vec<String> = bytes
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    words.join(" ")
}

/// A `key value` line of a cgroup file (`pids.events`, `memory.events`).
fn key(path: &Path, key: &str) -> u64 {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {}:\n{text}", path.display()))
}

/// Bytes in Docker's binary units (`64MiB`, `1.953GiB`, `512KiB`, `0B`).
fn bytes(size: &str) -> f64 {
    let units = [("KiB", 1u64 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30)];
    for (unit, factor) in units {
        if let Some(number) = size.strip_suffix(unit) {
            return number.parse::<f64>().unwrap() * factor as f64;
        }
    }
    size.strip_suffix('B').unwrap().parse().unwrap()
}

#[test]
#[ignore = "needs a pure cgroup v2 kernel: cargo xtask test-v2"]
fn v2_memory_limit_oom_kills_with_137_and_inspect_says_so() {
    let Some(store) = on_v2("ch10 v2 memory") else {
        return;
    };
    let mut args = vec!["run", "--quiet", "--network", "none", "--name", "hog"];
    args.extend(["--memory", "32m", "busybox"]);
    args.extend(DD_64M);
    let run = store.minibox(&args);
    assert_eq!(run.status, 137, "{run:?}");
    let state = &store.inspect("hog")["State"];
    assert_eq!(state["OOMKilled"], true, "{state}");
    assert_eq!(state["ExitCode"], 137, "{state}");
    store.minibox(&["rm", "hog"]).expect(0);
    // Within the limit, the same dd works; beyond it, `--rm` removes the
    // container the OOM killer ended.
    let mut within = vec!["run", "--rm", "--quiet", "--network", "none"];
    within.extend(["--memory", "32m", "busybox", "dd", "if=/dev/zero"]);
    within.extend(["of=/dev/null", "bs=8M", "count=1"]);
    store.minibox(&within).expect(0);
    let mut beyond = vec!["run", "--rm", "--quiet", "--network", "none"];
    beyond.extend(["--memory", "32m", "busybox"]);
    beyond.extend(DD_64M);
    assert_eq!(store.minibox(&beyond).status, 137);
    store.assert_clean();
}

#[test]
#[ignore = "needs a pure cgroup v2 kernel: cargo xtask test-v2"]
fn v2_pids_limit_makes_fork_fail_in_run_rm() {
    let Some(store) = on_v2("ch10 v2 pids") else {
        return;
    };
    let mut args = vec!["run", "--rm", "--quiet", "--network", "none"];
    args.extend(["--pids-limit", "10", "busybox", "sh", "-c", FORK_20]);
    let run = store.minibox(&args).expect(0);
    assert_eq!(
        run.stdout,
        "sh: can't fork: Resource temporarily unavailable\nstill running\n"
    );
    store.assert_clean();
}

#[test]
#[ignore = "needs a pure cgroup v2 kernel: cargo xtask test-v2"]
fn v2_a_fork_bomb_stays_within_its_pids_limit_and_rm_f_ends_it() {
    let Some(store) = on_v2("ch10 v2 fork bomb") else {
        return;
    };
    // Each `b` forks two more in the background, forever; PID 1 then
    // becomes `sleep` (exec: no fork needed).
    let bomb = "b() { b | b & }; b; exec sleep 1000";
    let id = store.run_d(&["--pids-limit", "10", "busybox", "sh", "-c", bomb]);
    let dir = store.cgroup(&id);
    wait_until("fork to fail", Duration::from_secs(30), || {
        key(&dir.join("pids.events"), "max") >= 5
    });
    let current = std::fs::read_to_string(dir.join("pids.current")).unwrap();
    let current: u64 = current.trim().parse().unwrap();
    assert!((1..=10).contains(&current), "pids.current {current}");
    let pids: u64 = store.stats(&id)["PIDS"].parse().unwrap();
    assert!((1..=10).contains(&pids), "PIDS {pids}");
    // cgroup.kill ends every process of the bomb at once.
    store.minibox(&["rm", "-f", &id]).expect(0);
    assert!(!dir.exists(), "{} is left", dir.display());
    store.assert_clean();
}

#[test]
#[ignore = "needs a pure cgroup v2 kernel: cargo xtask test-v2"]
fn v2_stats_count_memory_and_pids_without_a_limit() {
    let Some(store) = on_v2("ch10 v2 stats") else {
        return;
    };
    let script = "sleep 1001 & sleep 1002 & wait";
    let id = store.run_d(&["--name", "idle", "busybox", "sh", "-c", script]);
    let dir = store.cgroup(&id);
    wait_until("three processes", Duration::from_secs(10), || {
        procs(&dir).len() == 3
    });
    // The parent hands memory and pids down although no limit asks for them.
    let parent = dir.parent().unwrap();
    let subtree = std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap();
    for controller in ["cpu", "memory", "pids"] {
        assert!(subtree.contains(controller), "{subtree}");
    }
    let row = store.stats("idle");
    assert_eq!(row["PIDS"], "3", "{row:?}");
    let (usage, limit) = row["MEM USAGE / LIMIT"].split_once(" / ").unwrap();
    assert!(bytes(usage) > 0.0, "{row:?}");
    // No limit: the host's memory (MemTotal, in KiB), to the table's
    // precision.
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let total: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let total = total * 1024.0;
    assert!((bytes(limit) - total).abs() < total / 100.0, "{row:?}");
    // With one, its limit.
    let limited = store.run_d(&[
        "--name", "capped", "--memory", "64m", "busybox", "sleep", "1003",
    ]);
    let row = store.stats("capped");
    assert_eq!(
        row["MEM USAGE / LIMIT"].split_once(" / ").unwrap().1,
        "64MiB"
    );
    assert_eq!(row["PIDS"], "1", "{row:?}");
    store.minibox(&["rm", "-f", &id, &limited]).expect(0);
    store.assert_clean();
}

#[test]
#[ignore = "needs a pure cgroup v2 kernel: cargo xtask test-v2"]
fn v2_exec_joins_the_cgroup_top_lists_it_stop_and_rm_clean_up() {
    let Some(store) = on_v2("ch10 v2 exec top") else {
        return;
    };
    let id = store.run_d(&["--name", "box", "busybox", "sleep", "1000"]);
    let dir = store.cgroup(&id);
    // /proc/self/cgroup of the exec'd process: the container's cgroup, as
    // the unified tree names it from its root.
    let relative = dir.strip_prefix("/sys/fs/cgroup").unwrap();
    let run = store
        .minibox(&["exec", "box", "cat", "/proc/self/cgroup"])
        .expect(0);
    assert_eq!(run.stdout, format!("0::/{}\n", relative.display()));
    // A second process, from exec, while it runs: in the cgroup, so in `top`.
    let mut exec = harness::process::Background::spawn(
        &mut store.env.command(&["exec", "box", "sleep", "1003"]),
    )
    .unwrap();
    wait_until("the exec'd sleep", Duration::from_secs(10), || {
        procs(&dir).iter().any(|pid| cmdline(*pid) == "sleep 1003")
    });
    // PID 1, the exec'd sleep, and exec's child that joined the cgroup and
    // waits for it.
    let inside = procs(&dir);
    assert_eq!(inside.len(), 3, "{inside:?}");
    let top = store.minibox(&["top", "box"]).expect(0);
    let rows = table(&top.stdout);
    let listed: BTreeSet<i32> = rows.iter().map(|r| r["PID"].parse().unwrap()).collect();
    assert_eq!(listed, inside, "{}", top.stdout);
    assert!(top.stdout.contains("sleep 1003"), "{}", top.stdout);
    assert_eq!(store.stats("box")["PIDS"], "3");
    // `stop` ends both (PID 1 ignores SIGTERM: SIGKILL after 1 s), and the
    // monitor removes the cgroup.
    store.minibox(&["stop", "-t", "1", "box"]).expect(0);
    assert_eq!(store.inspect("box")["State"]["Status"], "exited");
    let mut ended = None;
    wait_until("the exec to end", Duration::from_secs(10), || {
        ended = exec.ended();
        ended.is_some()
    });
    assert_eq!(ended.unwrap().code(), Some(137), "exec's status");
    wait_until("the cgroup to go", Duration::from_secs(10), || {
        !dir.exists()
    });
    store.minibox(&["rm", "box"]).expect(0);
    store.assert_clean();
}

#[test]
#[ignore = "needs a pure cgroup v2 kernel: cargo xtask test-v2"]
fn v2_rm_removes_the_cgroup_a_killed_monitor_left() {
    let Some(store) = on_v2("ch10 v2 dead monitor") else {
        return;
    };
    let id = store.run_d(&["--name", "orphan", "busybox", "sleep", "1000"]);
    let dir = store.cgroup(&id);
    let monitor = store.state(&id)["monitor"]["pid"].as_i64().unwrap() as i32;
    // The monitor this test's `run -d` started, by its PID.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    common::wait_until_gone(monitor);
    assert!(dir.exists(), "the monitor died without cleaning up");
    store.minibox(&["rm", "-f", "orphan"]).expect(0);
    assert!(!dir.exists(), "{} is left", dir.display());
    store.assert_clean();
}
