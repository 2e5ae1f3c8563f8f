//! Podman as the benchmarks run it: with storage, state and configuration of
//! its own in one directory, so that a run touches nothing of the host's;
//! and rootless, as a user of the benchmark's own.
//!
//! Two kinds of place cannot be moved by configuration, so each podman
//! command runs in a mount namespace of its own (see [`Podman::command`]):
//!
//! - the mounts it makes: the overlay mounts of its storage and of each
//!   container's root, and, for a container on a bridge, the bind mount that
//!   keeps the container's network namespace (`/run/netns/netns-…`);
//! - what it, conmon, crun and netavark write where root's files go whatever
//!   the configuration says: `/run/netns`, crun's state in `/run/crun`,
//!   netavark's address leases in `/run/containers/networks`, and the cache
//!   of what a pull learned about blobs in `/var/lib/containers/cache`.
//!
//! The namespace gets a tmpfs of its own on `/run` and on `/var/lib`; the
//! mounts and the files there vanish with the namespace, when the last
//! process in it (conmon, the last to leave) exits. `HOME` is podman's own
//! directory, for what it keeps in `~/.config/containers`.
//!
//! podman refuses a runroot (`--runroot`) longer than 50 characters, which a
//! directory in a checkout easily is. So `DIR/run` is bind-mounted in the
//! namespace at a short path, and podman's runroot is [`RUNROOT`] below it
//! (below, not at: `podman system reset` removes the runroot itself, which it
//! could not do to a mount point).
//!
//! Rootless podman ([`RootlessPodman`]) is podman run by a user of the
//! benchmark's own, with that user's configuration in its home; it needs
//! none of this.

use std::ffi::CString;
use std::fs;
use std::os::fd::BorrowedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use harness::engines::podman::MACHINE_CONF;
use harness::rootless::TestUser;

use crate::shell;

/// Podman with everything below `dir`.
pub(super) struct Podman {
    dir: PathBuf,
}

impl Podman {
    /// Writes podman's configuration into `dir` (which exists): the engine's,
    /// the registries', the storage's and a signature policy.
    ///
    /// Everything podman would otherwise keep in /var/lib/containers,
    /// /run/containers, /run/libpod, /dev/shm, /etc/containers/networks or
    /// /var/tmp goes below `dir`. The engine settings are the ones this
    /// machine needs to run containers at all ([`MACHINE_CONF`]), and file
    /// locks (not a shared memory segment in /dev/shm).
    pub(super) fn configure(dir: &Path) -> Result<Podman> {
        for sub in ["tmp", "networks", "copy", "run"] {
            fs::create_dir_all(dir.join(sub)).context("creating podman's directories")?;
        }
        let d = dir.display();
        let conf = format!(
            "{MACHINE_CONF}lock_type = \"file\"\ntmp_dir = \"{d}/tmp\"\n\
             image_copy_tmp_dir = \"{d}/copy\"\n\
             [network]\nnetwork_config_dir = \"{d}/networks\"\n"
        );
        fs::write(dir.join("containers.conf"), conf).context("writing containers.conf")?;
        fs::write(
            dir.join("registries.conf"),
            "unqualified-search-registries = []\n",
        )
        .context("writing registries.conf")?;
        fs::write(
            dir.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"overlay\"\ngraphroot = \"{d}/root\"\nrunroot = \"{RUNROOT}\"\n"
            ),
        )
        .context("writing storage.conf")?;
        fs::write(
            dir.join("policy.json"),
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .context("writing the signature policy")?;
        Ok(Podman {
            dir: dir.to_path_buf(),
        })
    }

