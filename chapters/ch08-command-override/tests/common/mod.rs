//! What chapter 8's tests share: a store of their own, the real registry with
//! the fixtures and this chapter's extra images, and the chapter's binary run
//! with both.

#![allow(dead_code)] // each test file uses its own part of this

use harness::images::{self, Image, Layer, LayerBuilder};
use harness::registry::Registry;

/// The chapter's binary.
pub const MINIBOX: &str = env!("CARGO_BIN_EXE_ch08-command-override");

pub use harness::env::Env;
pub use harness::process::wait;

/// An environment of the test's own (see `harness::env`): a store and a
/// cgroup parent, Docker Hub's names served by `mirror`, and the caller's
/// environment cleared but for PATH, so a variable that reaches the container
/// can only have come from the image or the flags.
pub fn env(test: &str, mirror: &Registry) -> Env {
    Env::builder(MINIBOX, "ch08", test)
        .mirror(mirror)
        .clean_environment()
        .build()
}

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
