//! `features` and `spec`: what this runtime supports, for an engine to ask
//! (containerd reads `features` to learn, say, whether idmapped mounts
//! work), and a default config.json to start a bundle from.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::state::{OCI_VERSION, SPEC_VERSION};

/// `features`' JSON (the specification's `features.md`).
pub fn features() -> serde_json::Value {
    let caps = ch12_security::capabilities::NAMES.to_vec();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "sync", "async",
            "dirsync", "remount", "mand", "nomand", "atime", "noatime", "diratime", "nodiratime",
            "relatime", "norelatime", "strictatime", "nostrictatime", "bind", "rbind",
            "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_GT", "SCMP_CMP_GE", "SCMP_CMP_MASKED_EQ"],
                "archs": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {"org.opencontainers.runtime-spec.features.implementation": "minibox-runc"}
    })
}

// ANCHOR: spec
/// `spec`: writes runc's default config.json into `dir`: `sh` in `rootfs`,
/// with a terminal, the default mounts, masked and read-only paths, and
/// Docker's default capabilities; `rootless` adds a user namespace that maps
/// the caller's IDs to root.
pub fn spec(dir: &Path, rootless: bool) -> Result<()> {
    let path = dir.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let caps = ch12_security::capabilities::DOCKER_DEFAULT.to_vec();
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "network"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    let mut config = json!({
        "ociVersion": SPEC_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "minibox",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [],
            "maskedPaths": ch12_security::paths::MASKED.to_vec(),
            "readonlyPaths": ch12_security::paths::READ_ONLY.to_vec()
        }
    });
    if rootless {
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        namespaces.push(json!({"type": "user"}));
        config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
    }
    config["linux"]["namespaces"] = json!(namespaces);
    let text = serde_json::to_string_pretty(&config)?;
    std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))
}
// ANCHOR_END: spec
