//! What chapter 7's tests share: a store of their own, the real registry,
//! and the chapter's binary run with both.

#![allow(dead_code)] // each test file uses its own part of this

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use harness::registry::Registry;

/// The chapter's binary.
pub const MINIBOX: &str = env!("CARGO_BIN_EXE_ch07-image-pull");

/// A store (`MINIBOX_ROOT`), a credentials directory (`MINIBOX_CONFIG`) and a
/// cgroup parent, all of the test's own, removed at the end.
pub struct Env {
    /// The store.
    pub store: tempfile::TempDir,
    /// Where `minibox login` writes; Docker's config is pointed here too, so
    /// no credentials of the machine's user take part.
    pub config: tempfile::TempDir,
    cgroup_parent: String,
    /// `MINIBOX_REGISTRY_MIRROR`, when the test uses Docker Hub names.
    pub mirror: Option<String>,
}

impl Env {
    /// A fresh environment; `mirror` serves Docker Hub references.
    pub fn new(test: &str, mirror: Option<&Registry>) -> Env {
        Env {
            store: tempfile::tempdir().expect("a temporary store"),
            config: tempfile::tempdir().expect("a temporary config"),
            cgroup_parent: harness::cgroups::test_parent(&format!(
                "minibox-ch07-{}-{test}",
                std::process::id()
            )),
            mirror: mirror.map(Registry::host),
        }
    }

    /// The store's root.
    pub fn root(&self) -> &Path {
        self.store.path()
    }

    /// `minibox ARGS` with this environment, not started yet.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(MINIBOX);
        command
            .args(args)
            .env("MINIBOX_ROOT", self.store.path())
            .env("MINIBOX_CONFIG", self.config.path())
            .env("DOCKER_CONFIG", self.config.path().join("docker"))
            .env("MINIBOX_CGROUP_PARENT", &self.cgroup_parent)
            .env_remove("MINIBOX_REGISTRY_MIRROR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(mirror) = &self.mirror {
            command.env("MINIBOX_REGISTRY_MIRROR", mirror);
        }
        command
    }

    /// Runs `minibox ARGS` to the end (60 s at most).
    pub fn minibox(&self, args: &[&str]) -> Run {
        let child = self.command(args).spawn().expect("run minibox");
        wait(child, args)
    }

    /// Unpacked layers in the store (complete ones: their final names).
    pub fn layers(&self) -> Vec<PathBuf> {
        list(&self.root().join("layers/sha256"))
    }

    /// Blobs in the store.
    pub fn blobs(&self) -> Vec<PathBuf> {
        list(&self.root().join("blobs/sha256"))
    }

    /// What pulls left half done: `.partial` directories and `.tmp` files.
    pub fn leftovers(&self) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = list(&self.root().join("layers"))
            .into_iter()
            .chain(self.blobs())
            .chain(list(self.root()))
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                name.starts_with(".partial") || name.contains(".tmp-")
            })
            .collect();
        found.sort();
        found
    }
}

pub use harness::process::{Run, wait};

fn list(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|e| e.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    entries
}

/// The `Digest:` a pull printed.
pub fn printed_digest(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .unwrap_or_else(|| panic!("no Digest line in:\n{stdout}"))
        .to_string()
}
