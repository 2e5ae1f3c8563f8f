//! `cargo xtask tour`: the main way in. Builds everything, prepares the fixtures,
//! then runs every chapter's demos in story order, each under a banner that says
//! what the chapter shows. Output goes straight to your terminal.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use harness::transcript::{display_command, exit_status};
use harness::{CHAPTERS, Chapter};

use crate::{fixtures, shell};

/// Runs the tour; fails if a demo ends with another status than it should.
pub fn tour(root: &Path) -> Result<()> {
    fixtures::prepare(root)?; // installs missing prerequisites first
    shell::cargo(root, &["build", "--quiet", "--workspace", "--bins"])?;
    let mut wrong = Vec::new();
    for chapter in CHAPTERS {
        banner(chapter);
        let session = harness::transcript::DemoSession::start(chapter);
        if let Some(registry) = &session.registry {
            println!(
                "(the fixture registry stands in for Docker Hub: MINIBOX_REGISTRY_MIRROR={})",
                registry.host()
            );
        }
        for demo in chapter.demos {
            println!("\n# {}", demo.about);
            println!("$ {}", display_command(demo.args));
            let status = run_demo(root, chapter, demo.args, &session)?;
            if demo.show_status {
                println!("$ echo $?\n{status}");
            }
            if status != demo.status {
                wrong.push(format!(
                    "{}: `{}` exited {status}, expected {}",
                    chapter.package,
                    display_command(demo.args),
                    demo.status
                ));
            }
        }
    }
    println!();
    if !wrong.is_empty() {
        bail!("the tour went wrong:\n  {}", wrong.join("\n  "));
    }
    println!(
        "That was the tour: {} chapter(s). Each chapter's page in the book explains its demo; run `cargo xtask book --open`.",
        CHAPTERS.len()
    );
    Ok(())
}

fn banner(chapter: &Chapter) {
    let title = format!("Chapter {}: {}", chapter.number(), chapter.title);
    let rule = "━".repeat(title.chars().count() + 4);
    println!("\n{rule}\n  {title}\n{rule}");
    println!("{}", chapter.shows);
    println!(
        "(run it yourself: cargo run -p {} -- run ...)",
        chapter.package
    );
}

/// Runs one demo on the terminal, through the privileged runner when the chapter
/// needs root (the runner elevates only when we are not root already).
fn run_demo(
    root: &Path,
    chapter: &Chapter,
    args: &[&str],
    session: &harness::transcript::DemoSession,
) -> Result<i32> {
    let bin = harness::transcript::bin_dir().join(chapter.package);
    let mut command = if chapter.needs_root {
        let mut c = Command::new(root.join(".cargo/privileged-runner"));
        c.arg(&bin).env("CARGO_PKG_NAME", chapter.package);
        c
    } else {
        Command::new(&bin)
    };
    if chapter.needs_registry {
        command.envs(session.env()); // the fixture registry and a fresh store
    }
    command.args(args).stdin(Stdio::null());
    let status = command
        .status()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    Ok(exit_status(status))
}