    /// `podman --root … --runroot … --storage-driver overlay`, with the
    /// configuration in its environment, in a mount namespace of its own
    /// (see the module's documentation), and in the network namespace
    /// `netns` when one is given. Arguments follow.
    pub(super) fn command(&self, netns: Option<BorrowedFd<'_>>) -> Result<Command> {
        let mut command = Command::new("podman");
        if let Some(netns) = netns {
            ch09_networking::netns::enter_before_exec(&mut command, netns)?;
        }
        own_mount_namespace(&mut command, &self.dir.join("run"))?;
        command
            .arg("--root")
            .arg(self.dir.join("root"))
            .args(["--runroot", RUNROOT])
            .args(["--storage-driver", "overlay"])
            .env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .env(
                "CONTAINERS_REGISTRIES_CONF",
                self.dir.join("registries.conf"),
            )
            .env("CONTAINERS_STORAGE_CONF", self.dir.join("storage.conf"))
            .env("TMPDIR", self.dir.join("copy"))
            .env("HOME", &self.dir)
            .env_remove("XDG_CONFIG_HOME");
        Ok(command)
    }

    /// `podman pull` of `reference` from a registry of ours, over plain HTTP,
    /// in this process's network namespace (where the registry listens).
    pub(super) fn pull(&self, reference: &str) -> Result<Command> {
        let mut command = self.command(None)?;
        command
            .args(["pull", "--tls-verify=false"])
            .arg("--signature-policy")
            .arg(self.dir.join("policy.json"))
            .arg(reference);
        Ok(command)
    }

    /// Makes `registry` (`127.0.0.1:PORT`, plain HTTP) Docker Hub's mirror,
    /// and Docker Hub the registry of short names, as a classroom's podman
    /// would be set up: `busybox` is `docker.io/library/busybox`, pulled from
    /// `registry`. For a Dockerfile's `FROM busybox`.
    pub(super) fn mirror_docker_hub(&self, registry: &str) -> Result<()> {
        fs::write(
            self.dir.join("registries.conf"),
            format!(
                "unqualified-search-registries = [\"docker.io\"]\n\
                 [[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n\
                 [[registry.mirror]]\nlocation = \"{registry}\"\ninsecure = true\n"
            ),
        )
        .context("writing registries.conf")
    }

    /// `podman system reset -f`: removes every container, image and layer
    /// from podman's storage, unmounting what it mounted there.
    pub(super) fn reset(&self) -> Result<Command> {
        let mut command = self.command(None)?;
        command.args(["system", "reset", "--force"]);
        Ok(command)
    }
}

/// Rootless podman: podman run by a user of the benchmark's own (see
/// [`TestUser`]), with that user's configuration and nothing of root's.
///
/// Unlike root's, it needs no mount namespace made for it: rootless podman
/// makes a user namespace and a mount namespace of its own, held by its pause
/// process (catatonit), and mounts only there; its storage is in the user's
/// home (`~/.local/share/containers`), its runroot, crun's state and its
/// pause process's PID in the user's runtime directory. Both go when the
/// user is dropped: its processes (the pause process with them) are killed,
/// its directories removed.
pub(super) struct RootlessPodman<'a> {
    user: &'a TestUser,
}

impl RootlessPodman<'_> {
    /// Writes the user's configuration into `~/.config/containers`, as
    /// files of the user's: the machine's settings ([`MACHINE_CONF`]), file
    /// locks (in its runtime directory, not a shared memory segment
    /// `/dev/shm/libpod_rootless_lock_UID` that would outlive it), no
    /// short-name search, and a signature policy that accepts the
    /// benchmark's unsigned image. The rest is rootless podman's default.
    pub(super) fn configure(user: &TestUser) -> Result<RootlessPodman<'_>> {
        let config = user.home().join(".config");
        let dir = config.join("containers");
        fs::create_dir_all(&dir).context("creating ~/.config/containers")?;
        let policy = r#"{"default":[{"type":"insecureAcceptAnything"}]}"#;
        let containers_conf = format!("{MACHINE_CONF}lock_type = \"file\"\n");
        let mut made = vec![config, dir.clone()];
        for (file, text) in [
            ("containers.conf", containers_conf.as_str()),
            ("registries.conf", "unqualified-search-registries = []\n"),
            ("policy.json", policy),
        ] {
            fs::write(dir.join(file), text).with_context(|| format!("writing {file}"))?;
            made.push(dir.join(file));
        }
        for path in made {
            std::os::unix::fs::chown(&path, Some(user.uid), Some(user.uid))
                .with_context(|| format!("giving {} to the user", path.display()))?;
        }
        Ok(RootlessPodman { user })
    }

    /// `podman` as the user, with the environment a login gives it (`HOME`,
    /// `USER`, `XDG_RUNTIME_DIR`, as [`TestUser::command`] gives minibox),
    /// in the network namespace `netns` when one is given. Arguments follow.
    pub(super) fn command(&self, netns: Option<BorrowedFd<'_>>) -> Result<Command> {
        let mut command = Command::new("podman");
        command
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("HOME", self.user.home())
            .env("USER", &self.user.name)
            .env("XDG_RUNTIME_DIR", self.user.runtime_dir());
        // The network namespace is joined while still root, before the
        // switch to the user.
        if let Some(netns) = netns {
            ch09_networking::netns::enter_before_exec(&mut command, netns)?;
        }
        self.user.become_user(&mut command);
        Ok(command)
    }

    /// `podman pull` of `reference` from a registry of ours, over plain
    /// HTTP, in this process's network namespace (where the registry
    /// listens).
    pub(super) fn pull(&self, reference: &str) -> Result<Command> {
        let mut command = self.command(None)?;
        command.args(["pull", "--tls-verify=false", reference]);
        Ok(command)
    }
}

