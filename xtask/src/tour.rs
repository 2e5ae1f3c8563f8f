//! `cargo xtask tour`: the main way in. Builds everything, prepares the fixtures,
//! then runs every chapter's demos in story order, each under a banner that says
//! what the chapter shows. Output goes straight to your terminal.
//!
//! A networking chapter's demos run in a network namespace made for the tour
//! to play the host (as its tests do): the bridge, the NAT rules and the
//! published ports they make never touch this machine's own network, and
//! vanish with the namespace. Only root can make one, so without root those
//! chapters are skipped, saying so.
//!
//! Chapter 13's demos run as an ordinary user, the point of the chapter: the
//! tour makes one for them (`learner`, whose passwd and subuid entries exist
//! only for its own commands, see `harness::rootless`), runs every
//! `minibox` of them as that user, and ends the user's pause process at the
//! chapter's end. Making a user takes root too.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use harness::chapters::{DEMO_USER, RunsAs};
use harness::transcript::{
    DemoSession, STOP_BACKGROUND, display_background, display_command, exit_status, serve_detached,
};
use harness::{CHAPTERS, Chapter, Demo, Network};

use crate::{fixtures, shell};

/// Runs the tour; fails if a demo ends with another status than it should.
pub fn tour(root: &Path) -> Result<()> {
    fixtures::prepare(root)?; // installs missing prerequisites first
    shell::cargo(root, &["build", "--quiet", "--workspace", "--bins"])?;
    let mut wrong = Vec::new();
    let mut skipped = Vec::new();
    for chapter in CHAPTERS {
        banner(chapter);
        if let Some(why) = cannot_run(chapter) {
            println!("(skipped: {why})");
            skipped.push(chapter.number().to_string());
            continue;
        }
        let session = DemoSession::start(chapter);
        if let Some(user) = &session.user
            && let Some((start, count)) = user.range
        {
            println!(
                "(every minibox below runs as {}, UID {}, an ordinary user the tour made, not root; /etc/subuid grants it the IDs {start}-{})",
                user.name,
                user.uid,
                start + count - 1
            );
        }
        if let Some(registry) = &session.registry {
            println!(
                "(the fixture registry stands in for Docker Hub: MINIBOX_REGISTRY_MIRROR={})",
                registry.host()
            );
        }
        if session.netns.is_some() {
            println!(
                "(the host here is a network namespace made for the tour, with only lo in it)"
            );
        }
        if let Some(second) = chapter.second_binary() {
            let runtime = harness::transcript::bin_dir().join(second);
            for demo in harness::engines::demo::PODMAN_DEMOS {
                println!("\n# {}", demo.about);
                match harness::engines::demo::run(&runtime, demo) {
                    Ok(recorded) => {
                        print!("{}", recorded.transcript);
                        if recorded.status != 0 {
                            wrong.push(format!(
                                "{}: podman exited {}",
                                chapter.package, recorded.status
                            ));
                        }
                    }
                    Err(error) => wrong.push(format!("{}: podman: {error}", chapter.package)),
                }
            }
        }
        for demo in chapter.demos {
            println!("\n# {}", demo.about);
            let args = session.args(demo); // a container's ID for `LATEST`
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let status = match &demo.alongside {
                None => {
                    println!("$ {}", display_command(&args));
                    run_demo(root, chapter, &args, &session)?
                }
                Some(alongside) if alongside.detached => {
                    println!("$ {}", display_command(&args));
                    let status = run_demo(root, chapter, &args, &session)?;
                    if status == 0 {
                        serve_detached(&session, alongside, show).map_err(anyhow::Error::msg)?;
                    }
                    status
                }
                Some(_) => run_alongside(root, chapter, demo, &args, &session)?,
            };
            if demo.show_status {
                println!("$ echo $?\n{status}");
            }
            // The finished container's veth, as tests/demos.rs waits.
            session.settle().map_err(anyhow::Error::msg)?;
            if status != demo.status {
                wrong.push(format!(
                    "{}: `{}` exited {status}, expected {}",
                    chapter.package,
                    display_command(&args),
                    demo.status
                ));
            }
        }
    }
    println!();
    if !wrong.is_empty() {
        bail!("the tour went wrong:\n  {}", wrong.join("\n  "));
    }
    if !skipped.is_empty() {
        println!(
            "Without root, the tour skipped chapter(s) {}: run it as root to see them.",
            skipped.join(", ")
        );
    }
    println!(
        "That was the tour: {} chapter(s). Each chapter's page in the book explains its demo; run `cargo xtask book --open`.",
        CHAPTERS.len()
    );
    Ok(())
}

