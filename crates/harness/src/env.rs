//! A minibox test environment (chapter 7 on): a store (`MINIBOX_ROOT`), a
//! runtime state directory inside it (`MINIBOX_RUN`, chapter 10 on), a
//! credentials directory and a cgroup parent, all of the test's own, and the
//! registry that serves Docker Hub's names. Built once here for every chapter's
//! tests:
//!
//! ```ignore
//! let env = harness::env::Env::builder(MINIBOX, "ch08", "users")
//!     .mirror(&registry)
//!     .clean_environment()
//!     .build();
//! let run = env.minibox(&["run", "--quiet", "busybox", "id"]).expect(0);
//! ```
//!
//! Dropped at the end of a test that did not fail otherwise, it checks that no
//! cgroup of its parent is left in any hierarchy ([`crate::cgroups`]); the
//! store and the credentials directory are removed.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::process::{Run, wait};
use crate::registry::Registry;

/// A store, a credentials directory and a cgroup parent of the test's own.
pub struct Env {
    bin: PathBuf,
    store: tempfile::TempDir,
    config: Option<tempfile::TempDir>,
    cgroup_parent: String,
    mirror: Option<String>,
    clean: bool,
}

/// How an [`Env`] is made: [`Env::builder`], then what the test needs.
pub struct Builder {
    bin: PathBuf,
    cgroup_parent: String,
    mirror: Option<String>,
    config: bool,
    clean: bool,
}

impl Env {
    /// An environment for chapter binary `bin` (its `CARGO_BIN_EXE_...`), for
    /// test `test` of chapter `chapter` (they name the cgroup parent).
    pub fn builder(bin: impl Into<PathBuf>, chapter: &str, test: &str) -> Builder {
        Builder {
            bin: bin.into(),
            cgroup_parent: crate::cgroups::test_parent(&format!(
                "minibox-{chapter}-{}-{test}",
                std::process::id()
            )),
            mirror: None,
            config: false,
            clean: false,
        }
    }

    /// The store's root (`MINIBOX_ROOT`).
    pub fn root(&self) -> &Path {
        self.store.path()
    }

    /// The runtime state directory (`MINIBOX_RUN`): `run` in the store, so
    /// that a test's containers never meet another test's (or the machine's,
    /// in `/run/minibox`). Chapters before 10 do not read the variable;
    /// nothing creates the directory until a chapter 10 container does.
    pub fn run_dir(&self) -> PathBuf {
        self.store.path().join("run")
    }

    /// The credentials directory (`MINIBOX_CONFIG`), with
    /// [`Builder::credentials`].
    pub fn config(&self) -> Option<&Path> {
        self.config.as_ref().map(tempfile::TempDir::path)
    }

    /// The cgroup parent of this environment's containers.
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }

    /// `minibox ARGS` with this environment, not started yet: stdin is
    /// /dev/null, stdout and stderr are piped.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        command.args(args);
        if self.clean {
            command
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        }
        let config = self.config().map_or_else(
            || OsString::from("/nonexistent"),
            |c| c.as_os_str().to_owned(),
        );
        let docker_config = self
            .config()
            .map_or_else(|| PathBuf::from("/nonexistent"), |c| c.join("docker"));
        command
            .env("MINIBOX_ROOT", self.store.path())
            .env("MINIBOX_RUN", self.run_dir())
            .env("MINIBOX_CONFIG", config)
            .env("DOCKER_CONFIG", docker_config)
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

impl Builder {
    /// Docker Hub's names are served by `registry` (`MINIBOX_REGISTRY_MIRROR`).
    /// Without it the variable is removed, so only full references work.
    pub fn mirror(self, registry: &Registry) -> Builder {
        self.mirror_at(&registry.host())
    }

    /// Docker Hub's names are served at `host` (`127.0.0.1:PORT`), e.g. a
    /// [`crate::gate::BlobGate`] in front of the registry.
    pub fn mirror_at(mut self, host: &str) -> Builder {
        self.mirror = Some(host.to_string());
        self
    }

    /// A credentials directory of the test's own for `minibox login`
    /// (`MINIBOX_CONFIG`, and Docker's config below it), so no credentials of
    /// the machine's user take part. Without it both point at a directory that
    /// does not exist.
    pub fn credentials(mut self) -> Builder {
        self.config = true;
        self
    }

    /// Clears the caller's environment but for PATH, so a variable that
    /// reaches the container can only have come from the image or the flags.
    pub fn clean_environment(mut self) -> Builder {
        self.clean = true;
        self
    }

    /// The environment, with a fresh store.
    pub fn build(self) -> Env {
        Env {
            bin: self.bin,
            store: tempfile::tempdir().expect("a temporary store"),
            config: self
                .config
                .then(|| tempfile::tempdir().expect("a temporary config")),
            cgroup_parent: self.cgroup_parent,
            mirror: self.mirror,
            clean: self.clean,
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // A test that already failed says why; a second panic would abort.
        if std::thread::panicking() {
            self.remove_containers();
            crate::cgroups::remove_leftovers(&self.cgroup_parent);
        } else {
            crate::cgroups::assert_nothing_left(&self.cgroup_parent);
        }
    }
}

impl Env {
    /// Copies a store prepared elsewhere (images pulled on the host, for the
    /// cgroup v2 VM, which has no network) into this environment's.
    pub fn copy_store_from(&self, prepared: &Path) {
        let copied = Command::new("cp")
            .arg("-a")
            .arg(prepared.join("."))
            .arg(self.root())
            .status()
            .expect("run cp");
        assert!(
            copied.success(),
            "copying {} into the test's store",
            prepared.display()
        );
    }

    /// After a failed test, whatever containers it left running (chapter 10
    /// on: `run -d`) are removed, so that no container outlives its test;
    /// a chapter without `ps` says so, and nothing happens. Whatever cgroup
    /// is left after that (a monitor that could not be reached) is removed
    /// by [`crate::cgroups::remove_leftovers`].
    fn remove_containers(&self) {
        let Ok(listed) = self.command(&["ps", "-a", "-q", "--no-trunc"]).output() else {
            return;
        };
        let ids = String::from_utf8_lossy(&listed.stdout).into_owned();
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if listed.status.success() && !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(ids);
            let _ = self.command(&args).output();
        }
    }
}

fn list(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|e| e.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    entries
}
