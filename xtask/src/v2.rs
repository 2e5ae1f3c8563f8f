//! `cargo xtask test-v2`: this project's machines mount cgroups in the hybrid
//! layout, where cgroup v2 has no controllers, so v2 limits cannot be enforced
//! here. `v2vm` (../shared/tools) boots a small VM with a pure cgroup v2 kernel in
//! a few seconds; this task runs the v2 suites (`tests/v2.rs`) of chapter 5 (the
//! limits), chapter 10 (the runtime: `run`, `stats`, `top`, `exec`, `stop`,
//! `rm`) and chapter 12 (device rules as a BPF program) inside it, one VM
//! each, with the chapter's binary copied in, and the busybox root
//! filesystem (chapter 5) or a store with busybox pulled on the host from the
//! fixture registry (chapters 10 and 12: the VM has no network).
//!
//! A suite passes only if it really ran there: xtask builds the test binary,
//! lists its tests on the host, boots the VM itself with that binary as the
//! command (no cargo runner, so it works the same on any host architecture),
//! runs every test, ignored or not, and checks that each listed test reported
//! `ok` from inside the VM, and that the VM's exit status is 0.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};

use crate::{fixtures, shell};

/// A chapter's v2 suite: its `tests/v2.rs`, and the binary it runs.
struct Suite {
    package: &'static str,
    /// The chapter's binary, copied into the VM with its libraries.
    bin: &'static str,
}

/// The test target that holds a chapter's v2 suite.
const TARGET: &str = "v2";

/// The suites, in story order.
const SUITES: [Suite; 4] = [
    Suite {
        package: "ch05-cgroups",
        bin: "ch05-cgroups",
    },
    Suite {
        package: "ch10-runtime",
        bin: "ch10-runtime",
    },
    Suite {
        package: "ch12-security",
        bin: "ch12-security",
    },
    Suite {
        package: "ch13-rootless",
        bin: "ch13-rootless",
    },
];

/// Where v2vm is: `$MINIBOX_V2VM`, `../shared/tools/v2vm` beside the checkout,
/// or `v2vm` on the PATH.
fn find_v2vm(root: &Path) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MINIBOX_V2VM") {
        return Some(PathBuf::from(path));
    }
    let beside = root.join("../shared/tools/v2vm");
    if beside.is_file() {
        return Some(beside);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("v2vm"))
            .find(|candidate| candidate.is_file())
    })
}

/// Runs the v2 suites in the VM; without v2vm, skips (or fails with `require`,
/// or when `MINIBOX_REQUIRE_PRIVILEGED` forbids skipping, as for any test).
pub fn test(root: &Path, require: bool, only: Option<&str>) -> Result<()> {
    let Some(v2vm) = find_v2vm(root) else {
        if require || harness::privilege::skipping_forbidden() {
            bail!(
                "v2vm not found (set MINIBOX_V2VM, or put ../shared/tools/v2vm beside the checkout)"
            );
        }
        eprintln!(
            "xtask: SKIP the cgroup v2 suites of chapters 5, 10, 12 and 13: v2vm not found (see ../shared/tools)"
        );
        return Ok(());
    };
    let started = Instant::now();
    fixtures::prepare(root)?;
    // Every suite runs, whatever the one before did; then the summary.
    let mut summary = Vec::new();
    let mut failed = Vec::new();
    let chosen = SUITES
        .iter()
        .filter(|s| only.is_none_or(|p| p == s.package));
    for suite in chosen {
        let suite_started = Instant::now();
        let result = run_suite(root, &v2vm, suite);
        let took = suite_started.elapsed().as_secs_f64();
        let line = match result {
            Ok((passed, listed)) => format!(
                "{}/tests/{TARGET}.rs: {passed} of {listed} tests ran inside the VM and passed ({took:.0} s)",
                suite.package
            ),
            Err(error) => {
                failed.push(suite.package);
                format!(
                    "{}/tests/{TARGET}.rs: FAILED ({took:.0} s): {error:#}",
                    suite.package
                )
            }
        };
        eprintln!("xtask: cgroup v2 suite {line}");
        summary.push(line);
    }
    eprintln!(
        "xtask: cgroup v2 suites, {:.0} s in all:",
        started.elapsed().as_secs_f64()
    );
    for line in summary {
        eprintln!("  {line}");
    }
    if !failed.is_empty() {
        bail!("the cgroup v2 suite of {} failed", failed.join(" and "));
    }
    Ok(())
}

