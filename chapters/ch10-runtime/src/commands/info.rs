//! `minibox version` and `minibox info`: what this minibox is, and what the
//! machine gives it, with a line for each thing that is missing and how to
//! fix it, as `docker info` ends with its warnings.

use std::path::Path;

use anyhow::Result;
use ch01_fork_exec::exit::Exit;
use ch01_fork_exec::narrate;
use ch05_cgroups::cgroup::{self, Layout};
use ch06_rootfs_snapshot::snapshot;
use ch07_image_pull::store::Store as ImageStore;
use ch09_networking::network;

use crate::container::Spec;
use crate::state::{self, Status, Store};

/// `docker version`, for a daemonless tool: the client is the whole thing.
pub fn version() -> Result<Exit> {
    let lines = [
        format!("minibox version {} (chapter 10)", env!("CARGO_PKG_VERSION")),
        format!(" OS/Arch:   linux/{}", go_arch()),
        format!(" Kernel:    {}", kernel()),
    ];
    for line in lines {
        narrate::print(line)?;
    }
    Ok(Exit::Code(0))
}

// ANCHOR: info
/// `docker info`: containers and images, where they are kept, the kernel's
/// cgroups and network, then what is missing.
pub fn info(store: &Store) -> Result<Exit> {
    let root = snapshot::minibox_root();
    let containers = store.list::<Spec>()?;
    let count = |status: Status| {
        containers
            .iter()
            .filter(|c| c.state.status == status)
            .count()
    };
    // Images, not names: `tag` adds a name to the same image (its config).
    let index = ImageStore::existing(&root).images()?;
    let configs: std::collections::BTreeSet<&String> =
        index.values().map(|record| &record.config).collect();
    let images = configs.len();
    let layout = cgroup::detect(Path::new(cgroup::ROOT));
    let mut warnings = Vec::new();
    let lines = vec![
        format!("Containers: {}", containers.len()),
        format!(" Running: {}", count(Status::Running)),
        format!(" Paused: {}", count(Status::Paused)),
        format!(
            " Stopped: {}",
            count(Status::Exited) + count(Status::Dead) + count(Status::Created)
        ),
        format!("Images: {images}"),
        "Storage Driver: overlay (chapter 6's overlay snapshotter; --snapshotter copy beside it)"
            .into(),
        format!("Minibox Root Dir: {}", root.display()),
        format!("Runtime Dir: {}", state::run_dir().display()),
        "Logging Driver: json-file".into(),
        "Cgroup Driver: cgroupfs".into(),
        format!("Cgroup Version: {}", cgroup_version(&layout, &mut warnings)),
        format!(
            "Network: {} on {} (bridge), none, host",
            network::BRIDGE,
            subnet()
        ),
        format!("Kernel Version: {}", kernel()),
        format!("Architecture: {}", std::env::consts::ARCH),
        format!(
            "CPUs: {}",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ),
    ];
    check_tools(&mut warnings);
    for line in lines.into_iter().chain(warnings) {
        narrate::print(line)?;
    }
    Ok(Exit::Code(0))
}
// ANCHOR_END: info

/// `1` or `2`, and a warning where limits cannot work.
fn cgroup_version(layout: &Result<Layout>, warnings: &mut Vec<String>) -> &'static str {
    match layout {
        Ok(Layout::Unified) => "2",
        Ok(Layout::Legacy | Layout::Hybrid) => "1",
        Err(error) => {
            warnings.push(format!(
                "WARNING: no cgroup filesystem at {} ({error:#}): resource limits cannot work; mount cgroup2 there",
                cgroup::ROOT
            ));
            "unknown"
        }
    }
}

/// The bridge's subnet, as configured.
fn subnet() -> String {
    network::configured_subnet().map_or_else(|e| format!("(invalid: {e:#})"), |s| s.to_string())
}

/// The programs the bridge network needs, each with its package.
fn check_tools(warnings: &mut Vec<String>) {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = |program: &str| std::env::split_paths(&path).any(|dir| dir.join(program).is_file());
    for (program, package) in [("iptables", "iptables")] {
        if !found(program) {
            warnings.push(format!(
                "WARNING: {program} is missing: containers on the bridge cannot reach the outside world (install the {package} package)"
            ));
        }
    }
    let forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap_or_default();
    if forward.trim() != "1" {
        warnings.push(
            "WARNING: IPv4 forwarding is off (minibox turns it on at the first bridged container: net.ipv4.ip_forward=1)".into(),
        );
    }
}

/// The kernel's release, `uname -r`.
fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".into(), |s| s.trim().to_string())
}

/// Go's name for this architecture, as Docker prints it (`amd64`, `arm64`).
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}
