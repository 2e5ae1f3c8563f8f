//! Bad bundles, as an engine could hand them over: each fails `create` the
//! way runc fails, with exit code 1 and one line on stderr, and the same
//! message as a JSON error line in `--log` (where containerd's shim reads
//! it); and each leaves nothing behind, even the one that fails only inside
//! the container's init. Then `features` and `spec`, the two commands that
//! need no container.

mod common;

use std::fs;

use common::Sandbox;
use serde_json::{Value, json};

/// Runs `create` on the sandbox's bundle, which must fail: one line on
/// stderr, the same message as the last JSON line of `--log`, nothing left.
/// Returns the message, the sandbox's directory in it as `<tmp>` (its name
/// holds the test's, which must not satisfy a check of the message).
fn create_fails(sandbox: &Sandbox, id: &str) -> String {
    let bundle = sandbox.bundle.to_str().unwrap();
    let line = sandbox
        .runc(&["create", "--bundle", bundle, id])
        .one_line_failure();
    let message = line.strip_prefix("minibox-runc: ").unwrap_or_else(|| {
        panic!("expected the error line to start with the program's name, but it is {line:?}")
    });
    let entry = sandbox.last_log_entry();
    assert_eq!(
        entry["level"], "error",
        "expected the log's last entry to be an error, but it is {entry}"
    );
    assert_eq!(
        entry["msg"], message,
        "expected the log's message to be stderr's {message:?}, but the entry is {entry}"
    );
    let time = entry["time"].as_str().unwrap_or_default();
    assert!(
        time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339).is_ok(),
        "expected an RFC 3339 time in the log entry, but it is {entry}"
    );
    sandbox.assert_clean();
    message.replace(&*sandbox.dir.path().to_string_lossy(), "<tmp>")
}

/// A sandbox whose config.json is the working one changed by `change`; the
/// error `create` gives must contain `expected`.
fn refused_bundle(name: &str, expected: &str, change: impl FnOnce(&Sandbox, &mut Value)) {
    let sandbox = Sandbox::new(name);
    let id = "bad";
    let mut config = sandbox.config(id, &["sleep", "1000"]);
    change(&sandbox, &mut config);
    sandbox.write_config(&config);
    let message = create_fails(&sandbox, id);
    assert!(
        message.contains(expected),
        "expected the error about {name} to contain {expected:?}, but it is {message:?}"
    );
}

#[test]
fn the_working_bundle_of_these_tests_is_accepted() {
    // The bad bundles below differ from this one by one change each: it
    // must work, or their failures would prove nothing.
    if !harness::require_root("the_working_bundle_of_these_tests_is_accepted") {
        return;
    }
    let sandbox = Sandbox::new("good-bundle");
    sandbox.write_config(&sandbox.config("good", &["sleep", "1000"]));
    sandbox.create("good");
    assert_eq!(sandbox.status("good"), "created");
    sandbox.runc(&["delete", "--force", "good"]).ok();
    sandbox.assert_clean();
}

#[test]
fn a_missing_config_json() {
    if !harness::require_root("a_missing_config_json") {
        return;
    }
    let sandbox = Sandbox::new("missing-config");
    let message = create_fails(&sandbox, "bad");
    assert!(
        message.contains("config.json"),
        "expected the error to name config.json, but it is {message:?}"
    );
}

#[test]
fn a_malformed_config_json() {
    if !harness::require_root("a_malformed_config_json") {
        return;
    }
    let sandbox = Sandbox::new("malformed-config");
    fs::write(
        sandbox.bundle.join("config.json"),
        "{\"ociVersion\": \"1.2.0\",",
    )
    .unwrap();
    let message = create_fails(&sandbox, "bad");
    assert!(
        message.contains("JSON"),
        "expected the error to say config.json is not JSON, but it is {message:?}"
    );
}

#[test]
fn an_unknown_namespace_type() {
    if !harness::require_root("an_unknown_namespace_type") {
        return;
    }
    refused_bundle("unknown-namespace", "bogus", |_, config| {
        config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "bogus"}));
    });
}

#[test]
fn a_time_namespace_minibox_does_not_make() {
    if !harness::require_root("a_time_namespace_minibox_does_not_make") {
        return;
    }
    refused_bundle("time-namespace", "linux.namespaces", |_, config| {
        config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
    });
}

