//! `cargo xtask test-v2`: this project's machines mount cgroups in the hybrid
//! layout, where cgroup v2 has no controllers, so v2 limits cannot be enforced
//! here. `v2vm` (../shared/tools) boots a small VM with a pure cgroup v2 kernel in
//! a few seconds; this task runs chapter 5's `tests/v2.rs` inside it, with the
//! chapter's binary and the busybox root filesystem copied in.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};

use crate::{fixtures, shell};

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

/// Runs the v2 tests in the VM; without v2vm, skips (or fails with `require`).
pub fn test(root: &Path, require: bool) -> Result<()> {
    let Some(v2vm) = find_v2vm(root) else {
        if require {
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
    shell::cargo(
        root,
        &[
            "build",
            "--quiet",
            "-p",
            "ch05-cgroups",
            "--bin",
            "ch05-cgroups",
        ],
    )?;
    let bin = harness::transcript::bin_dir().join("ch05-cgroups");
    let rootfs = harness::fixtures::busybox_rootfs();
    // Cargo runs the test binary through v2vm, which boots the VM and copies in
    // the test, minibox and its libraries, and the root filesystem.
    let runner = format!(
        "{} -b {} -a {} -e MINIBOX_ROOTFS={} -e MINIBOX_REQUIRE_V2=1 -e MINIBOX_REQUIRE_PRIVILEGED=1 --",
        v2vm.display(),
        bin.display(),
        rootfs.display(),
        rootfs.display()
    );
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    shell::run(
        Command::new(cargo)
            .current_dir(root)
            .env("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER", runner)
            .args([
                "test",
                "-p",
                "ch05-cgroups",
                "--test",
                "v2",
                "--",
                "--ignored",
                "--test-threads",
                "1",
            ]),
    )
}
