//! `top` and `stats`, for real: a container's processes and what they use,
//! read from its cgroup, checked against what `/proc` says.
//!
//! Every test starts the real registry, pushes busybox and pulls it in the
//! real network namespace (the registry listens on the real 127.0.0.1), into
//! the harness's test environment (`harness::env::Env`: a store of its own, a
//! runtime directory inside it, no credentials, a cgroup parent in which no
//! cgroup may be left). Then it makes a network namespace to play "the host",
//! as chapter 9's checkers do, and runs the real `minibox` inside it: its
//! containers run detached (`run -d --network none`), under their monitors,
//! in cgroups of their own, and the checker looks at them from the outside,
//! through `/proc` and the state minibox writes. Each container is removed
//! with `minibox rm -f` at the end, on every path, and the checker waits for
//! its monitor to be gone: no container, cgroup, mount or namespace outlives
//! it, and the only processes stopped are the checker's containers, by
//! minibox, by PID. (These began as chapter 10's first exercises; `top` and
//! `stats` are now the chapter's own commands.)

use std::collections::BTreeSet;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ch09_networking::netns;
use harness::env::Env;
use harness::images;
use harness::registry::Registry;

const MINIBOX: &str = env!("CARGO_BIN_EXE_ch10-runtime");

/// A network namespace that plays the host, and the store of one checker
/// with busybox in it.
struct Host {
    /// The namespace playing the host; minibox runs inside it.
    ns: OwnedFd,
    /// The store, the credentials (none), the cgroup parent.
    env: Env,
}

impl Host {
    /// A host for exercise `exercise`, with busybox pulled into its store.
    fn new(exercise: &str) -> Host {
        let registry = Registry::start();
        let env = Env::builder(MINIBOX, "ch10", &format!("exercise-{exercise}"))
            .mirror(&registry)
            .build();
        let busybox = images::busybox().expect("the busybox image");
        registry.push("library/busybox", "latest", &busybox);
        let ns = netns::create().expect("a network namespace to play the host");
        let host = Host { ns, env };
        // In the real namespace, where the registry listens.
        let child = host
            .command(&["pull", "-q", "busybox"])
            .spawn()
            .expect("run minibox");
        let out = harness::process::wait_with_deadline(
            child,
            "minibox pull busybox",
            Duration::from_secs(60),
        );
        assert!(
            out.status.success(),
            "expected `minibox pull busybox` to work, but {}",
            harness::transcript::seen(&out)
        );
        host
    }

    /// The runtime state directory (`MINIBOX_RUN`): inside the store, so the
    /// checker's containers never meet anyone else's.
    fn run_dir(&self) -> PathBuf {
        self.env.root().join("run")
    }

    /// `minibox ARGS` with this host's store, not started yet.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = self.env.command(args);
        command.env("MINIBOX_RUN", self.run_dir());
        command
    }

    /// Runs `minibox ARGS` inside the host namespace to its end (60 s at
    /// most).
    fn minibox(&self, args: &[&str]) -> Output {
        let mut command = self.command(args);
        netns::enter_before_exec(&mut command, self.ns.as_fd()).expect("setns before exec");
        let child = command.spawn().expect("run minibox");
        harness::process::wait_with_deadline(
            child,
            &format!("minibox {}", args.join(" ")),
            Duration::from_secs(60),
        )
    }

    /// `minibox run -d --network none --name NAME ARGS...`, which must print
    /// the new container's ID; the container is removed when the returned
    /// guard goes.
    fn run_detached<'a>(&'a self, name: &str, args: &[&str]) -> Container<'a> {
        let mut all = vec!["run", "-d", "--quiet", "--network", "none", "--name", name];
        all.extend(args);
        let out = self.minibox(&all);
        let id = text(&out.stdout).trim().to_string();
        assert!(
            out.status.success() && id.len() == 64,
            "expected `minibox {}` to start the container and print its ID, but {}",
            all.join(" "),
            harness::transcript::seen(&out)
        );
        let state = self.state(&id);
        let pid = |key: &str| state[key]["pid"].as_i64().unwrap_or(0) as i32;
        let container = Container {
            host: self,
            id,
            name: name.to_string(),
            pid1: pid("process"),
            monitor: pid("monitor"),
        };
        assert!(
            container.pid1 > 0 && container.monitor > 0,
            "expected the state of a running container to name its process and its monitor, \
             but it is {state}"
        );
        container
    }

    /// The container's state, as minibox wrote it (`MINIBOX_RUN/ID/state.json`).
    fn state(&self, id: &str) -> serde_json::Value {
        let path = self.run_dir().join(id).join("state.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("expected {} to exist: {e}", path.display()));
        serde_json::from_str(&text).expect("state.json is JSON")
    }

    /// Asserts that no container is left on disk, nor any mount in the store.
    fn assert_clean(&self, what: &str) {
        let left: Vec<_> = [self.env.root().join("containers"), self.run_dir()]
            .iter()
            .filter_map(|dir| std::fs::read_dir(dir).ok())
            .flat_map(|entries| entries.flatten().map(|e| e.path()))
            .filter(|p| !p.ends_with("names.lock"))
            .collect();
        assert!(
            left.is_empty(),
            "expected nothing left of the containers after {what}, but there is {left:?}"
        );
        let root = self.env.root().display().to_string();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mounted: Vec<&str> = mounts.lines().filter(|l| l.contains(&root)).collect();
        assert!(
            mounted.is_empty(),
            "expected no mount left in the store after {what}, but there is {mounted:?}"
        );
    }
}

