//! Fixtures that tests and demos need, built from what the host has:
//!
//! - the **busybox root filesystem** of chapter 4 on: the host's static busybox
//!   (Debian package `busybox-static`), a link per applet, a few directories and
//!   files in `/etc`, and the static fixture programs (`crates/fixture-programs`);
//! - the **static fixture programs**, built with `-C target-feature=+crt-static`.
//!
//! Everything goes below `target/fixtures` in the workspace, is built once, and is
//! rebuilt when [`FIXTURE_VERSION`] changes. Builds write to a temporary directory
//! and rename it into place, so tests running at the same time never see half a
//! root filesystem.

use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::transcript::workspace_root;

/// Bump when the recipe below changes, so old fixtures are rebuilt.
pub const FIXTURE_VERSION: &str = "busybox-rootfs 1";

/// Where the host's static busybox is (Debian's busybox-static puts it here).
pub const HOST_BUSYBOX: &str = "/bin/busybox";

/// `target/fixtures` in the workspace.
pub fn fixtures_dir() -> PathBuf {
    workspace_root().join("target/fixtures")
}

/// The busybox root filesystem's path (the default `--rootfs` of chapter 4).
pub fn busybox_rootfs_path() -> PathBuf {
    fixtures_dir().join("busybox-rootfs")
}

/// Returns the busybox root filesystem, building it first if it is missing or
/// stale. Panics with what to install when the host has no static busybox.
pub fn busybox_rootfs() -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let _one_at_a_time = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let rootfs = busybox_rootfs_path();
    let stamp = rootfs.join(".minibox-fixture");
    if fs::read_to_string(&stamp).is_ok_and(|v| v == FIXTURE_VERSION) {
        return rootfs;
    }
    if let Err(err) = build_busybox_rootfs(&rootfs) {
        panic!("building the busybox root filesystem: {err}");
    }
    rootfs
}

