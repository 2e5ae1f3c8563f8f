//! The container's environment: the image's `Env`, then the command line's
//! `--env-file` files and `-e` flags, on top of two defaults, `PATH` and
//! `HOSTNAME`; `HOME` from the user's passwd entry when nothing set it.
//!
//! The order of the result is Docker's, so `minibox run busybox env` prints
//! what `docker run busybox env` prints:
//!
//! 1. the defaults: `PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`
//!    and `HOSTNAME=<the container's hostname>`;
//! 2. the command line's entries, each replacing a default of the same name
//!    in place or appended (a later one of the same name wins);
//! 3. the image's entries whose names the command line did not use;
//! 4. `HOME`, appended in the container once the user is known (runc does
//!    this, not Docker).
//!
//! An entry without `=` (`-e KEY` when the caller's environment has no `KEY`)
//! removes the variable, even one the image sets.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// The `PATH` a container gets when neither the image nor the command line
/// sets one: Docker's (and the Filesystem Hierarchy Standard's) usual places.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The name part of `KEY=VALUE` (all of it when there is no `=`).
pub fn key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(key, _)| key)
}

/// The value of `name` in `env`, if set.
pub fn get<'a>(env: &'a [String], name: &str) -> Option<&'a str> {
    env.iter()
        .find_map(|entry| entry.split_once('=').filter(|(k, _)| *k == name))
        .map(|(_, value)| value)
}

// ANCHOR: flag
/// One `-e` value, as Docker's client reads it: `KEY=VALUE` as is; `KEY` alone
/// takes the caller's value (`lookup`), or stays `KEY` — which unsets it in
/// the container — when the caller has none.
pub fn from_flag(value: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String> {
    let (name, has_value) = match value.split_once('=') {
        Some((name, _)) => (name, true),
        None => (value, false),
    };
    if name.is_empty() {
        bail!("invalid environment variable: {value}");
    }
    Ok(match (has_value, lookup(name)) {
        (true, _) => value.to_string(),
        (false, Some(found)) => format!("{name}={found}"),
        (false, None) => name.to_string(),
    })
}
// ANCHOR_END: flag

// ANCHOR: env_file
/// The entries of an `--env-file`, in Docker's format: one `KEY=VALUE` per
/// line, the value taken verbatim (no quotes removed, no spaces trimmed);
/// blank lines and lines starting with `#` skipped; `KEY` alone takes the
/// caller's value, and is left out when the caller has none. Leading
/// whitespace is ignored; whitespace inside the name is an error.
pub fn parse_env_file(
    name: &str,
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>> {
    let mut entries = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = if number == 0 {
            line.trim_start_matches('\u{feff}') // a byte-order mark
        } else {
            line
        };
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (variable, value) = match line.split_once('=') {
            Some((variable, value)) => (variable, Some(value)),
            None => (line, None),
        };
        if variable.contains(char::is_whitespace) {
            bail!("{name}: variable '{variable}' contains whitespaces");
        }
        if variable.is_empty() {
            bail!("{name}: no variable name on line '{line}'");
        }
        match (value, lookup(variable)) {
            (Some(value), _) => entries.push(format!("{variable}={value}")),
            (None, Some(found)) => entries.push(format!("{variable}={found}")),
            (None, None) => {}
        }
    }
    Ok(entries)
}

/// Reads and parses an `--env-file`.
pub fn read_env_file(path: &Path, lookup: impl Fn(&str) -> Option<String>) -> Result<Vec<String>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading the env file {}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        anyhow::anyhow!(
            "env file {} contains invalid utf8 bytes at line {}",
            path.display(),
            line + 1
        )
    })?;
    parse_env_file(&path.display().to_string(), &text, lookup)
}
// ANCHOR_END: env_file

