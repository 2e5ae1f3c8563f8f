//! `cargo xtask man`: a man page per command of the last chapter's `minibox`
//! (`minibox.1`, `minibox-run.1`, `minibox-container-prune.1`, ...), made by
//! `clap_mangen` from the same clap definitions as `--help`, so the pages
//! and the binary cannot disagree. `man -l target/man/minibox-run.1` reads
//! one; `sudo cp target/man/*.1 /usr/local/share/man/man1/` installs them.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::CommandFactory;

/// Writes the pages into `out`; returns their paths.
pub fn write(out: &Path) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut written = Vec::new();
    let mut command = ch13_rootless::cli::Cli::command().name("minibox");
    command.build();
    page(&command, "minibox", out, &mut written)?;
    Ok(written)
}

/// The page of `command`, named `name`, then its subcommands' pages.
fn page(command: &clap::Command, name: &str, out: &Path, written: &mut Vec<PathBuf>) -> Result<()> {
    let mut bytes = Vec::new();
    clap_mangen::Man::new(command.clone())
        .title(name)
        .render(&mut bytes)
        .with_context(|| format!("rendering the page of {name}"))?;
    let path = out.join(format!("{name}.1"));
    fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    written.push(path);
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        page(sub, &format!("{name}-{}", sub.get_name()), out, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_gets_a_page_with_its_flags() {
        let dir = tempfile::tempdir().unwrap();
        let pages = write(dir.path()).unwrap();
        let names: Vec<String> = pages
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for expected in [
            "minibox.1",
            "minibox-run.1",
            "minibox-ps.1",
            "minibox-container-prune.1",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
        let run = fs::read_to_string(dir.path().join("minibox-run.1")).unwrap();
        assert!(
            run.starts_with(".ie \\n(.g .ds Aq") || run.contains(".TH minibox-run 1"),
            "{run}"
        );
        assert!(run.contains("detach") && run.contains("publish"), "{run}");
    }
}