/// A detached container of the checker's. Dropped (the checker is done or
/// failed half-way), it is removed with `minibox rm -f`, and the checker
/// waits for its monitor to end (which takes its cgroup and namespaces
/// along).
struct Container<'a> {
    host: &'a Host,
    id: String,
    name: String,
    /// Its PID 1, as the host sees it.
    pid1: i32,
    /// Its monitor's PID.
    monitor: i32,
}

impl Container<'_> {
    /// Waits (10 s at most) until PID 1 has `count` children: the shell has
    /// started the container's other processes.
    /// Waits for `count` children that have run `exec`: a child just forked
    /// still shows its parent's command line, and a list taken then would
    /// not match the one `top` reads a moment later.
    fn wait_for_children(&self, count: usize) -> Vec<i32> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let parent = process(self.pid1).1;
        loop {
            let children = harness::process::children(self.pid1 as u32);
            if children.len() >= count && children.iter().all(|&c| process(c).1 != parent) {
                return children;
            }
            assert!(
                Instant::now() < deadline,
                "expected the container's PID 1 ({}) to start {count} processes, but it has \
                 {children:?} after 10 s",
                self.pid1
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `minibox kill NAME` and `minibox wait NAME`: it has exited, and its
    /// monitor has recorded it.
    fn kill(&self) {
        for args in [["kill", self.name.as_str()], ["wait", self.name.as_str()]] {
            let out = self.host.minibox(&args);
            assert!(
                out.status.success(),
                "expected `minibox {}` to work, but {}",
                args.join(" "),
                harness::transcript::seen(&out)
            );
        }
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let out = self.host.minibox(&["rm", "-f", &self.id]);
        let gone = |pid: i32| !PathBuf::from(format!("/proc/{pid}")).exists();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !gone(self.monitor) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if std::thread::panicking() {
            return; // the checker already says what went wrong
        }
        assert!(
            out.status.success(),
            "expected `minibox rm -f {}` to remove the container, but {}",
            self.name,
            harness::transcript::seen(&out)
        );
        assert!(
            gone(self.monitor),
            "expected the monitor of {} (PID {}) to end once the container was removed",
            self.name,
            self.monitor
        );
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Fails the checker when clap refused the command line `command`: the
/// exercise's subcommand or flag is not there yet.
fn assert_parsed(out: &Output, command: &str) {
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains("unexpected argument") && !stderr.contains("unrecognized subcommand"),
        "expected `{command}` to be accepted, but minibox refused it: {}",
        stderr.trim_end()
    );
}

/// A process as `ps -ef` would show it: its parent and its command line.
fn process(pid: i32) -> (i32, String) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's name, in parentheses: state, ppid, ...
    let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let ppid = after.split(' ').nth(1).and_then(|p| p.parse().ok());
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let words: Vec<String> = cmdline
        .split(|&b| b == 0)
        .filter(|w| !w.is_empty())
        .map(text)
        .collect();
    (ppid.unwrap_or(0), words.join(" "))
}

/// Exercise `top`: `minibox top CONTAINER` prints the host's `ps -ef` header
/// and the rows of the container's processes, and only those (the PIDs in its
/// cgroup, as the host numbers them); a stopped container is Docker's
/// `Container ID is not running`, an unknown one `No such container`, both
/// with status 1.
#[test]
fn top_lists_the_containers_processes_from_its_cgroup() {
    if !harness::require_root("ch10 exercise top") {
        return;
    }
    let host = Host::new("top");
    // busybox's sh would exec the last command of a list in place of
    // itself; `wait` keeps it, the parent of both sleeps.
    let script = "sleep 1001 & sleep 1002 & wait";
    let container = host.run_detached("top-checker", &["busybox", "sh", "-c", script]);
    let sleeps = container.wait_for_children(2);
    let mut expected: Vec<(i32, i32, String)> = std::iter::once(container.pid1)
        .chain(sleeps)
        .map(|pid| {
            let (ppid, cmd) = process(pid);
            (pid, ppid, cmd)
        })
        .collect();
    expected.sort();

    let out = host.minibox(&["top", "top-checker"]);
    assert_parsed(&out, "minibox top top-checker");
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "expected `minibox top top-checker` to list the container's processes, but {}",
        harness::transcript::seen(&out)
    );
    let mut lines = stdout.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
        "expected `minibox top` to start with the columns of the host's `ps -ef`, but it \
         printed {stdout:?}"
    );
    let mut listed: Vec<(i32, i32, String)> = lines
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let number = |i: usize| fields.get(i).and_then(|f| f.parse().ok()).unwrap_or(-1);
            let cmd = fields.get(7..).map(|c| c.join(" ")).unwrap_or_default();
            (number(1), number(2), cmd)
        })
        .collect();
    listed.sort();
    let mut pids: Vec<String> = listed.iter().map(|r| r.0.to_string()).collect();
    if pids.len() > 10 {
        pids.truncate(10);
        pids.push(format!("... ({} rows in all)", listed.len()));
    }
    let shown = if stdout.len() > 2000 {
        String::new()
    } else {
        format!(": {stdout:?}")
    };
    assert!(
        listed == expected,
        "expected `minibox top top-checker` to list exactly the container's {} processes, \
         with the host's PIDs, PPIDs and commands: {expected:?} (PID 1 in the container is \
         host PID {}), but it listed PIDs {}{shown}",
        expected.len(),
        container.pid1,
        pids.join(", ")
    );

    let out = host.minibox(&["top", "no-such-container"]);
    assert!(
        out.status.code() == Some(1)
            && text(&out.stderr).contains("No such container: no-such-container"),
        "expected `minibox top no-such-container` to fail as Docker's does, with status 1 \
         and `No such container: no-such-container`, but {}",
        harness::transcript::seen(&out)
    );

    container.kill();
    let out = host.minibox(&["top", "top-checker"]);
    let message = format!("Container {} is not running", container.id);
    assert!(
        out.status.code() == Some(1)
            && text(&out.stderr).contains(&message)
            && out.stdout.is_empty(),
        "expected `minibox top` of a stopped container to fail as Docker's does, with status 1 \
         and `{message}`, but {}",
        harness::transcript::seen(&out)
    );
    drop(container);
    host.assert_clean("`minibox rm -f top-checker`");
}