/// Why the tour cannot run `chapter`'s demos here, if it cannot.
fn cannot_run(chapter: &Chapter) -> Option<String> {
    let root = harness::privilege::is_root();
    if chapter.runs_as == RunsAs::User {
        if !root {
            return Some("the tour makes an ordinary user of its own for these demos, and only root can make one; run the tour as root to see them, or try rootless minibox as yourself: `MINIBOX_ROOTLESS=1 cargo minibox run --rm --network none busybox id`".into());
        }
        let (name, uid, range) = (DEMO_USER.name, DEMO_USER.uid, DEMO_USER.range);
        if let Some(clash) = harness::rootless::clash(name, uid, Some(range)) {
            return Some(format!(
                "the tour's user for these demos cannot be made here: {clash}"
            ));
        }
    }
    if matches!(chapter.network, Network::Namespace { .. }) && !root {
        return Some("these demos run in a network namespace made for them, and only root can make one; run the tour as root to see them".into());
    }
    None
}

fn banner(chapter: &Chapter) {
    let title = format!("Chapter {}: {}", chapter.number(), chapter.title);
    let rule = "━".repeat(title.chars().count() + 4);
    println!("\n{rule}\n  {title}\n{rule}");
    println!("{}", chapter.shows);
    // Without MINIBOX_ROOTLESS, cargo's runner would run it through sudo.
    let rootless = match chapter.runs_as {
        RunsAs::Root => "",
        RunsAs::User => "MINIBOX_ROOTLESS=1 ",
    };
    println!(
        "(run it yourself: {rootless}cargo run -p {} -- run ...)",
        chapter.package
    );
}

/// Runs one of the host's commands of a demo ([`harness::Alongside`]) on
/// the terminal, as typed.
fn show(command: &str, mut shell: Command) {
    println!("$ {command}");
    if let Err(e) = shell.stdin(Stdio::null()).status() {
        println!("(cannot run sh: {e})");
    }
}

/// Runs one demo on the terminal, through the privileged runner when the chapter
/// needs root (the runner elevates only when we are not root already).
fn run_demo(root: &Path, chapter: &Chapter, args: &[&str], session: &DemoSession) -> Result<i32> {
    let mut command = demo_command(root, chapter, args, session);
    let status = command
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("cannot run {}", chapter.package))?;
    Ok(exit_status(status))
}

/// The command that runs `minibox ARGS` of `chapter`, where (and as whom)
/// its demos run.
fn demo_command(root: &Path, chapter: &Chapter, args: &[&str], session: &DemoSession) -> Command {
    let bin = harness::transcript::bin_dir().join(chapter.binary());
    let mut command = if session.user.is_some() {
        // As the demos' user, with its own store, in the session's namespace.
        session.minibox(&bin, args)
    } else {
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
        command.args(args);
        session.enter(&mut command); // a networking chapter's namespace
        command
    };
    command.current_dir(root); // demos name files from the root
    command
}

/// Runs a demo with a host side on the terminal: minibox in the background,
/// its output in `target/tour/`, the host's commands, then SIGTERM to
/// minibox. Returns minibox's exit status.
fn run_alongside(
    root: &Path,
    chapter: &Chapter,
    demo: &Demo,
    args: &[&str],
    session: &DemoSession,
) -> Result<i32> {
    let alongside = demo.alongside.as_ref().context("a demo with a host side")?;
    let logs = root.join("target/tour");
    std::fs::create_dir_all(&logs).with_context(|| format!("create {}", logs.display()))?;
    let log = format!("target/tour/{}.log", demo.name);
    println!("$ {}", display_background(args, &log));
    let minibox = demo_command(root, chapter, args, session);
    let status =
        harness::transcript::run_alongside(session, minibox, alongside, &root.join(&log), show)
            .map_err(anyhow::Error::msg)?;
    println!("$ {STOP_BACKGROUND}");
    Ok(status)
}
