//! Chapter 10's operations, measured after the starts, each beside what it
//! is compared with, in rounds as the starts are:
//!
//! - **`run -d` + `rm -f`**: a container started in the background (`sleep
//!   60`, so it is still running) and removed by force, beside `crun run -d`
//!   then `crun delete --force` on a bundle: the round trip a script or a
//!   test suite makes.
//! - **`exec`**: `true` in a running container, beside `runc exec` and
//!   `crun exec` into a running container of theirs. Target: ≤ 1.0× `runc
//!   exec`.
//! - **`ps -a` with 100 containers**: the table a second terminal prints,
//!   every container's state read from disk and checked against its
//!   processes. Target: under 20 ms.
//!
//! Every container runs with `--network none` in the benchmark's network
//! namespace, and every one is removed at the end of its phase.

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::RUNS;
use super::oci::Runtime;
use crate::bench::measure::{self, Peer, Sample, WorkDir, median_of, run_measured, sum};
use crate::bench::minibox::Minibox;
use crate::bench::report::{at_most, ms, ratio, ratio_cell, verdict};
use crate::shell;

/// How many containers `ps` lists.
const PS_CONTAINERS: usize = 100;

/// `ps -a`'s target, in milliseconds: an absolute one, since no peer lists
/// containers without a daemon.
const PS_TARGET_MS: f64 = 20.0;

/// Runs the three phases and prints a table and the targets for each.
pub(super) fn runtime(
    minibox: &Minibox,
    ch10: &Path,
    work: &WorkDir,
    runtimes: &[Runtime],
) -> Result<Vec<serde_json::Value>> {
    Ok(vec![
        detached(minibox, ch10, work, runtimes)?,
        exec(minibox, ch10, work, runtimes)?,
        ps(minibox, ch10, work)?,
    ])
}

/// `run -d` + `rm -f`, beside each OCI runtime's `run -d` + `delete --force`.
fn detached(
    minibox: &Minibox,
    ch10: &Path,
    work: &WorkDir,
    runtimes: &[Runtime],
) -> Result<serde_json::Value> {
    let round_trip = |dir: &Path| -> Result<Sample> {
        let run = ["run", "-d", "--network", "none", "busybox", "sleep", "60"];
        let started = run_measured(&mut minibox.command(ch10, &run)?, dir, "run")?;
        let id = fs::read_to_string(dir.join("run.stdout")).context("reading run -d's output")?;
        let rm = ["rm", "-f", id.trim()];
        let removed = run_measured(&mut minibox.command(ch10, &rm)?, dir, "rm")?;
        Ok(sum(started, removed))
    };
    let mut peers = vec![Peer::new("ch10 run -d + rm -f", true, Box::new(round_trip))];
    for runtime in runtimes {
        let name = if runtime.name == "crun" {
            "crun run -d + delete --force"
        } else {
            "runc run -d + delete --force"
        };
        let run = move |dir: &Path| runtime.detached_round_trip(dir);
        peers.push(Peer::new(name, false, Box::new(run)));
    }
    measure::rounds(&mut peers, work, RUNS)?;
    let phase = table(
        "start a container in the background (sleep 60) and remove it by force",
        &peers,
        "crun run -d + delete --force",
    );
    Ok(phase)
}