/// The cells of a `docker stats` table line: columns are at least 3 spaces
/// apart, and a cell has single spaces at most (`1.2MiB / 64MiB`).
fn cells(line: &str) -> Vec<String> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

/// Bytes in Docker's binary units (`64MiB`, `1.953GiB`, `512KiB`, `0B`).
fn bytes(size: &str) -> Option<f64> {
    let units = [
        ("KiB", 1u64 << 10),
        ("MiB", 1 << 20),
        ("GiB", 1 << 30),
        ("TiB", 1 << 40),
    ];
    for (unit, factor) in units {
        if let Some(number) = size.strip_suffix(unit) {
            return number.parse::<f64>().ok().map(|n| n * factor as f64);
        }
    }
    size.strip_suffix('B')?.parse().ok()
}

/// A percentage as Docker prints it: two decimals and `%`.
fn percent(cell: &str) -> Option<f64> {
    let number = cell.strip_suffix('%')?;
    (number.split_once('.')?.1.len() == 2).then_some(())?;
    number.parse().ok()
}

/// `minibox stats --no-stream [NAMES]`: the table's rows, by NAME, after its
/// header was checked.
fn stats(host: &Host, names: &[&str]) -> Vec<Vec<String>> {
    let mut args = vec!["stats", "--no-stream"];
    args.extend(names);
    let command = format!("minibox {}", args.join(" "));
    let out = host.minibox(&args);
    assert_parsed(&out, &command);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "expected `{command}` to print the containers' usage, but {}",
        harness::transcript::seen(&out)
    );
    let mut lines = stdout.lines();
    let header = cells(lines.next().unwrap_or_default());
    let columns = [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ];
    assert!(
        header == columns,
        "expected `{command}` to print Docker's columns {columns:?}, at least 3 spaces apart, \
         but it printed {stdout:?}"
    );
    let rows: Vec<Vec<String>> = lines.map(cells).collect();
    assert!(
        rows.iter().all(|r| r.len() == columns.len()),
        "expected every row of `{command}` to have a cell in each of the {} columns, but it \
         printed {stdout:?}",
        columns.len()
    );
    rows
}

