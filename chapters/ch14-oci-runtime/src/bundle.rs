//! The bundle: a directory with `config.json` (the OCI runtime
//! specification's format) and, usually, the root filesystem beside it.
//!
//! The specification has far more fields than any one runtime implements
//! (Solaris zones, Windows, VMs, Intel RDT...). A field a runtime skips is a
//! promise broken in silence: a container that should be limited is not.
//! So every key of config.json is checked against the list of what minibox
//! implements ([`SUPPORTED`]) *before* anything is made, and the first key
//! outside it fails `create` with its path named. A few keys are accepted
//! only with their "nothing asked" value (an empty AppArmor profile, say),
//! because engines send them empty ([`EMPTY_ONLY`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use oci_spec::runtime::Spec;
use serde_json::Value;

// ANCHOR: supported
/// Every key minibox implements, as dotted paths: `[]` is each element of
/// an array, `*` any key of a map whose keys are data (annotations, sysctl).
pub const SUPPORTED: &[&str] = &[
    "ociVersion",
    "root.path",
    "root.readonly",
    "mounts[].destination",
    "mounts[].type",
    "mounts[].source",
    "mounts[].options",
    "process.terminal",
    "process.consoleSize.height",
    "process.consoleSize.width",
    "process.user.uid",
    "process.user.gid",
    "process.user.umask",
    "process.user.additionalGids",
    "process.args",
    "process.env",
    "process.cwd",
    "process.capabilities.bounding",
    "process.capabilities.effective",
    "process.capabilities.inheritable",
    "process.capabilities.permitted",
    "process.capabilities.ambient",
    "process.rlimits[].type",
    "process.rlimits[].hard",
    "process.rlimits[].soft",
    "process.noNewPrivileges",
    "process.oomScoreAdj",
    "hostname",
    "domainname",
    "annotations.*",
    "hooks.prestart[].path",
    "hooks.prestart[].args",
    "hooks.prestart[].env",
    "hooks.prestart[].timeout",
    "hooks.createRuntime[].path",
    "hooks.createRuntime[].args",
    "hooks.createRuntime[].env",
    "hooks.createRuntime[].timeout",
    "hooks.createContainer[].path",
    "hooks.createContainer[].args",
    "hooks.createContainer[].env",
    "hooks.createContainer[].timeout",
    "hooks.startContainer[].path",
    "hooks.startContainer[].args",
    "hooks.startContainer[].env",
    "hooks.startContainer[].timeout",
    "hooks.poststart[].path",
    "hooks.poststart[].args",
    "hooks.poststart[].env",
    "hooks.poststart[].timeout",
    "hooks.poststop[].path",
    "hooks.poststop[].args",
    "hooks.poststop[].env",
    "hooks.poststop[].timeout",
    "linux.namespaces[].type",
    "linux.namespaces[].path",
    "linux.uidMappings[].containerID",
    "linux.uidMappings[].hostID",
    "linux.uidMappings[].size",
    "linux.gidMappings[].containerID",
    "linux.gidMappings[].hostID",
    "linux.gidMappings[].size",
    "linux.devices[].type",
    "linux.devices[].path",
    "linux.devices[].major",
    "linux.devices[].minor",
    "linux.devices[].fileMode",
    "linux.devices[].uid",
    "linux.devices[].gid",
    "linux.resources.devices[].allow",
    "linux.resources.devices[].type",
    "linux.resources.devices[].major",
    "linux.resources.devices[].minor",
    "linux.resources.devices[].access",
    "linux.resources.memory.limit",
    "linux.resources.memory.swap",
    "linux.resources.cpu.shares",
    "linux.resources.cpu.quota",
    "linux.resources.cpu.period",
    "linux.resources.pids.limit",
    "linux.cgroupsPath",
    "linux.sysctl.*",
    "linux.seccomp.defaultAction",
    "linux.seccomp.defaultErrnoRet",
    "linux.seccomp.architectures",
    "linux.seccomp.flags",
    "linux.seccomp.syscalls[].names",
    "linux.seccomp.syscalls[].action",
    "linux.seccomp.syscalls[].errnoRet",
    "linux.seccomp.syscalls[].args[].index",
    "linux.seccomp.syscalls[].args[].value",
    "linux.seccomp.syscalls[].args[].valueTwo",
    "linux.seccomp.syscalls[].args[].op",
    "linux.maskedPaths",
    "linux.readonlyPaths",
    "linux.rootfsPropagation",
];
// ANCHOR_END: supported

/// Keys accepted only when they ask for nothing: engines send them empty
/// (Docker an empty `blockIO`, podman an empty AppArmor profile where the
/// host has none).
pub const EMPTY_ONLY: &[&str] = &[
    "process.apparmorProfile",
    "process.selinuxLabel",
    "linux.mountLabel",
    "linux.resources.blockIO",
    "linux.resources.hugepageLimits",
    "linux.resources.network",
    "linux.resources.rdma",
    "linux.resources.unified",
    "linux.resources.memory.reservation",
    "linux.resources.memory.kernel",
    "linux.resources.memory.kernelTCP",
    "linux.resources.memory.swappiness",
    "linux.resources.memory.disableOOMKiller",
    "linux.resources.memory.useHierarchy",
    "linux.resources.memory.checkBeforeUpdate",
    "linux.resources.cpu.cpus",
    "linux.resources.cpu.mems",
    "linux.resources.cpu.realtimeRuntime",
    "linux.resources.cpu.realtimePeriod",
    "linux.resources.cpu.idle",
    "linux.resources.cpu.burst",
    "linux.resources.pids",
    "linux.resources.memory",
    "linux.resources.cpu",
    "linux.seccomp.listenerPath",
    "linux.seccomp.listenerMetadata",
];

