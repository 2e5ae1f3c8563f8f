//! Every chapter's demos, run for real and recorded as the transcripts the book
//! shows (`cargo xtask codegen` copies these snapshots into `book/src/generated`),
//! and every chapter's *by hand* session: its concept done with standard tools
//! (`unshare`, `mount`, `curl`...), recorded the same way. A change in what
//! minibox, or the kernel and its tools, prints shows up here first.

use std::path::{Path, PathBuf};
use std::process::Command;

use harness::chapters::ByHand;
use harness::{CHAPTERS, transcript};

#[test]
fn every_chapter_demo_transcript() {
    for chapter in CHAPTERS {
        if chapter.needs_root && !harness::require_root(&format!("{} demos", chapter.package)) {
            continue;
        }
        if let Some(second) = chapter.second_binary() {
            // Chapter 14: podman, with the chapter's runtime as its own.
            let runtime = transcript::chapter_bin_named(chapter, second);
            for demo in harness::engines::demo::PODMAN_DEMOS {
                let recorded = harness::engines::demo::run(&runtime, demo)
                    .unwrap_or_else(|e| panic!("{} demo {}: {e}", chapter.package, demo.name));
                let name = format!("{}-{}", chapter.package, demo.name);
                assert_eq!(recorded.status, 0, "{name}:\n{}", recorded.transcript);
                harness::filters::settings().bind(|| {
                    insta::assert_snapshot!(name, recorded.transcript);
                });
            }
        }
        let session = transcript::DemoSession::start(chapter);
        for demo in chapter.demos {
            let recorded = transcript::record(chapter, demo, &session);
            let name = chapter.snapshot_name(demo);
            assert_eq!(
                recorded.status, demo.status,
                "{name}:\n{}",
                recorded.transcript
            );
            // `ps` tables are redacted cell by cell, and lined up again.
            let transcript = harness::filters::ps_tables(&recorded.transcript);
            harness::filters::settings().bind(|| {
                insta::assert_snapshot!(name, transcript);
            });
        }
    }
}

/// Each chapter's concept by hand, with standard tools, as root. The session
/// runs in a scratch directory and a private mount namespace of its own (and,
/// for a networking chapter, a network namespace made for it); its cleanup
/// runs on every path, and the test then checks that nothing is left: no
/// mount below the scratch directory, no cgroup.
#[test]
fn every_chapter_by_hand_transcript() {
    if !harness::require_root("the chapters' by-hand sessions") {
        return;
    }
    let rootfs = harness::fixtures::busybox_rootfs();
    for chapter in CHAPTERS {
        let session = transcript::DemoSession::by_hand(chapter);
        let scratch = Scratch::new(chapter.number());
        let cgroup = by_hand_cgroup(chapter.number());
        let mut env = vec![
            ("ROOTFS", rootfs.display().to_string()),
            ("CG", cgroup.display().to_string()),
            ("WORKDIR", scratch.0.display().to_string()),
        ];
        if let Some(registry) = &session.registry {
            env.push(("REGISTRY", registry.host()));
        }
        let mut shell = Command::new("/usr/bin/unshare");
        shell
            .args(["--mount", "--propagation", "private", "/bin/sh", "-c"])
            .arg(script(&chapter.by_hand))
            .envs(env);
        // A networking chapter's session runs in a fresh network namespace
        // too, the one its demos would run in, which vanishes with it.
        session.enter(&mut shell);
        let (output, _) = transcript::run_merged_command(shell);
        let leaked_mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .expect("mountinfo")
            .lines()
            .filter(|l| l.contains(&scratch.0.display().to_string()))
            .map(str::to_string)
            .collect();
        assert!(
            leaked_mounts.is_empty(),
            "{}: mounts left behind: {leaked_mounts:?}",
            chapter.package
        );
        assert!(
            !cgroup.exists(),
            "{}: cgroup {} left behind",
            chapter.package,
            cgroup.display()
        );
        let name = format!("{}-by-hand", chapter.package);
        harness::filters::settings().bind(|| {
            insta::assert_snapshot!(name, output);
        });
    }
}

/// A scratch directory in /tmp, named as tempfile names its own (so the one
/// filter table redacts it), removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(n: u32) -> Scratch {
        let dir = std::env::temp_dir().join(format!(".tmpbyhand{}x{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The shell script that runs `by_hand` as a person would type it: each
/// command shown after `$ ` (continuation lines after `> `), then run, with the
/// cleanup on every path (an EXIT trap).
fn script(by_hand: &ByHand) -> String {
    let mut script = String::from("cd \"$WORKDIR\" || exit 1\n");
    if !by_hand.cleanup.is_empty() {
        script.push_str(&format!(
            "trap {} EXIT\n",
            transcript::shell_quote(by_hand.cleanup)
        ));
    }
    for command in by_hand.commands {
        let shown: Vec<String> = command
            .lines()
            .enumerate()
            .map(|(i, line)| format!("{}{line}", if i == 0 { "$ " } else { "> " }))
            .collect();
        script.push_str(&format!(
            "printf '%s\\n' {}\n{command}\n",
            transcript::shell_quote(&shown.join("\n"))
        ));
    }
    script
}

/// A cgroup for chapter `n`'s session that does not exist yet: in the v1 `pids`
/// hierarchy below this test's own cgroup, or at the root of a v2 tree (where
/// handing controllers down below our own cgroup may be forbidden).
fn by_hand_cgroup(n: u32) -> PathBuf {
    let own = std::fs::read_to_string("/proc/self/cgroup").expect("/proc/self/cgroup");
    let name = format!("minibox-by-hand-{}-{n}", std::process::id());
    let pids = own.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        controllers
            .split(',')
            .any(|c| c == "pids")
            .then(|| path.trim_start_matches('/').to_string())
    });
    match pids {
        Some(path) => Path::new("/sys/fs/cgroup/pids").join(path).join(name),
        None => Path::new("/sys/fs/cgroup").join(name),
    }
}