/// Builds `suite`, runs it in a VM of its own and checks its report: how many
/// tests passed, of how many listed.
fn run_suite(root: &Path, v2vm: &Path, suite: &Suite) -> Result<(usize, usize)> {
    eprintln!(
        "xtask: == {}'s cgroup v2 suite ({}/tests/{TARGET}.rs)",
        suite.package, suite.package
    );
    // Building an integration test builds the package's binaries too.
    let binary = build_suite(root, suite.package)?;
    let expected = list(&binary)?;
    if expected.is_empty() {
        bail!("{} lists no tests", binary.display());
    }
    let bin = harness::transcript::bin_dir().join(suite.bin);
    // v2vm copies the test binary in (it names a host file), with its
    // libraries; -b adds the chapter's binary, -a what the suite needs.
    let mut command = Command::new(v2vm);
    command.arg("-b").arg(&bin);
    // Kept until the VM has ended: what was copied in from temp dirs.
    let _inputs = add_inputs(&mut command, suite)?;
    command
        .arg("-e")
        .arg(format!("{}=1", harness::privilege::REQUIRE_PRIVILEGED))
        .arg("--")
        .arg(&binary)
        .args(["--include-ignored", "--test-threads", "1"])
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let (console, status) = run_vm(&mut command)?;
    let report = Report::read(&console);
    check(&expected, &report, status)?;
    Ok((report.passed.len(), expected.len()))
}

/// Adds what `suite` needs in the VM to `command`: chapter 5, the busybox
/// root filesystem; chapters 10 and 12, a store with busybox and an
/// `/etc/resolv.conf` (the VM has none; containers get a copy of the host's).
/// Returns the temporary directory they are in, to keep until the VM ends.
fn add_inputs(command: &mut Command, suite: &Suite) -> Result<Option<tempfile::TempDir>> {
    if suite.package == "ch05-cgroups" {
        let rootfs = harness::fixtures::busybox_rootfs();
        command
            .arg("-a")
            .arg(&rootfs)
            .arg("-e")
            .arg(format!("MINIBOX_ROOTFS={}", rootfs.display()));
        return Ok(None);
    }
    let inputs = tempfile::Builder::new()
        .prefix("minibox-v2-")
        .tempdir()
        .context("a temporary directory")?;
    let store = inputs.path().join("store");
    pull_busybox(&harness::transcript::bin_dir().join(suite.bin), &store)?;
    let resolv = inputs.path().join("resolv.conf");
    std::fs::write(&resolv, "# v2vm has no network\nnameserver 192.0.2.53\n")?;
    command
        .arg("-a")
        .arg(&store)
        .arg("-a")
        .arg(format!("{}:/etc/resolv.conf", resolv.display()))
        .arg("-e")
        .arg(format!(
            "{}={}",
            harness::cgroups::V2_STORE,
            store.display()
        ));
    Ok(Some(inputs))
}

/// Pulls busybox with `minibox` into a new store at `store`, from the
/// fixture registry on 127.0.0.1, started for it and stopped after.
fn pull_busybox(minibox: &Path, store: &Path) -> Result<()> {
    let registry = harness::registry::Registry::start();
    let busybox = harness::images::busybox().context("the busybox image")?;
    registry.push("library/busybox", "latest", &busybox);
    let mut command = Command::new(minibox);
    command
        .args(["pull", "--quiet", "busybox"])
        .env("MINIBOX_ROOT", store)
        .env("MINIBOX_REGISTRY_MIRROR", registry.host())
        .env("MINIBOX_CONFIG", "/nonexistent")
        .env("DOCKER_CONFIG", "/nonexistent")
        .stdout(Stdio::null());
    shell::run(&mut command)
}

/// Boots the VM: its console, shown as it comes and kept to be read, and
/// v2vm's exit status.
fn run_vm(command: &mut Command) -> Result<(String, Option<i32>)> {
    let shown = shell::show(command);
    eprintln!("$ {shown}");
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start `{shown}`"))?;
    let mut console = String::new();
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("piped"))?;
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading the VM's console")?;
        println!("{line}");
        console.push_str(&line);
        console.push('\n');
    }
    let status = child.wait()?;
    Ok((console, status.code()))
}