fn build_busybox_rootfs(rootfs: &Path) -> Result<(), String> {
    let busybox = Path::new(HOST_BUSYBOX);
    if !busybox.is_file() {
        return Err(format!(
            "{HOST_BUSYBOX} is missing: install busybox-static (cargo xtask test does)"
        ));
    }
    if !is_static(busybox)? {
        return Err(format!(
            "{HOST_BUSYBOX} is dynamically linked and cannot run in a root filesystem without a libc: install busybox-static"
        ));
    }
    let escape = static_program("chroot-escape")?;

    let parent = rootfs.parent().expect("below target/fixtures");
    fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    let tmp = parent.join(format!(".busybox-rootfs.{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let io = |e: std::io::Error| e.to_string();
    for dir in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "home", "var", "proc", "sys", "dev",
        "tmp", "run",
    ] {
        fs::create_dir_all(tmp.join(dir)).map_err(io)?;
    }
    fs::set_permissions(tmp.join("tmp"), fs::Permissions::from_mode(0o1777)).map_err(io)?;
    fs::copy(busybox, tmp.join("bin/busybox")).map_err(io)?;
    fs::copy(&escape, tmp.join("bin/chroot-escape")).map_err(io)?;

    // One link per applet, where busybox itself says it belongs.
    let list = Command::new(busybox)
        .arg("--list-full")
        .output()
        .map_err(io)?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let link = tmp.join(applet);
        if applet == "bin/busybox" || link.exists() {
            continue;
        }
        fs::create_dir_all(link.parent().expect("applets live in a directory")).map_err(io)?;
        symlink("/bin/busybox", &link).map_err(io)?;
    }
    fs::write(
        tmp.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .map_err(io)?;
    fs::write(tmp.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").map_err(io)?;
    fs::write(
        tmp.join("etc/minibox-release"),
        "minibox busybox root filesystem\n",
    )
    .map_err(io)?;
    fs::write(tmp.join(".minibox-fixture"), FIXTURE_VERSION).map_err(io)?;

    let _ = fs::remove_dir_all(rootfs);
    fs::rename(&tmp, rootfs).map_err(io)
}

/// Whether an ELF executable has no program interpreter (PT_INTERP), i.e. needs
/// no dynamic loader and no shared libraries.
pub fn is_static(path: &Path) -> Result<bool, String> {
    Ok(interpreter(path)?.is_none())
}

/// The program interpreter an ELF executable names (PT_INTERP): the dynamic
/// loader the kernel starts to load it and its shared libraries
/// (`/lib64/ld-linux-x86-64.so.2` on x86_64, `/lib/ld-linux-aarch64.so.1` on
/// aarch64); `None` for a static executable. Only 64-bit little-endian ELF, what
/// the machines minibox runs on have.
pub fn interpreter(path: &Path) -> Result<Option<PathBuf>, String> {
    let mut bytes = Vec::new();
    fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let not_elf = || format!("{}: not a 64-bit ELF file", path.display());
    let slice = |at: u64, len: u64| -> Result<&[u8], String> {
        usize::try_from(at)
            .ok()
            .and_then(|at| bytes.get(at..at.checked_add(usize::try_from(len).ok()?)?))
            .ok_or_else(not_elf)
    };
    let field = |at: u64, len: u64| -> Result<u64, String> {
        Ok(slice(at, len)?
            .iter()
            .rev()
            .fold(0u64, |acc, b| acc << 8 | u64::from(*b)))
    };
    if bytes.get(..5) != Some(b"\x7fELF\x02") {
        return Err(not_elf());
    }
    let (phoff, phentsize, phnum) = (field(0x20, 8)?, field(0x36, 2)?, field(0x38, 2)?);
    const PT_INTERP: u64 = 3;
    for i in 0..phnum {
        let header = phoff + i * phentsize;
        if field(header, 4)? == PT_INTERP {
            // p_offset and p_filesz: where the NUL-terminated path is.
            let name = slice(field(header + 8, 8)?, field(header + 32, 8)?)?;
            let name = name.split(|b| *b == 0).next().unwrap_or_default();
            return Ok(Some(PathBuf::from(std::ffi::OsStr::from_bytes(name))));
        }
    }
    Ok(None)
}

/// Builds the static fixture programs (once per process) and returns the path of
/// one of them.
pub fn static_program(name: &str) -> Result<PathBuf, String> {
    static BUILT: Mutex<bool> = Mutex::new(false);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let target_dir = fixtures_dir().join("programs");
    let triple = host_triple()?;
    if !*built {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace_root())
            .args(["build", "--quiet", "--release", "-p", "fixture-programs"])
            .args(["--target", &triple])
            .env("CARGO_TARGET_DIR", &target_dir)
            // Only for `--target` artifacts: build scripts stay dynamic.
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .status()
            .map_err(|e| format!("running cargo: {e}"))?;
        if !status.success() {
            return Err("building the static fixture programs failed (is the static C library installed? Debian: libc6-dev)".into());
        }
        *built = true;
    }
    Ok(target_dir.join(triple).join("release").join(name))
}

fn host_triple() -> Result<String, String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .map_err(|e| format!("running rustc -vV: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .ok_or_else(|| "rustc -vV did not say the host triple".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_executable_is_not_static() {
        // The test binary itself is dynamically linked (it has an interpreter).
        let me = std::env::current_exe().unwrap();
        assert!(!is_static(&me).unwrap());
        assert!(is_static(Path::new("/etc/passwd")).is_err());
        // Its interpreter is the loader that this very process was started by.
        let loader = interpreter(&me).unwrap().expect("an interpreter");
        assert!(loader.is_absolute(), "{}", loader.display());
        assert!(
            fs::read_to_string("/proc/self/maps")
                .unwrap()
                .contains(loader.file_name().unwrap().to_str().unwrap()),
            "{} is not mapped in this process",
            loader.display()
        );
    }
}