/// Exercise `stats`: `minibox stats --no-stream [CONTAINER...]` prints Docker's
/// table for the running containers (all of them when none is named), read
/// from their cgroups: the memory limit (`-m 64m` is `64MiB`), a MEM % that is
/// usage over limit, the number of processes, and a CPU % from two readings
/// of the CPU time, which shows a busy container busy.
#[test]
fn stats_reads_memory_pids_and_cpu_from_the_cgroup() {
    if !harness::require_root("ch10 exercise stats") {
        return;
    }
    let host = Host::new("stats");
    let script = "sleep 1000 & sleep 1001 & wait";
    let args = ["-m", "64m", "busybox", "sh", "-c", script];
    let quiet = host.run_detached("stats-quiet", &args);
    quiet.wait_for_children(2);

    let rows = stats(&host, &["stats-quiet"]);
    let [row] = rows.as_slice() else {
        panic!(
            "expected `minibox stats --no-stream stats-quiet` to print one row, but got {rows:?}"
        );
    };
    assert!(
        row[0] == quiet.id[..12] && row[1] == "stats-quiet",
        "expected the row to start with the container's short ID and name, {} and stats-quiet, \
         but it is {row:?}",
        &quiet.id[..12]
    );
    let cpu = percent(&row[2]);
    assert!(
        cpu.is_some_and(|c| c >= 0.0),
        "expected CPU % as Docker prints it (`0.25%`: two decimals), but the row is {row:?}"
    );
    let (usage, limit) = row[3].split_once(" / ").unwrap_or_default();
    assert!(
        limit == "64MiB",
        "expected MEM USAGE / LIMIT to end with the container's memory limit, `-m 64m`, as \
         Docker writes it, `64MiB`, but the row is {row:?}"
    );
    let used = bytes(usage).unwrap_or(-1.0);
    assert!(
        used > 0.0 && used <= (64 << 20) as f64,
        "expected MEM USAGE to be what the container's cgroup uses, in Docker's units \
         (`1.23MiB`, `512KiB`), more than nothing and at most the limit, but the row is {row:?}"
    );
    let shown = percent(&row[4]).unwrap_or(-1.0);
    let computed = used / (64 << 20) as f64 * 100.0;
    assert!(
        (shown - computed).abs() <= 0.006 + computed * 0.001,
        "expected MEM % to be MEM USAGE over LIMIT ({usage} / 64MiB = {computed:.2}%), with two \
         decimals, but the row is {row:?}"
    );
    assert!(
        row[7] == "3",
        "expected PIDS 3 (the shell and its two sleeps: the cgroup's pids.current), but the row \
         is {row:?}"
    );

    // A busy container, and every running one when none is named.
    let busy = host.run_detached(
        "stats-busy",
        &["busybox", "sh", "-c", "while :; do :; done"],
    );
    let rows = stats(&host, &[]);
    let names: BTreeSet<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    assert!(
        names == BTreeSet::from(["stats-quiet", "stats-busy"]),
        "expected `minibox stats --no-stream` to show every running container, stats-quiet and \
         stats-busy, but it showed {names:?}"
    );
    let row = rows
        .iter()
        .find(|r| r[1] == "stats-busy")
        .expect("the busy row");
    assert!(
        percent(&row[2]).is_some_and(|c| c > 10.0),
        "expected a container that loops without rest to show a CPU % above 10 (the CPU time \
         its cgroup used between two readings, over the time between them), but its row is \
         {row:?}"
    );

    quiet.kill();
    let rows = stats(&host, &[]);
    let names: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    assert!(
        names == ["stats-busy"],
        "expected `minibox stats --no-stream` to show only the running containers once \
         stats-quiet has stopped, but it showed {names:?}"
    );
    drop((quiet, busy));
    host.assert_clean("`minibox rm -f stats-quiet stats-busy`");
}
