//! Which devices a container may use. (Being written: the v1 controller's
//! rules, a BPF program on cgroup v2.)

use anyhow::Result;
use ch05_cgroups::cgroup::Cgroup;

/// One rule of a device list, as Docker's (and the OCI spec's) `devices`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Allow (or deny) what it matches.
    pub allow: bool,
    /// `a` (all), `c` (character) or `b` (block).
    pub kind: char,
    /// The major number, `None` for every one.
    pub major: Option<u32>,
    /// The minor number, `None` for every one.
    pub minor: Option<u32>,
    /// Some of `r`, `w`, `m` (read, write, mknod).
    pub access: String,
}

/// Docker's default list.
pub fn docker_default() -> Vec<Rule> {
    Vec::new()
}

/// `--privileged`: every device.
pub fn privileged() -> Vec<Rule> {
    Vec::new()
}

/// Applies `rules` to `cgroup`, before any process joins it.
pub fn apply(_cgroup: &dyn Cgroup, _rules: &[Rule]) -> Result<()> {
    Ok(())
}