/// Podman with everything below a directory of the benchmark's, whose
/// storage is emptied when this is dropped: `podman system reset` removes
/// its containers, images and layers, and unmounts what it mounted there.
pub(super) struct PodmanStorage(pub(super) Podman);

impl PodmanStorage {
    /// Podman with everything below `dir`, made here.
    pub(super) fn create(dir: &Path) -> Result<PodmanStorage> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(PodmanStorage(Podman::configure(dir)?))
    }
}

impl Drop for PodmanStorage {
    fn drop(&mut self) {
        let reset = self
            .0
            .reset()
            .and_then(|mut reset| shell::run(reset.stdout(std::io::stderr())));
        if let Err(err) = reset {
            eprintln!("xtask: cleaning up: {err:#}");
        }
    }
}

/// Where `DIR/run` is bind-mounted in podman's mount namespace, and
/// podman's runroot below it: short enough for podman's 50 characters.
const RUN: &str = "/run/bench";
const RUNROOT: &str = "/run/bench/storage";

/// Makes `command`'s child enter a new mount namespace between fork and exec,
/// with every mount private (nothing it mounts propagates back to the host's
/// namespace), a tmpfs of its own on `/run` and on `/var/lib`, and the
/// directory `run_dir` bind-mounted at [`RUN`].
fn own_mount_namespace(command: &mut Command, run_dir: &Path) -> Result<()> {
    let (root, tmpfs) = (c_string("/")?, c_string("tmpfs")?);
    let (run, var_lib) = (c_string("/run")?, c_string("/var/lib")?);
    let options = c_string("mode=0755")?;
    let run_dir =
        CString::new(run_dir.as_os_str().as_encoded_bytes()).context("a path with a NUL byte")?;
    let mount_point = c_string(RUN)?;
    // SAFETY: the closure runs in the child between fork and exec; it only
    // makes system calls (unshare(2), mount(2), mkdir(2)), which are
    // async-signal-safe, on strings allocated before the fork, and allocates
    // nothing.
    unsafe {
        command.pre_exec(move || {
            let checked = |ret: libc::c_int| match ret {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            };
            checked(libc::unshare(libc::CLONE_NEWNS))?;
            checked(libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            for target in [&run, &var_lib] {
                checked(libc::mount(
                    tmpfs.as_ptr(),
                    target.as_ptr(),
                    tmpfs.as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV,
                    options.as_ptr().cast(),
                ))?;
            }
            // On the new, empty tmpfs, where it does not exist yet.
            checked(libc::mkdir(mount_point.as_ptr(), 0o700))?;
            checked(libc::mount(
                run_dir.as_ptr(),
                mount_point.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            ))?;
            Ok(())
        });
    }
    Ok(())
}

fn c_string(text: &str) -> Result<CString> {
    CString::new(text).context("a string with a NUL byte")
}
