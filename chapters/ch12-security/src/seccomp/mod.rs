//! seccomp: a filter on every system call the container makes. (Being
//! written: Docker's profile format, its default profile, the compiler.)

use std::collections::BTreeSet;

use anyhow::{Result, bail};

/// A seccomp profile in Docker's JSON format.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The profile's text.
    pub json: String,
}

impl Profile {
    /// Parses a profile in Docker's JSON format, with Docker's error for a
    /// malformed one.
    pub fn parse(json: &str) -> Result<Profile> {
        Ok(Profile { json: json.into() })
    }

    /// minibox's default profile, with the same effect as Docker's.
    pub fn docker_default() -> Profile {
        Profile {
            json: String::new(),
        }
    }
}

/// A profile compiled for this machine's architecture and a container's
/// capabilities, ready to install.
#[derive(Debug, Clone)]
pub struct Filter {
    /// The BPF program.
    pub program: Vec<libc::sock_filter>,
}

impl Filter {
    /// Compiles `profile` for a container holding the capabilities `caps`
    /// (Docker's names, `CAP_SYS_ADMIN`): rules `includes`/`excludes` by
    /// capability are decided now.
    pub fn compile(_profile: &Profile, _caps: &BTreeSet<String>) -> Result<Filter> {
        bail!("seccomp is being written")
    }

    /// Installs the filter on the calling thread (and what it execs).
    /// Without no_new_privs this needs CAP_SYS_ADMIN.
    pub fn install(&self) -> Result<()> {
        bail!("seccomp is being written")
    }
}