#[test]
fn a_mount_with_a_relative_destination() {
    if !harness::require_root("a_mount_with_a_relative_destination") {
        return;
    }
    refused_bundle(
        "relative-destination",
        "not an absolute path",
        |_, config| {
            config["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"destination": "relative/tmp", "type": "tmpfs", "source": "tmpfs"}));
        },
    );
}

/// A program the root filesystem does not have fails `create`, as runc's
/// does (Docker: "OCI runtime create failed"), not the start.
#[test]
fn a_missing_program_fails_create() {
    if !harness::require_root("a_missing_program_fails_create") {
        return;
    }
    refused_bundle(
        "missing-program",
        "exec: \"no-such-program\": executable file not found in $PATH",
        |_, config| config["process"]["args"] = json!(["no-such-program"]),
    );
}

/// `--systemd-cgroup` is refused before anything is made, in one line that
/// fits the host: these machines run no systemd.
#[test]
fn systemd_cgroups_are_refused_in_one_line() {
    if !harness::require_root("systemd_cgroups_are_refused_in_one_line") {
        return;
    }
    let sandbox = Sandbox::new("systemd-cgroup");
    let id = "systemd";
    sandbox.write_config(&sandbox.config(id, &["sleep", "1000"]));
    let bundle = sandbox.bundle.to_str().unwrap();
    let line = sandbox
        .runc(&["--systemd-cgroup", "create", "--bundle", bundle, id])
        .one_line_failure();
    let systemd = std::path::Path::new("/run/systemd/system").is_dir();
    let expected = if systemd {
        "set the engine's cgroup driver to cgroupfs"
    } else {
        "this host does not run systemd"
    };
    assert!(
        line.contains("--systemd-cgroup") && line.contains(expected),
        "expected the refusal to name the flag and say {expected:?}, but it is {line:?}"
    );
    sandbox.assert_clean();
}

#[test]
fn intel_rdt_is_not_supported() {
    if !harness::require_root("intel_rdt_is_not_supported") {
        return;
    }
    refused_bundle("intel-rdt", "linux.intelRdt", |_, config| {
        config["linux"]["intelRdt"] = json!({"closID": "guaranteed_group"});
    });
}

#[test]
fn an_apparmor_profile_is_not_supported() {
    if !harness::require_root("an_apparmor_profile_is_not_supported") {
        return;
    }
    refused_bundle("apparmor", "process.apparmorProfile", |_, config| {
        config["process"]["apparmorProfile"] = json!("docker-default");
    });
}

#[test]
fn a_missing_rootfs() {
    if !harness::require_root("a_missing_rootfs") {
        return;
    }
    refused_bundle("missing-rootfs", "root.path", |_, config| {
        config["root"]["path"] = json!("no-such-rootfs");
    });
}

#[test]
fn a_mount_of_an_unknown_filesystem_fails_in_the_init() {
    if !harness::require_root("a_mount_of_an_unknown_filesystem_fails_in_the_init") {
        return;
    }
    refused_bundle("unknown-fs", "nosuchfs", |_, config| {
        config["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/mnt", "type": "nosuchfs", "source": "none"}));
    });
}

#[test]
fn features_prints_json_with_the_versions() {
    let sandbox = Sandbox::new("features");
    let ran = sandbox.runc(&["features"]).ok();
    let features: Value = serde_json::from_str(&ran.stdout).unwrap_or_else(|e| {
        panic!(
            "expected `features` to print JSON, but ({e}) it printed {:?}",
            ran.stdout
        )
    });
    assert_eq!(
        features["ociVersionMax"], "1.2.0",
        "ociVersionMax in {features}"
    );
    assert!(
        features["ociVersionMin"].is_string(),
        "expected an ociVersionMin string in {features}"
    );
    let hooks = features["hooks"].as_array().cloned().unwrap_or_default();
    assert!(
        hooks.contains(&json!("createContainer")) && hooks.contains(&json!("poststop")),
        "expected the hooks of the specification in {features}"
    );
    sandbox.assert_clean();
}

#[test]
fn spec_writes_a_config_that_create_accepts_and_never_overwrites() {
    if !harness::require_root("spec_writes_a_config_that_create_accepts_and_never_overwrites") {
        return;
    }
    let sandbox = Sandbox::new("spec");
    let id = "fromspec";
    let bundle = sandbox.bundle.to_str().unwrap();
    sandbox.runc(&["spec", "--bundle", bundle]).ok();
    let path = sandbox.bundle.join("config.json");
    let written = fs::read_to_string(&path).unwrap();
    let mut config: Value = serde_json::from_str(&written).unwrap_or_else(|e| {
        panic!("expected `spec` to write JSON, but ({e}) it wrote {written:?}")
    });
    assert_eq!(config["process"]["terminal"], true, "terminal in {config}");
    assert_eq!(config["root"]["path"], "rootfs", "root.path in {config}");

    let again = sandbox
        .runc(&["spec", "--bundle", bundle])
        .one_line_failure();
    assert!(
        again.contains("exists"),
        "expected a second `spec` to refuse to overwrite config.json, but it said {again:?}"
    );
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        written,
        "expected a refused `spec` to leave config.json as it was"
    );

    config["process"]["terminal"] = json!(false);
    config["process"]["args"] = json!(["sleep", "1000"]);
    config["linux"]["cgroupsPath"] = json!(sandbox.cgroups_path(id));
    sandbox.write_config(&config);
    sandbox.create(id);
    assert_eq!(sandbox.status(id), "created");
    sandbox.runc(&["start", id]).ok();
    let ran = sandbox.runc(&["exec", id, "hostname"]).ok();
    assert_eq!(
        ran.stdout, "minibox\n",
        "expected spec's hostname in the container, but exec printed {:?}",
        ran.stdout
    );
    sandbox.runc(&["delete", "--force", id]).ok();
    sandbox.assert_clean();
}

#[test]
fn spec_without_bundle_writes_into_the_working_directory() {
    let sandbox = Sandbox::new("spec-cwd");
    let mut spec = sandbox.command(&["spec"]);
    spec.current_dir(&sandbox.bundle);
    sandbox.run_command(spec).ok();
    let text = fs::read_to_string(sandbox.bundle.join("config.json")).unwrap_or_default();
    assert!(
        serde_json::from_str::<Value>(&text)
            .is_ok_and(|c| c["ociVersion"] == "1.0.2" && c["process"]["args"][0] == "sh"),
        "expected `spec` to write config.json into its working directory, but it holds {text:?}"
    );
    sandbox.assert_clean();
}