// ANCHOR: load
/// Reads `bundle/config.json`, checks every key, and parses it.
pub fn load(bundle: &Path) -> Result<(PathBuf, Spec)> {
    let bundle = std::path::absolute(bundle)
        .with_context(|| format!("the bundle path {}", bundle.display()))?;
    let path = bundle.join("config.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the bundle's config {}", path.display()))?;
    let value: Value = serde_json::from_str(&text)
        .with_context(|| format!("parsing {}: not valid JSON", path.display()))?;
    check_keys(&value)?;
    let spec: Spec = serde_json::from_value(value).with_context(|| {
        format!(
            "parsing {}: not the runtime specification's format",
            path.display()
        )
    })?;
    check_values(&spec)?;
    Ok((bundle, spec))
}
// ANCHOR_END: load

// ANCHOR: check_keys
/// Fails on the first key of `config` that minibox does not implement,
/// naming it: `config.json: linux.intelRdt is not supported by minibox`.
pub fn check_keys(config: &Value) -> Result<()> {
    walk(config, "", &mut |path, value| {
        let pattern = path.trim_start_matches('.');
        if SUPPORTED.iter().any(|s| covers(s, pattern)) {
            return Ok(false); // supported: a leaf, or a map of data
        }
        if EMPTY_ONLY.contains(&pattern) && is_empty(value) {
            return Ok(false);
        }
        if SUPPORTED.iter().any(|s| {
            s.starts_with(&format!("{pattern}.")) || s.starts_with(&format!("{pattern}[]"))
        }) {
            return Ok(true); // an object on the way to supported keys
        }
        bail!("config.json: {pattern} is not supported by minibox")
    })
}

/// Whether the supported key `supported` covers `path`: equal, or `path` is
/// data inside a `*` map.
fn covers(supported: &str, path: &str) -> bool {
    match supported.strip_suffix(".*") {
        Some(map) => path.starts_with(&format!("{map}.")),
        None => supported == path,
    }
}

/// Calls `visit` on every key of `value` with its dotted path (array
/// elements as `[]`); descends where `visit` returns true.
fn walk(
    value: &Value,
    path: &str,
    visit: &mut dyn FnMut(&str, &Value) -> Result<bool>,
) -> Result<()> {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let child_path = format!("{path}.{key}");
                if visit(&child_path, child)? {
                    walk(child, &child_path, visit)?;
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(item, &format!("{path}[]"), visit)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Whether `value` asks for nothing: null, false, 0, "", [] or an object of
/// such values.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_empty),
    }
}
// ANCHOR_END: check_keys

/// The checks of values that the specification states and serde cannot:
/// absolute mount destinations, a root path, arguments.
pub fn check_values(spec: &Spec) -> Result<()> {
    let Some(root) = spec.root() else {
        bail!("config.json: root is missing");
    };
    if root.path().as_os_str().is_empty() {
        bail!("config.json: root.path is empty");
    }
    for mount in spec.mounts().iter().flatten() {
        if !mount.destination().is_absolute() {
            bail!(
                "config.json: mounts: destination {:?} is not an absolute path",
                mount.destination()
            );
        }
    }
    let Some(process) = spec.process() else {
        bail!("config.json: process is missing");
    };
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        bail!("config.json: process.args must not be empty");
    }
    if !Path::new(process.cwd()).is_absolute() {
        bail!(
            "config.json: process.cwd {:?} is not an absolute path",
            process.cwd()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_supported_key_passes() {
        let config = json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs", "readonly": true},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                        "capabilities": {"bounding": ["CAP_KILL"]}, "apparmorProfile": ""},
            "annotations": {"anything.goes": "here"},
            "linux": {"sysctl": {"net.ipv4.ip_forward": "1"},
                      "resources": {"memory": {"limit": 1, "swappiness": 0}, "blockIO": {}}}
        });
        check_keys(&config).unwrap();
    }

    #[test]
    fn an_unsupported_key_is_named() {
        let config = json!({"linux": {"intelRdt": {"closID": "x"}}});
        let error = check_keys(&config).unwrap_err();
        assert_eq!(
            error.to_string(),
            "config.json: linux.intelRdt is not supported by minibox"
        );
        let config = json!({"process": {"apparmorProfile": "docker-default"}});
        let error = check_keys(&config).unwrap_err();
        assert_eq!(
            error.to_string(),
            "config.json: process.apparmorProfile is not supported by minibox"
        );
        let config = json!({"mounts": [{"destination": "/x", "uidMappings": []}]});
        // an empty list asks for nothing, but it is not a key minibox knows
        let error = check_keys(&config).unwrap_err();
        assert!(
            error.to_string().contains("mounts[].uidMappings"),
            "{error}"
        );
    }
}
