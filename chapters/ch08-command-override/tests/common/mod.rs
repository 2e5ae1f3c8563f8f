//! What chapter 8's tests share: a store of their own, the real registry with
//! the fixtures and this chapter's extra images, and the chapter's binary run
//! with both.

#![allow(dead_code)] // each test file uses its own part of this

use std::process::{Command, Stdio};

use harness::images::{self, Image, Layer, LayerBuilder};
use harness::registry::Registry;

/// The chapter's binary.
pub const MINIBOX: &str = env!("CARGO_BIN_EXE_ch08-command-override");

/// A store (`MINIBOX_ROOT`), a credentials directory and a cgroup parent, all
/// of the test's own, removed at the end; and the registry mirror.
pub struct Env {
    /// The store.
    pub store: tempfile::TempDir,
    cgroup_parent: String,
    mirror: String,
}

impl Env {
    /// A fresh environment whose Docker Hub names are served by `mirror`.
    pub fn new(test: &str, mirror: &Registry) -> Env {
        Env {
            store: tempfile::tempdir().expect("a temporary store"),
            cgroup_parent: harness::cgroups::test_parent(&format!(
                "minibox-ch08-{}-{test}",
                std::process::id()
            )),
            mirror: mirror.host(),
        }
    }

    /// `minibox ARGS` with this environment, not started yet. The caller's
    /// environment is cleared but for PATH, so a variable that reaches the
    /// container can only have come from the image or the flags.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(MINIBOX);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("MINIBOX_ROOT", self.store.path())
            .env("MINIBOX_CONFIG", "/nonexistent")
            .env("DOCKER_CONFIG", "/nonexistent")
            .env("MINIBOX_CGROUP_PARENT", &self.cgroup_parent)
            .env("MINIBOX_REGISTRY_MIRROR", &self.mirror)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs `minibox ARGS` to the end (60 s at most).
    pub fn minibox(&self, args: &[&str]) -> Run {
        let child = self.command(args).spawn().expect("run minibox");
        wait(child, args)
    }
}

pub use harness::process::{Run, wait};

/// busybox's layer with `extra` on top.
pub fn on_busybox(extra: Layer) -> Image {
    let mut layers = images::busybox().expect("busybox").layers;
    layers.push(extra);
    images::image(layers, &["sh"])
}

/// A user and a group the host does not have, and a `nobody` whose numbers
/// differ from the host's (65534), so a test can tell whose files were read.
pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:4000:4000:nobody:/nonexistent:/bin/false\nminibox-app:x:4321:4321:app:/home/minibox-app:/bin/sh\n";
/// The groups that go with [`PASSWD`]: minibox-app is also in minibox-extra.
pub const GROUP: &str =
    "root:x:0:\nnogroup:x:4000:\nminibox-app:x:4321:\nminibox-extra:x:5555:minibox-app\n";

/// The registry with the harness's fixtures (`minibox/echo` among them:
/// Entrypoint `["echo","hello"]`, Cmd `["world"]`) and this chapter's images:
/// `minibox/nocmd` (neither), `minibox/users` (busybox with [`PASSWD`],
/// [`GROUP`] and a non-executable `/data/notes.txt`).
pub fn registry() -> Registry {
    let registry = Registry::start();
    registry.push_fixtures().expect("fixtures");
    let busybox = images::busybox().expect("busybox");
    let nocmd = images::with_config(busybox, serde_json::json!({ "Cmd": null }));
    registry.push("minibox/nocmd", "latest", &nocmd);
    let users = on_busybox(
        LayerBuilder::default()
            .dir("etc/")
            .file("etc/passwd", PASSWD)
            .file("etc/group", GROUP)
            .dir("data/")
            .file("data/notes.txt", "not a program\n")
            .build(),
    );
    registry.push("minibox/users", "latest", &users);
    registry
}
