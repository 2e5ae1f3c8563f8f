//! The concept of this chapter: which command a container starts, by
//! Docker's rules.
//!
//! The image config holds two lists, `Entrypoint` and `Cmd`; `docker run`
//! takes an optional `--entrypoint` and optional arguments after the image.
//! The container's command is the entrypoint followed by the arguments, where
//! each part comes from the command line if given there, else from the image
//! — with one twist: `--entrypoint` also drops the image's `Cmd`, since the
//! image's default arguments were meant for the image's entrypoint.
//!
//! | image Entrypoint | image Cmd | `--entrypoint` | arguments | the container runs |
//! |---|---|---|---|---|
//! | — | `["sh"]` | — | — | `sh` |
//! | — | `["sh"]` | — | `echo hi` | `echo hi` |
//! | `["echo","hello"]` | `["world"]` | — | — | `echo hello world` |
//! | `["echo","hello"]` | `["world"]` | — | `there` | `echo hello there` |
//! | `["echo","hello"]` | `["world"]` | `ls` | — | `ls` |
//! | `["echo","hello"]` | `["world"]` | `ls` | `/` | `ls /` |
//! | `["echo","hello"]` | `["world"]` | `""` | `date` | `date` |
//! | `["/hello"]` | — | — | — | `/hello` |
//! | — | — | — | — | error: `no command specified` |
//!
//! `--entrypoint` is one word, never split: `--entrypoint "ls -l"` looks for a
//! program called `ls -l`. An empty one (`--entrypoint ""`) clears the image's
//! entrypoint (and, like any `--entrypoint`, its `Cmd`).

use std::ffi::OsString;

use anyhow::{Result, bail};

use crate::config::RunConfig;

// ANCHOR: effective
/// The command a container of `image` starts, given `--entrypoint` (if any)
/// and the arguments after the image on the command line.
///
/// Fails with Docker's message (`no command specified`) when neither the
/// image nor the command line names a program.
pub fn effective(
    image: &RunConfig,
    entrypoint: Option<&str>,
    arguments: &[OsString],
) -> Result<Vec<OsString>> {
    let words = |list: &[String]| list.iter().map(OsString::from).collect::<Vec<_>>();
    let (entrypoint, cmd) = match entrypoint {
        // `--entrypoint ""`: no entrypoint at all.
        Some("") => (Vec::new(), arguments.to_vec()),
        // `--entrypoint X` replaces the image's, and its Cmd goes with it.
        Some(program) => (vec![OsString::from(program)], arguments.to_vec()),
        // Arguments replace the image's Cmd, never its Entrypoint.
        None if !arguments.is_empty() => (words(&image.entrypoint), arguments.to_vec()),
        None => (words(&image.entrypoint), words(&image.cmd)),
    };
    let command: Vec<OsString> = entrypoint.into_iter().chain(cmd).collect();
    if command.is_empty() {
        bail!("no command specified");
    }
    Ok(command)
}
// ANCHOR_END: effective

#[cfg(test)]
mod tests {
    use super::*;

    fn image(entrypoint: &[&str], cmd: &[&str]) -> RunConfig {
        RunConfig {
            entrypoint: entrypoint.iter().map(|s| s.to_string()).collect(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            ..RunConfig::default()
        }
    }

    fn run(image: &RunConfig, entrypoint: Option<&str>, args: &[&str]) -> Result<Vec<String>> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        Ok(effective(image, entrypoint, &args)?
            .into_iter()
            .map(|w| w.into_string().unwrap())
            .collect())
    }

    /// The table's rows, one assertion each.
    #[test]
    fn the_rules_table_holds_row_by_row() {
        let busybox = image(&[], &["sh"]);
        let echo = image(&["echo", "hello"], &["world"]);
        assert_eq!(run(&busybox, None, &[]).unwrap(), ["sh"]);
        assert_eq!(
            run(&busybox, None, &["echo", "hi"]).unwrap(),
            ["echo", "hi"]
        );
        assert_eq!(run(&echo, None, &[]).unwrap(), ["echo", "hello", "world"]);
        assert_eq!(
            run(&echo, None, &["there"]).unwrap(),
            ["echo", "hello", "there"]
        );
        assert_eq!(run(&echo, Some("ls"), &[]).unwrap(), ["ls"]);
        assert_eq!(run(&echo, Some("ls"), &["/"]).unwrap(), ["ls", "/"]);
        assert_eq!(run(&echo, Some(""), &["date"]).unwrap(), ["date"]);
        let none = run(&image(&[], &[]), None, &[]).unwrap_err();
        assert_eq!(none.to_string(), "no command specified");
    }

    #[test]
    fn an_entrypoint_override_drops_cmd_and_is_never_split() {
        let echo = image(&["echo", "hello"], &["world"]);
        assert!(run(&echo, Some(""), &[]).is_err(), "Cmd is dropped too");
        assert_eq!(run(&echo, Some("ls -l"), &[]).unwrap(), ["ls -l"]);
        let entrypoint_only = image(&["/hello"], &[]);
        assert_eq!(run(&entrypoint_only, None, &[]).unwrap(), ["/hello"]);
    }
}