/// `exec true` in a running container, beside runc's and crun's.
fn exec(
    minibox: &Minibox,
    ch10: &Path,
    work: &WorkDir,
    runtimes: &[Runtime],
) -> Result<serde_json::Value> {
    let name = format!("minibox-bench-exec-{}", std::process::id());
    let run = [
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "busybox",
        "sleep",
        "3600",
    ];
    shell::run(minibox.command(ch10, &run)?.stdout(Stdio::null()))?;
    let mut running = Vec::new();
    for runtime in runtimes {
        let dir = work.path.join(format!("{}-exec-bundle", runtime.name));
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        match runtime.start_detached(&dir, &["sleep", "3600"]) {
            Ok(id) => running.push((runtime, id, dir)),
            Err(err) => println!("{}: cannot run here, left out: {err:#}", runtime.name),
        }
    }
    let result = (|| {
        let ours = |dir: &Path| {
            run_measured(
                &mut minibox.command(ch10, &["exec", &name, "true"])?,
                dir,
                "exec",
            )
        };
        let mut peers = vec![Peer::new("ch10 exec", true, Box::new(ours))];
        for (runtime, id, _) in &running {
            let peer = if runtime.name == "runc" {
                "runc exec"
            } else {
                "crun exec"
            };
            let theirs = move |dir: &Path| runtime.exec(id, dir);
            peers.push(Peer::new(peer, false, Box::new(theirs)));
        }
        measure::rounds(&mut peers, work, RUNS)?;
        let phase = table("run `true` in a running container", &peers, "runc exec");
        let r =
            median_of(&peers, "ch10 exec").and_then(|m| ratio(m, median_of(&peers, "runc exec")));
        println!("ch10 exec ≤ 1.0× runc exec: {}", at_most(r, 1.0));
        Ok(phase)
    })();
    for (runtime, id, dir) in &running {
        runtime.delete(id)?;
        fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    shell::run(
        minibox
            .command(ch10, &["rm", "-f", &name])?
            .stdout(Stdio::null()),
    )?;
    result
}

/// `ps -a` with [`PS_CONTAINERS`] running containers.
fn ps(minibox: &Minibox, ch10: &Path, work: &WorkDir) -> Result<serde_json::Value> {
    let mut ids = Vec::new();
    let made = (|| -> Result<()> {
        for _ in 0..PS_CONTAINERS {
            let run = ["run", "-d", "--network", "none", "busybox", "sleep", "3600"];
            let out = minibox
                .command(ch10, &run)?
                .stderr(Stdio::inherit())
                .output()
                .context("starting a container for ps")?;
            if !out.status.success() {
                bail!("`minibox run -d` failed ({})", out.status);
            }
            ids.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
        }
        Ok(())
    })();
    let result = made.and_then(|()| {
        let list = |dir: &Path| run_measured(&mut minibox.command(ch10, &["ps", "-a"])?, dir, "ps");
        let name = "ch10 ps -a (100 containers)";
        let mut peers = vec![Peer::new(name, true, Box::new(list))];
        measure::rounds(&mut peers, work, RUNS)?;
        let phase = table("list 100 running containers", &peers, name);
        let median = peers[0].median().as_secs_f64() * 1000.0;
        let met = median < PS_TARGET_MS;
        println!(
            "{name} < {PS_TARGET_MS} ms: {}",
            verdict(Some(met), &format!("{median:.1} ms"))
        );
        Ok(phase)
    });
    for chunk in ids.chunks(25) {
        let mut rm = vec!["rm", "-f"];
        rm.extend(chunk.iter().map(String::as_str));
        shell::run(minibox.command(ch10, &rm)?.stdout(Stdio::null()))?;
    }
    result
}

/// A phase's table: median, spread and the ratio to `baseline`'s median,
/// printed, and returned as `--record` keeps it.
pub(super) fn table(what: &str, peers: &[Peer], baseline: &str) -> serde_json::Value {
    let base = median_of(peers, baseline);
    println!();
    println!("{what}: median and spread of {RUNS} runs after a warm-up round, interleaved");
    println!(
        "{:<34} {:>9} {:>19} {:>9}",
        "", "median", "p10 – p90", "× base"
    );
    for peer in peers {
        let spread = format!("{} – {}", ms(peer.percentile(10)), ms(peer.percentile(90)));
        let r = ratio_cell(ratio(peer.median(), base));
        println!(
            "{:<34} {:>9} {:>19} {:>9}",
            peer.name,
            ms(peer.median()),
            spread,
            r
        );
    }
    println!("(× base: against {baseline})");
    let millis = |time: Duration| (time.as_secs_f64() * 100_000.0).round() / 100.0;
    let rows: Vec<serde_json::Value> = peers
        .iter()
        .map(|peer| {
            serde_json::json!({
                "variant": peer.name,
                "median_ms": millis(peer.median()),
                "p10_ms": millis(peer.percentile(10)),
                "p90_ms": millis(peer.percentile(90)),
            })
        })
        .collect();
    serde_json::json!({ "what": what, "baseline": baseline, "rows": rows })
}

impl Runtime<'_> {
    /// `RUNTIME run -d` of `args` with `dir` as its bundle; returns the
    /// container's ID. The container runs on, detached.
    pub(super) fn start_detached(&self, dir: &Path, args: &[&str]) -> Result<String> {
        let id = self.id(dir);
        self.write_config(dir, &id, args)?;
        let mut command = self.command_for(dir, &["run", "-d"])?;
        shell::run(command.stdin(Stdio::null()).stdout(Stdio::null()))?;
        Ok(id)
    }

    /// One `run -d` + `delete --force`, timed together, in `dir`.
    pub(super) fn detached_round_trip(&self, dir: &Path) -> Result<Sample> {
        let id = self.id(dir);
        self.write_config(dir, &id, &["sleep", "60"])?;
        let started = run_measured(&mut self.command_for(dir, &["run", "-d"])?, dir, "run");
        let mut delete = self.state_command();
        delete.args(["delete", "--force", &id]);
        let deleted = run_measured(&mut delete, dir, "delete");
        if deleted.is_err() && self.state_dir().join(&id).exists() {
            self.delete(&id)?;
        }
        Ok(sum(started?, deleted?))
    }

    /// `RUNTIME exec ID true`, timed, in `dir`.
    pub(super) fn exec(&self, id: &str, dir: &Path) -> Result<Sample> {
        let mut exec = self.state_command();
        exec.args(["exec", id, "true"]);
        run_measured(&mut exec, dir, "exec")
    }
}
