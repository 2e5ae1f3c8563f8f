//! The rootless rows (chapter 13): minibox, and podman where it runs,
//! started by an ordinary user, to be set beside chapter 13 started by root.
//!
//! The user is the harness's [`TestUser`]: an unused UID with a range of
//! 65536 subordinate IDs (so its user namespace is mapped with newuidmap and
//! newgidmap, as a real user's is), whose passwd, group and subuid entries
//! exist only in the private mount namespace each of its commands starts in,
//! before the command drops to its UID. The measured commands start in the
//! benchmark's network namespace, as root's do.
//!
//! Its stores are the defaults, in its home on disk, as root's store is on
//! disk: `~/.local/share/minibox` (and podman's `~/.local/share/containers`).
//! Its runtime directory (`XDG_RUNTIME_DIR`: minibox's pause file and lock,
//! podman's runroot and crun's state) is on a tmpfs, as `/run/user/UID` is
//! on a host with a login manager and as root's `MINIBOX_RUN` is here. The
//! harness makes that directory in the home and points `XDG_RUNTIME_DIR` at
//! it; the benchmark replaces it with a link to a directory of its own in
//! `/dev/shm`, the user's, mode 0700, so that the harness (which stops the
//! pause process named there) and minibox still agree on where it is.
//!
//! busybox is pulled into both stores before anything is measured. The pull
//! makes minibox's pause process (and podman's, catatonit), as a user's
//! first command does, and every measured run joins it; on this machine's
//! cgroup v1 no cgroup is delegated to the user, so rootless containers run
//! without one, as rootless podman's do. Dropping the user ends its pause
//! processes and anything else of its IDs', then removes its home and its
//! runtime directory: nothing of it is left.

use std::fs;
use std::os::fd::BorrowedFd;
use std::os::unix::fs::{PermissionsExt, chown, symlink};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use harness::rootless::TestUser;

use super::{Variant, report};
use crate::bench::busybox::Busybox;
use crate::bench::measure::{Peer, TmpfsDir, run_measured};
use crate::bench::podman::RootlessPodman;
use crate::shell;

/// The rootless row's command line: root's chapter 13 row's.
const RUN: &[&str] = &[
    "run",
    "--quiet",
    "--rm",
    "--network",
    "none",
    "busybox",
    "true",
];

/// The same with the rootless default network, a user-mode stack.
const RUN_DEFAULT: &[&str] = &["run", "--quiet", "--rm", "busybox", "true"];

/// An ordinary user of the benchmark's, ready to start containers.
pub(super) struct RootlessUser {
    // Dropped in this order: the user's processes are ended (its pause
    // processes with them) and its home removed, then its runtime directory.
    user: TestUser,
    /// Where the link `~/run` leads, on a tmpfs.
    run: TmpfsDir,
}

impl RootlessUser {
    /// A user of chapter 13's minibox (`bin`, copied into its home) with a
    /// subordinate range and its runtime directory on a tmpfs, busybox
    /// pulled into its store from `busybox`; its commands start in `netns`
    /// from then on.
    pub(super) fn prepare(
        bin: &Path,
        busybox: &Busybox,
        netns: BorrowedFd<'_>,
    ) -> Result<RootlessUser> {
        let mut user = TestUser::new(bin, true);
        let run = TmpfsDir::create(&format!("minibox-bench-rootless-{}", std::process::id()))?;
        chown(&run.0, Some(user.uid), Some(user.uid)).context("giving the user its run dir")?;
        fs::set_permissions(&run.0, fs::Permissions::from_mode(0o700))
            .context("making the user's runtime directory private")?;
        let runtime_dir = user.runtime_dir();
        fs::remove_dir(&runtime_dir)
            .and_then(|()| symlink(&run.0, &runtime_dir))
            .with_context(|| format!("linking {} to the tmpfs", runtime_dir.display()))?;
        let mut pull = user.command(&["pull", "--quiet", "busybox"]);
        pull.env("MINIBOX_REGISTRY_MIRROR", busybox.host());
        shell::run(pull.stdout(std::io::stderr()).stderr(std::io::stderr()))?;
        user.in_network_namespace(netns.try_clone_to_owned()?);
        Ok(RootlessUser { user, run })
    }

