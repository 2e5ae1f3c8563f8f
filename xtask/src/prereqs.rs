//! Host prerequisites: what the tests and demos need that cargo cannot install.
//! Missing ones are installed with apt-get when we are root on Debian or Ubuntu;
//! otherwise one line says what to install.

use std::path::Path;
use std::process::Command;

use anyhow::{Result, bail};

use crate::shell;

/// A Debian package and how to tell it is there.
struct Prereq {
    package: &'static str,
    /// A file the package installs.
    provides: &'static str,
    /// Why minibox needs it.
    why: &'static str,
}

const PREREQS: &[Prereq] = &[
    Prereq {
        package: "git",
        provides: "/usr/bin/git",
        why: "exercise verification applies solution patches with git apply",
    },
    Prereq {
        package: "busybox-static",
        provides: harness::fixtures::HOST_BUSYBOX,
        why: "the root filesystem of chapter 4 on",
    },
    Prereq {
        package: "docker-registry",
        provides: harness::registry::SERVER,
        why: "the real registry server the image tests push to and pull from",
    },
    Prereq {
        package: "redis-server",
        provides: harness::images::HOST_REDIS_SERVER,
        why: "the redis fixture image is built from the host's redis-server and its libraries",
    },
    Prereq {
        package: "redis-tools",
        provides: harness::images::HOST_REDIS_CLI,
        why: "the redis image carries redis-cli, and chapter 9's tests ping redis with it",
    },
    Prereq {
        package: "libc6-dev",
        provides: "/usr/include/stdio.h",
        why: "static fixture programs link the C library statically",
    },
    Prereq {
        package: "curl",
        provides: "/usr/bin/curl",
        why: "chapter 7's by-hand section talks to the registry API with curl",
    },
    Prereq {
        package: "procps",
        provides: "/usr/bin/ps",
        why: "the by-hand sections and demos list processes with ps",
    },
    Prereq {
        package: "iproute2",
        provides: "/usr/bin/ip",
        why: "chapter 9's tests and by-hand section look at links and routes with ip",
    },
    Prereq {
        package: "iptables",
        provides: "/usr/sbin/iptables",
        why: "chapter 9's outbound NAT (a MASQUERADE rule in minibox's own chain)",
    },
    Prereq {
        package: "iputils-ping",
        provides: "/usr/bin/ping",
        why: "chapter 9's by-hand section pings the container from the host",
    },
    Prereq {
        package: "skopeo",
        provides: "/usr/bin/skopeo",
        why: "chapter 11's tests read the archives `save` writes, and write those `load` reads, with skopeo",
    },
    Prereq {
        package: "umoci",
        provides: "/usr/bin/umoci",
        why: "chapter 11's tests unpack the OCI layout `save` writes with umoci",
    },
    Prereq {
        package: "uidmap",
        provides: "/usr/bin/newuidmap",
        why: "chapter 13 maps a user's subordinate IDs with the setuid newuidmap and newgidmap",
    },
    Prereq {
        package: "passt",
        provides: "/usr/bin/pasta",
        why: "chapter 13's rootless containers reach the network through pasta",
    },
    Prereq {
        package: "slirp4netns",
        provides: "/usr/bin/slirp4netns",
        why: "chapter 13's rootless containers reach the network through slirp4netns where pasta is not installed",
    },
    Prereq {
        package: "podman",
        provides: harness::engines::podman::BINARIES[0],
        why: "chapter 14's engine tests run containers through podman and conmon",
    },
    Prereq {
        package: "conmon",
        provides: harness::engines::podman::BINARIES[1],
        why: "podman's container monitor, which calls chapter 14's runtime",
    },
    Prereq {
        package: "docker.io",
        provides: harness::engines::docker::BINARIES[0],
        why: "chapter 14's engine tests run containers through dockerd",
    },
    Prereq {
        package: "containerd",
        provides: harness::engines::containerd::BINARIES[0],
        why: "chapter 14's engine tests run containers through containerd (ctr and containerd-shim-runc-v2)",
    },
    Prereq {
        package: "runc",
        provides: "/usr/sbin/runc",
        why: "chapter 14's by-hand section runs a bundle's lifecycle with runc, the reference OCI runtime its engine tests are proven with",
    },
    Prereq {
        package: "util-linux",
        provides: "/usr/bin/nsenter",
        why: "the by-hand sections use unshare, nsenter, findmnt and ipcmk",
    },
];

/// Installs what is missing, or fails with one line saying what to install.
pub fn ensure() -> Result<()> {
    let missing: Vec<&Prereq> = PREREQS
        .iter()
        .filter(|p| !Path::new(p.provides).exists())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    for prereq in &missing {
        eprintln!("xtask: missing {} ({})", prereq.package, prereq.why);
    }
    let packages: Vec<&str> = missing.iter().map(|p| p.package).collect();
    let can_apt = harness::privilege::is_root() && Path::new("/usr/bin/apt-get").exists();
    if !can_apt {
        bail!(
            "install the missing packages, e.g. `sudo apt-get install {}`, then run this again",
            packages.join(" ")
        );
    }
    shell::run(Command::new("apt-get").arg("update").arg("-q"))?;
    shell::run(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}
