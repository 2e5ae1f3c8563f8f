//! `--ulimit`: resource limits per process (setrlimit(2)), as Docker parses
//! them: `TYPE=SOFT[:HARD]`, -1 for unlimited.

use anyhow::{Result, bail};
use nix::sys::resource::{Resource, setrlimit};

/// One `--ulimit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ulimit {
    /// The resource.
    pub resource: Resource,
    /// The soft limit, what the kernel enforces.
    pub soft: u64,
    /// The hard limit, up to which the process may raise the soft one.
    pub hard: u64,
}

/// Docker's names for the resources.
const RESOURCES: [(&str, Resource); 15] = [
    ("core", Resource::RLIMIT_CORE),
    ("cpu", Resource::RLIMIT_CPU),
    ("data", Resource::RLIMIT_DATA),
    ("fsize", Resource::RLIMIT_FSIZE),
    ("locks", Resource::RLIMIT_LOCKS),
    ("memlock", Resource::RLIMIT_MEMLOCK),
    ("msgqueue", Resource::RLIMIT_MSGQUEUE),
    ("nice", Resource::RLIMIT_NICE),
    ("nofile", Resource::RLIMIT_NOFILE),
    ("nproc", Resource::RLIMIT_NPROC),
    ("rss", Resource::RLIMIT_RSS),
    ("rtprio", Resource::RLIMIT_RTPRIO),
    ("rttime", Resource::RLIMIT_RTTIME),
    ("sigpending", Resource::RLIMIT_SIGPENDING),
    ("stack", Resource::RLIMIT_STACK),
];

// ANCHOR: parse
/// Parses `TYPE=SOFT[:HARD]`, with Docker's errors.
pub fn parse(text: &str) -> Result<Ulimit> {
    let Some((name, values)) = text.split_once('=') else {
        bail!("invalid ulimit argument: {text}");
    };
    let Some(&(_, resource)) = RESOURCES.iter().find(|(n, _)| *n == name) else {
        bail!("invalid ulimit type: {name}");
    };
    let limit = |value: &str| -> Result<u64> {
        match value.parse::<i64>() {
            Ok(-1) => Ok(libc::RLIM_INFINITY),
            Ok(n) if n >= 0 => Ok(n as u64),
            _ => bail!("invalid ulimit value {value:?} in {text}"),
        }
    };
    let parts: Vec<&str> = values.split(':').collect();
    let (soft, hard) = match parts[..] {
        [soft] => (limit(soft)?, limit(soft)?),
        [soft, hard] => (limit(soft)?, limit(hard)?),
        _ => bail!(
            "too many limit value arguments - {values}, can only have up to two, `soft[:hard]`"
        ),
    };
    if soft > hard {
        bail!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}");
    }
    Ok(Ulimit {
        resource,
        soft,
        hard,
    })
}
// ANCHOR_END: parse

/// Sets the limit, in the container, while still root (raising a hard limit
/// needs `CAP_SYS_RESOURCE`).
pub fn apply(ulimit: &Ulimit) -> Result<()> {
    setrlimit(ulimit.resource, ulimit.soft, ulimit.hard)
        .map_err(|errno| anyhow::anyhow!("setrlimit {:?}: {errno}", ulimit.resource))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_shapes_parse() {
        let nofile = parse("nofile=1024:2048").unwrap();
        assert_eq!(
            (nofile.resource, nofile.soft, nofile.hard),
            (Resource::RLIMIT_NOFILE, 1024, 2048)
        );
        let core = parse("core=-1").unwrap();
        assert_eq!(
            (core.soft, core.hard),
            (libc::RLIM_INFINITY, libc::RLIM_INFINITY)
        );
    }

    #[test]
    fn bad_ones_get_dockers_errors() {
        let error = |text: &str| parse(text).unwrap_err().to_string();
        assert_eq!(error("foo=1"), "invalid ulimit type: foo");
        assert_eq!(error("nofile"), "invalid ulimit argument: nofile");
        assert_eq!(
            error("nofile=20:10"),
            "ulimit soft limit must be less than or equal to hard limit: 20 > 10"
        );
        assert!(error("nofile=1:2:3").starts_with("too many limit value arguments"));
    }
}
