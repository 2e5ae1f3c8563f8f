//! The redis fixture image holds everything redis needs, proven by running it:
//! its two layers (busybox, then redis) unpacked into a directory make a root
//! filesystem in which the image's own command, started as its config says
//! (root changed with chroot(2), its Env, its WorkingDir), serves on
//! 127.0.0.1 and answers the host's `redis-cli` with PONG. Had the loader or
//! any library been left out, exec would fail with ENOENT or the loader would
//! name what it could not find.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use harness::images::{self, HOST_REDIS_CLI, Image};

/// The image's config object (`Cmd`, `Env`, `WorkingDir`...).
fn config(image: &Image) -> serde_json::Value {
    let config: serde_json::Value = serde_json::from_slice(&image.config.bytes).unwrap();
    config["config"].clone()
}

/// Unpacks the layers, bottom first, into `root`. These two have no
/// whiteouts, so plain extraction in order is the whole union.
fn unpack(image: &Image, root: &Path) {
    for layer in &image.layers {
        let tar = flate2::read::GzDecoder::new(&layer.blob.bytes[..]);
        tar::Archive::new(tar).unpack(root).expect("unpack a layer");
    }
}

/// `args` (a command as a config's `Cmd` holds it: `args[0]` looked up in the
/// image's PATH) run in the image unpacked at `root`, the way a runtime would
/// start it: root changed to `root`, in the config's WorkingDir, with only
/// the config's Env.
fn in_image(root: &Path, config: &serde_json::Value, args: &[String]) -> Command {
    let mut command = Command::new(&args[0]);
    command.args(&args[1..]).env_clear();
    for pair in config["Env"].as_array().unwrap() {
        let (key, value) = pair.as_str().unwrap().split_once('=').unwrap();
        command.env(key, value);
    }
    let root = CString::new(root.as_os_str().as_bytes()).unwrap();
    let workdir = CString::new(config["WorkingDir"].as_str().unwrap()).unwrap();
    // SAFETY: chroot(2) and chdir(2) are async-signal-safe, as pre_exec
    // requires, and only read the two strings made before the fork. The
    // program is looked up (execvp) after them, in the image's PATH.
    unsafe {
        command.pre_exec(move || {
            if libc::chroot(root.as_ptr()) != 0 || libc::chdir(workdir.as_ptr()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
}

fn text(output: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A server this test started, killed by its PID (and reaped) when the test
/// ends, whether it passed or not.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Asks redis on 127.0.0.1:`port` for PONG with the host's `redis-cli`, until
/// it answers (10 s at most).
fn wait_for_pong(server: &mut Server, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new(HOST_REDIS_CLI)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "ping"])
            .output()
            .expect("run redis-cli");
        if String::from_utf8_lossy(&out.stdout).trim() == "PONG" {
            return;
        }
        if let Some(status) = server.0.try_wait().unwrap() {
            let rest = server.0.stdout.take().map(std::io::read_to_string);
            panic!("redis-server ended ({status}): {rest:?}");
        }
        assert!(
            Instant::now() < deadline,
            "no PONG from 127.0.0.1:{port}: {}",
            text(&out)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_redis_image_is_busybox_then_redis_with_dockers_config() {
    let image = images::redis().expect("the redis image");
    assert_eq!(image.layers.len(), 2, "busybox, then redis");
    let busybox = images::busybox().unwrap();
    assert_eq!(image.layers[0].diff_id, busybox.layers[0].diff_id);
    let config = config(&image);
    assert_eq!(
        config["Cmd"],
        serde_json::json!(["redis-server", "--protected-mode", "no"])
    );
    assert_eq!(config["WorkingDir"], "/data");
    assert_eq!(
        config["ExposedPorts"],
        serde_json::json!({ "6379/tcp": {} })
    );
    assert!(
        config["Env"][0].as_str().unwrap().starts_with("PATH="),
        "{config}"
    );

    // The server is a regular file under its own name (Debian's is a link to
    // redis-check-rdb, which would run the checker), and so is the client.
    let entries = entries(&image.layers[1]);
    for program in ["usr/bin/redis-server", "usr/bin/redis-cli"] {
        assert_eq!(
            entries.get(program),
            Some(&tar::EntryType::Regular),
            "{program} in {entries:?}"
        );
    }
    assert_eq!(entries.get("data"), Some(&tar::EntryType::Directory));
}

/// The entries of a layer, by name, with their types.
fn entries(layer: &images::Layer) -> BTreeMap<String, tar::EntryType> {
    let tar = flate2::read::GzDecoder::new(&layer.blob.bytes[..]);
    tar::Archive::new(tar)
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.path().unwrap().display().to_string();
            (
                name.trim_end_matches('/').to_string(),
                e.header().entry_type(),
            )
        })
        .collect()
}

#[test]
fn redis_from_the_unpacked_image_answers_the_hosts_redis_cli() {
    if !harness::require_root("redis image: redis-server in a chroot answers PONG") {
        return;
    }
    let image = images::redis().expect("the redis image");
    let config = config(&image);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    unpack(&image, root);

    // Every library is there: the server and the client start in it.
    for (program, says) in [
        ("redis-server", "Redis server v="),
        ("redis-cli", "redis-cli "),
    ] {
        let out = in_image(root, &config, &[program.into(), "--version".into()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{program} --version: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with(says),
            "{program} --version: {}",
            text(&out)
        );
    }

    // The image's own command, only told where to listen: 127.0.0.1 and a
    // free port of this test's, not 6379 on every address.
    let port = harness::registry::free_port();
    let mut cmd: Vec<String> = serde_json::from_value(config["Cmd"].clone()).unwrap();
    cmd.extend(["--bind", "127.0.0.1", "--port", &port.to_string()].map(String::from));
    let child = in_image(root, &config, &cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start redis-server in the image");
    let mut server = Server(child);
    wait_for_pong(&mut server, port);

    // The image's redis-cli talks to it too, and redis writes in /data.
    let out = in_image(
        root,
        &config,
        &[
            "redis-cli",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "save",
        ]
        .map(String::from),
    )
    .output()
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "OK",
        "{}",
        text(&out)
    );
    assert!(root.join("data/dump.rdb").is_file(), "no /data/dump.rdb");
}
