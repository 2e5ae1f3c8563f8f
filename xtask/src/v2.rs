//! `cargo xtask test-v2`: this project's machines mount cgroups in the hybrid
//! layout, where cgroup v2 has no controllers, so v2 limits cannot be enforced
//! here. `v2vm` (../shared/tools) boots a small VM with a pure cgroup v2 kernel in
//! a few seconds; this task runs chapter 5's v2 suite (`tests/v2.rs`) inside it,
//! with the chapter's binary and the busybox root filesystem copied in.
//!
//! The suite passes only if it really ran there: xtask builds the test binary,
//! lists its tests on the host, boots the VM itself with that binary as the
//! command (no cargo runner, so it works the same on any host architecture),
//! runs every test, ignored or not, and checks that each listed test reported
//! `ok` from inside the VM, and that the VM's exit status is 0.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::{fixtures, shell};

/// The test target of chapter 5 that holds the v2 suite.
const PACKAGE: &str = "ch05-cgroups";
const TARGET: &str = "v2";

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

/// Runs the v2 suite in the VM; without v2vm, skips (or fails with `require`,
/// or when `MINIBOX_REQUIRE_PRIVILEGED` forbids skipping, as for any test).
pub fn test(root: &Path, require: bool) -> Result<()> {
    let Some(v2vm) = find_v2vm(root) else {
        if require || harness::privilege::skipping_forbidden() {
            bail!(
                "v2vm not found (set MINIBOX_V2VM, or put ../shared/tools/v2vm beside the checkout)"
            );
        }
        eprintln!(
            "xtask: SKIP the cgroup v2 enforcement tests: v2vm not found (see ../shared/tools)"
        );
        return Ok(());
    };
    fixtures::prepare(root)?;
    shell::cargo(root, &["build", "--quiet", "-p", PACKAGE, "--bin", PACKAGE])?;
    let suite = build_suite(root)?;
    let expected = list(&suite)?;
    if expected.is_empty() {
        bail!("{} lists no tests", suite.display());
    }
    let bin = harness::transcript::bin_dir().join(PACKAGE);
    let rootfs = harness::fixtures::busybox_rootfs();
    // v2vm copies the test binary in (it names a host file), with its
    // libraries; -b and -a add minibox and the root filesystem.
    let mut command = Command::new(&v2vm);
    command
        .arg("-b")
        .arg(&bin)
        .arg("-a")
        .arg(&rootfs)
        .arg("-e")
        .arg(format!("MINIBOX_ROOTFS={}", rootfs.display()))
        .arg("-e")
        .arg(format!("{}=1", harness::privilege::REQUIRE_PRIVILEGED))
        .arg("--")
        .arg(&suite)
        .args(["--include-ignored", "--test-threads", "1"])
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let shown = shell::show(&command);
    eprintln!("$ {shown}");
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start `{shown}`"))?;
    // The VM's console, shown as it comes and kept to be read.
    let mut console = String::new();
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line.context("reading the VM's console")?;
        println!("{line}");
        console.push_str(&line);
        console.push('\n');
    }
    let status = child.wait()?;
    let report = Report::read(&console);
    check(&expected, &report, status.code())?;
    eprintln!(
        "xtask: cgroup v2 suite: {} of {} tests ran inside the VM and passed",
        report.passed.len(),
        expected.len()
    );
    Ok(())
}

/// Builds the suite's test binary (without running it) and returns its path.
fn build_suite(root: &Path) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args(["test", "--no-run", "--message-format=json", "-p", PACKAGE])
        .args(["--test", TARGET])
        .stderr(Stdio::inherit());
    eprintln!("$ {}", shell::show(&command));
    let output = command.output().context("cannot run cargo")?;
    if !output.status.success() {
        bail!("building {PACKAGE}'s `{TARGET}` tests failed");
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == TARGET)
        .and_then(|m| m["executable"].as_str().map(PathBuf::from))
        .with_context(|| format!("cargo built no executable for {PACKAGE}'s `{TARGET}` tests"))
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