// ANCHOR: merge
/// The container's environment, in Docker's order (see the module's
/// comment): defaults, then the command line's `given` entries, then the
/// image's that `given` did not name.
pub fn merge(image: &[String], given: &[String], hostname: &str) -> Vec<String> {
    // SIMPLIFICATION: Docker also adds `TERM=xterm` with `-t` (we have no
    // TTY yet) and the variables of legacy `--link`s (never).
    // Docker's merge of the container's and the image's lists: the command
    // line's first, then the image's entries of other names.
    let config = given.iter().chain(
        image
            .iter()
            .filter(|entry| !given.iter().any(|g| key(g) == key(entry))),
    );
    // Then the defaults, each replaced in place by an entry of its name, or
    // removed by a bare name; entries of new names are appended.
    let mut env: Vec<Option<String>> = vec![
        Some(format!("PATH={DEFAULT_PATH}")),
        Some(format!("HOSTNAME={hostname}")),
    ];
    for entry in config {
        let position = env
            .iter()
            .position(|e| e.as_deref().is_some_and(|e| key(e) == key(entry)));
        match (entry.contains('='), position) {
            (true, Some(i)) => env[i] = Some(entry.clone()),
            (true, None) => env.push(Some(entry.clone())),
            (false, Some(i)) => env[i] = None,
            (false, None) => {}
        }
    }
    env.into_iter().flatten().collect()
}
// ANCHOR_END: merge

/// Adds `HOME=home` unless `env` sets `HOME` already (as runc does once it
/// knows the user).
pub fn with_home(mut env: Vec<String>, home: &str) -> Vec<String> {
    if get(&env, "HOME").is_none() {
        env.push(format!("HOME={home}"));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(name: &str) -> Option<String> {
        match name {
            "FROM_CALLER" => Some("yes".into()),
            "PATH" => Some("/host/bin".into()),
            _ => None,
        }
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_pass_values_take_the_callers_or_unset() {
        assert_eq!(from_flag("A=1", caller).unwrap(), "A=1");
        assert_eq!(from_flag("A=", caller).unwrap(), "A=");
        assert_eq!(from_flag("A=b=c", caller).unwrap(), "A=b=c");
        assert_eq!(from_flag("FROM_CALLER", caller).unwrap(), "FROM_CALLER=yes");
        assert_eq!(from_flag("MISSING", caller).unwrap(), "MISSING");
        assert_eq!(
            from_flag("=x", caller).unwrap_err().to_string(),
            "invalid environment variable: =x"
        );
    }

    #[test]
    fn env_files_are_read_the_way_docker_reads_them() {
        let text = "\u{feff}# a comment\n\nA=1\n  B = spaced value \nC=\"quoted\"\nFROM_CALLER\nMISSING\n   # indented comment\r\nD=\r\n";
        assert_eq!(
            parse_env_file("f", text, caller).unwrap_err().to_string(),
            "f: variable 'B ' contains whitespaces"
        );
        let text = "\u{feff}# a comment\n\nA=1\n  B= spaced value \nC=\"quoted\"\nFROM_CALLER\nMISSING\n   # indented\r\nD=\r\n";
        assert_eq!(
            parse_env_file("f", text, caller).unwrap(),
            [
                "A=1",
                "B= spaced value ",
                "C=\"quoted\"",
                "FROM_CALLER=yes",
                "D="
            ]
        );
        assert_eq!(
            parse_env_file("f", "=oops\n", caller)
                .unwrap_err()
                .to_string(),
            "f: no variable name on line '=oops'"
        );
    }

    #[test]
    fn merging_keeps_dockers_order_and_precedence() {
        let image = strings(&["PATH=/image/bin", "LANG=C", "KEEP=image"]);
        assert_eq!(
            merge(&image, &[], "box"),
            ["PATH=/image/bin", "HOSTNAME=box", "LANG=C", "KEEP=image"]
        );
        let given = strings(&["LANG=fr", "NEW=1", "NEW=2", "HOSTNAME=mine"]);
        assert_eq!(
            merge(&image, &given, "box"),
            [
                "PATH=/image/bin",
                "HOSTNAME=mine",
                "LANG=fr",
                "NEW=2",
                "KEEP=image"
            ]
        );
        // Without a PATH in the image, the default stays; a bare name unsets.
        let given = strings(&["KEEP", "HOSTNAME"]);
        assert_eq!(
            merge(&strings(&["KEEP=image"]), &given, "box"),
            [format!("PATH={DEFAULT_PATH}")]
        );
    }

    #[test]
    fn home_is_added_only_when_unset() {
        let env = with_home(strings(&["A=1"]), "/root");
        assert_eq!(env, ["A=1", "HOME=/root"]);
        let env = with_home(strings(&["HOME=/mine"]), "/root");
        assert_eq!(env, ["HOME=/mine"]);
        assert_eq!(get(&env, "HOME"), Some("/mine"));
        assert_eq!(get(&env, "HOM"), None);
    }
}