/// Builds the suite's test binary (without running it) and returns its path.
fn build_suite(root: &Path, package: &str) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args(["test", "--no-run", "--message-format=json", "-p", package])
        .args(["--test", TARGET])
        .stderr(Stdio::inherit());
    eprintln!("$ {}", shell::show(&command));
    let output = command.output().context("cannot run cargo")?;
    if !output.status.success() {
        bail!("building {package}'s `{TARGET}` tests failed");
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == TARGET)
        .and_then(|m| m["executable"].as_str().map(PathBuf::from))
        .with_context(|| format!("cargo built no executable for {package}'s `{TARGET}` tests"))
}

/// The suite's tests, ignored ones included, as the binary lists them (on the
/// host: listing runs no test).
fn list(suite: &Path) -> Result<BTreeSet<String>> {
    let output = Command::new(suite)
        .args(["--list", "--include-ignored"])
        .output()
        .with_context(|| format!("cannot run {}", suite.display()))?;
    if !output.status.success() {
        bail!("{} --list failed", suite.display());
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .map(str::to_string)
        .collect())
}

/// What the VM's console says the suite did.
#[derive(Debug, Default, PartialEq, Eq)]
struct Report {
    /// Tests that reported `ok`.
    passed: BTreeSet<String>,
    /// Tests that reported anything else (FAILED, ignored).
    other: Vec<String>,
    /// The exit status v2vm read from the VM (`V2VM-EXIT=n`).
    vm_exit: Option<i32>,
}

impl Report {
    fn read(console: &str) -> Report {
        let mut report = Report::default();
        for line in console.lines().map(|l| l.trim_end_matches('\r')) {
            if let Some(rest) = line.strip_prefix("V2VM-EXIT=") {
                report.vm_exit = rest.trim().parse().ok();
            }
            // libtest, one thread: `test NAME ... ok` (other output may come
            // between the name and the result).
            let Some(rest) = line.strip_prefix("test ") else {
                continue;
            };
            let Some((name, result)) = rest.split_once(" ... ") else {
                continue;
            };
            if result.trim_end().ends_with("ok") && !result.contains("FAILED") {
                report.passed.insert(name.to_string());
            } else {
                report.other.push(format!("{name}: {}", result.trim()));
            }
        }
        report
    }
}

/// Fails unless every test in `expected` passed inside the VM and the VM said
/// so (`V2VM-EXIT=0`, and v2vm exited 0).
fn check(expected: &BTreeSet<String>, report: &Report, v2vm_status: Option<i32>) -> Result<()> {
    let missing: Vec<&String> = expected.difference(&report.passed).collect();
    if report.vm_exit != Some(0) || v2vm_status != Some(0) || !missing.is_empty() {
        bail!(
            "the cgroup v2 suite did not pass inside the VM: {} of {} tests passed; \
             not passed: {missing:?}; other results: {:?}; VM exit {:?}, v2vm exit {v2vm_status:?}",
            expected.intersection(&report.passed).count(),
            expected.len(),
            report.other,
            report.vm_exit,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    const CONSOLE: &str = "\
running 2 tests\r
test v2_a ... ok\r
test v2_b ... ok\r
\r
test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\r
V2VM-EXIT=0\r
";

    #[test]
    fn every_listed_test_must_pass_in_the_vm() {
        let report = Report::read(CONSOLE);
        assert_eq!(report.passed, names(&["v2_a", "v2_b"]));
        assert!(check(&names(&["v2_a", "v2_b"]), &report, Some(0)).is_ok());
        // A test that did not run (ignored, filtered out, never reached).
        assert!(check(&names(&["v2_a", "v2_b", "v2_c"]), &report, Some(0)).is_err());
        // The VM or v2vm did not end well.
        assert!(check(&names(&["v2_a"]), &report, Some(1)).is_err());
        let no_vm = Report::read(&CONSOLE.replace("V2VM-EXIT=0", ""));
        assert!(check(&names(&["v2_a"]), &no_vm, Some(0)).is_err());
    }

    #[test]
    fn failed_and_ignored_tests_do_not_count() {
        let report = Report::read(
            "test v2_a ... FAILED\ntest v2_b ... ignored, needs v2\ntest v2_c ... SKIP v2_c: x\nok\nV2VM-EXIT=101\n",
        );
        assert!(report.passed.is_empty(), "{report:?}");
        assert_eq!(report.other.len(), 3);
    }
}
