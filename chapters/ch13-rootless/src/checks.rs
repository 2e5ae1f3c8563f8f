//! (being written by a helper; placeholder for the build)
use nix::unistd::Uid;
use std::path::{Path, PathBuf};
/// placeholder
pub fn delegated_cgroup(_root: &Path, _own: &str, _uid: Uid) -> Option<(PathBuf, Vec<String>)> {
    None
}