    /// `minibox run --quiet --rm --network none busybox true`, as the user.
    pub(super) fn minibox_variant(&self) -> Variant<'_> {
        self.variant(report::ROOTLESS_NONE, RUN)
    }

    /// The same on the rootless default network: its own namespace behind
    /// a user-mode stack (slirp4netns here: the benchmark's namespace has
    /// no uplink for pasta to copy).
    pub(super) fn minibox_default_variant(&self) -> Variant<'_> {
        self.variant(report::ROOTLESS_DEFAULT, RUN_DEFAULT)
    }

    /// `minibox ARGS`, as the user, measured as `name`.
    fn variant(&self, name: &'static str, args: &'static [&'static str]) -> Variant<'_> {
        let shown = self.shown(&self.user.command(args));
        let run = move |dir: &Path| run_measured(&mut self.user.command(args), dir, "minibox");
        Variant {
            peer: Peer::new(name, true, Box::new(run)),
            shown,
        }
    }

    /// Rootless podman, configured for the user, with `reference` (root
    /// podman's name for busybox, none where root podman cannot pull it)
    /// pulled into its store; none, saying why, where it cannot pull.
    pub(super) fn podman(&self, reference: Option<&str>) -> Result<Option<RootlessPodman<'_>>> {
        let Some(reference) = reference else {
            return Ok(None);
        };
        let podman = RootlessPodman::configure(&self.user)?;
        let pulled = podman
            .pull(reference)
            .and_then(|mut pull| shell::run(pull.stdout(std::io::stderr())));
        Ok(match pulled {
            Ok(()) => Some(podman),
            Err(err) => {
                println!(
                    "{}: cannot run here, left out: {err:#}",
                    report::PODMAN_ROOTLESS_NONE
                );
                None
            }
        })
    }

    /// `podman run --rm --network none IMAGE true` as the user, in `netns`.
    pub(super) fn podman_variant<'a>(
        &'a self,
        podman: &'a RootlessPodman<'a>,
        image: &'a str,
        netns: BorrowedFd<'a>,
    ) -> Result<Variant<'a>> {
        let command = move || -> Result<Command> {
            let mut command = podman.command(Some(netns))?;
            command.args(["run", "--rm", "--network", "none", image, "true"]);
            Ok(command)
        };
        let shown = self.shown(&command()?);
        // As root's: conmon outlives `podman run` and then runs podman's
        // cleanup, which the next run must not share the machine with. With
        // no cgroup to watch, the run ends, untimed, when the user has no
        // process left but its pause processes.
        let run = move |dir: &Path| {
            let sample = run_measured(&mut command()?, dir, "podman")?;
            self.wait_for_pause_processes_only()?;
            Ok(sample)
        };
        Ok(Variant {
            peer: Peer::new(report::PODMAN_ROOTLESS_NONE, false, Box::new(run)),
            shown,
        })
    }

    /// `command` as shown before the table: who runs it, then the command.
    fn shown(&self, command: &Command) -> String {
        let (start, count) = self.user.range.unwrap_or_default();
        format!(
            "as {} (UID {}, subordinate IDs {start}–{}; {} links to {}): {}",
            self.user.name,
            self.user.uid,
            (start + count).saturating_sub(1),
            self.user.runtime_dir().display(),
            self.run.0.display(),
            shell::show_with_env(command)
        )
    }

    /// Waits until every live process of the user's IDs is a pause
    /// process (minibox's or podman's), for 5 s at most.
    fn wait_for_pause_processes_only(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let busy: Vec<String> = self
                .user
                .processes()
                .into_iter()
                .filter_map(live_command_name)
                .filter(|name| !matches!(name.as_str(), "minibox-pause" | "catatonit"))
                .collect();
            if busy.is_empty() {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "the user's {} still run 5 s after its container exited",
                busy.join(", ")
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The command name of process `pid`, unless it is gone or a zombie (which
/// holds nothing but its exit status, until its parent reaps it).
fn live_command_name(pid: i32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `PID (COMM) STATE ...`, where COMM may itself hold spaces or parentheses.
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let state = stat.get(close + 1..)?.split_whitespace().next()?;
    (state != "Z").then(|| stat[open + 1..close].to_string())
}
