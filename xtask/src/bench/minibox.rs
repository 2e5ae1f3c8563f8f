//! minibox as the container benchmarks (`start`, `build`) run it: a store and
//! a cgroup parent of the benchmark's, its runtime state on a tmpfs, and the
//! network namespace it is started in, so that a run touches nothing of the
//! host's and the peers it is compared with are started the same way.

use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;
use ch09_networking::netns;

/// minibox's environment in a benchmark.
pub(super) struct Minibox<'a> {
    /// `MINIBOX_ROOT`: the images, layers and containers, in the benchmark's
    /// working directory.
    pub(super) store: PathBuf,
    /// `MINIBOX_RUN`: on a tmpfs, as `/run` is on the hosts minibox is made
    /// for (this machine's `/run` is on its disk); see
    /// [`super::measure::TmpfsDir`].
    pub(super) run: PathBuf,
    /// `MINIBOX_CGROUP_PARENT`: relative to our own cgroup (see
    /// [`super::cgroups::Parents`]).
    pub(super) parent: String,
    pub(super) netns: BorrowedFd<'a>,
}

impl Minibox<'_> {
    /// `BIN ARGS` with the store and the cgroup parent, in the benchmark's
    /// network namespace.
    pub(super) fn command(&self, bin: &Path, args: &[&str]) -> Result<Command> {
        let mut command = Command::new(bin);
        netns::enter_before_exec(&mut command, self.netns)?;
        command
            .env("MINIBOX_ROOT", &self.store)
            .env("MINIBOX_RUN", &self.run)
            .env("MINIBOX_CGROUP_PARENT", &self.parent)
            .args(args);
        Ok(command)
    }
}
