//! The busybox image the container benchmarks (`start`, `build`) begin with:
//! the harness's fixture image, served as Docker Hub's `library/busybox` by a
//! registry of our own on 127.0.0.1, and pulled, untimed, into each tool's
//! store before anything is measured. The registry is stopped (dropped)
//! before the measurements begin, so that no measured run can pull.
//!
//! Its config lists the image's history, as Docker Hub's busybox does (the
//! layer's `ADD`, then the `CMD`), which the test fixture's does not: buildah
//! refuses to commit a build step on a base image whose history accounts for
//! fewer layers than it has ("history lists 1 non-empty layers, but we have 2
//! layers on disk").

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use harness::images::{Blob, CONFIG, Image, MANIFEST};
use harness::registry::Registry;
use serde_json::{Value, json};

use super::podman::Podman;
use crate::shell;

/// The registry serving busybox; stopped when dropped.
pub(super) struct Busybox {
    registry: Registry,
}

impl Busybox {
    /// Starts a registry on a free port of 127.0.0.1 and pushes the busybox
    /// fixture image to it as `library/busybox:latest`.
    pub(super) fn serve() -> Result<Busybox> {
        let registry = Registry::start();
        let busybox = harness::images::busybox().context("building the busybox image")?;
        registry.push("library/busybox", "latest", &with_history(busybox)?);
        Ok(Busybox { registry })
    }

    /// The registry's `127.0.0.1:PORT`.
    pub(super) fn host(&self) -> String {
        self.registry.host()
    }

    /// `BIN pull --quiet busybox` into the store `store`, the registry as
    /// Docker Hub's mirror (`MINIBOX_REGISTRY_MIRROR`), in this process's
    /// network namespace (where the registry listens). `BIN` is any
    /// chapter's binary from chapter 7 on.
    pub(super) fn pull_minibox(&self, bin: &Path, store: &Path) -> Result<()> {
        let mut pull = Command::new(bin);
        pull.args(["pull", "--quiet", "busybox"])
            .env("MINIBOX_ROOT", store)
            .env("MINIBOX_REGISTRY_MIRROR", self.host());
        shell::run(pull.stdout(std::io::stderr()))
    }

    /// `podman pull REFERENCE` (a name on this registry, or Docker Hub's when
    /// podman is configured with this registry as its mirror). Whether it
    /// worked: podman that cannot pull here is left out, saying why.
    pub(super) fn pull_podman(&self, podman: &Podman, reference: &str) -> bool {
        match podman
            .pull(reference)
            .and_then(|mut pull| shell::run(pull.stdout(std::io::stderr())))
        {
            Ok(()) => true,
            Err(err) => {
                println!("podman: cannot run here, left out: {err:#}");
                false
            }
        }
    }
}

/// `image`, its only layer and its `CMD` listed in its config's history, with
/// its config and manifest made again (and so their digests).
fn with_history(image: Image) -> Result<Image> {
    let mut config: Value = serde_json::from_slice(&image.config.bytes).context("the config")?;
    config["history"] = json!([
        { "created_by": "/bin/sh -c #(nop) ADD file:busybox in / " },
        { "created_by": "/bin/sh -c #(nop)  CMD [\"sh\"]", "empty_layer": true },
    ]);
    let config = Blob::new(CONFIG, serde_json::to_vec(&config)?);
    let mut manifest: Value =
        serde_json::from_slice(&image.manifest.bytes).context("the manifest")?;
    manifest["config"] = config.descriptor();
    Ok(Image {
        manifest: Blob::new(MANIFEST, serde_json::to_vec(&manifest)?),
        config,
        layers: image.layers,
    })
}
