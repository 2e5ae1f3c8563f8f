//! The exercise runner as a learner meets it: `cargo xtask exercise` and its
//! flags, driven on a scratch copy of the workspace (a git repository of its
//! own, so that `--reset` has a last commit to go back to), as
//! `exercise --verify` does. Each output form is a snapshot: the list, a
//! failing checker, a solved one, hints, a reset, and a run without root; and
//! watch mode is shown to re-check after a file changes.
//!
//! The tests share one scratch copy (in `target/exercise-runner`) and take
//! turns (a lock); each starts from the copy's last commit. The checkers build
//! into `target/exercise-verify`, which `--verify` uses too.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

/// The scratch copy, made once per run of these tests in
/// `target/exercise-runner/workspace` (a temporary directory held in a static
/// would never be removed: statics are not dropped), replacing the last run's.
struct Scratch {
    dir: PathBuf,
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The real workspace.
fn root() -> PathBuf {
    harness::transcript::workspace_root()
}

/// The scratch copy, for one test at a time, back at its last commit.
fn scratch() -> MutexGuard<'static, Scratch> {
    static SCRATCH: OnceLock<Mutex<Scratch>> = OnceLock::new();
    let scratch = SCRATCH.get_or_init(|| {
        let dir = root().join("target/exercise-runner/workspace");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("removing the last run's scratch copy");
        }
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        // The files git knows of, tracked or new, as `--verify` copies them.
        let files = git(
            &root(),
            &[
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
        );
        for name in files.split('\0').filter(|n| !n.is_empty()) {
            let from = root().join(name);
            if from.is_file() {
                let to = dir.join(name);
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::copy(&from, &to).unwrap();
            }
        }
        git(&dir, &["init", "-q"]);
        git(&dir, &["add", "-A"]);
        git(
            &dir,
            &[
                "-c",
                "user.name=learner",
                "-c",
                "user.email=learner@example.org",
                "commit",
                "-qm",
                "as shipped",
            ],
        );
        Mutex::new(Scratch { dir })
    });
    let guard = scratch
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    git(guard.path(), &["checkout", "-q", "--", "."]);
    git(guard.path(), &["clean", "-fdxq"]);
    guard
}

impl Scratch {
    fn path(&self) -> &Path {
        &self.dir
    }

    /// `cargo xtask exercise ARGS...` in the scratch copy.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(XTASK);
        command
            .arg("exercise")
            .args(args)
            .env("XTASK_WORKSPACE", self.path())
            .env("CARGO_TARGET_DIR", root().join("target/exercise-verify"))
            .env_remove(harness::privilege::REQUIRE_PRIVILEGED)
            .stdin(Stdio::null());
        command
    }

    fn xtask(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run xtask")
    }

    /// Applies a patch from `book/exercises` to the scratch copy.
    fn apply(&self, patch: &str) {
        git(self.path(), &["apply", &format!("book/exercises/{patch}")]);
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The runner's output as a snapshot; stderr (cargo, xtask's own last line)
/// is asserted on separately where it matters.
fn snapshot(name: &str, out: &Output) {
    insta::assert_snapshot!(name, stdout(out));
}

#[test]
fn the_list_shows_every_exercise_with_its_goal_and_a_count() {
    if !harness::require_root("xtask exercise runner: list") {
        return;
    }
    let scratch = scratch();
    let out = scratch.xtask(&[]);
    snapshot("list", &out);
    assert!(
        out.status.success(),
        "a list in which everything was checked succeeds: {out:?}"
    );
}

#[test]
fn a_failing_checker_says_what_it_expected_and_saw() {
    if !harness::require_root("xtask exercise runner: not yet") {
        return;
    }
    let scratch = scratch();
    let out = scratch.xtask(&["ch01", "rusage"]);
    snapshot("not-yet", &out);
    assert!(!out.status.success(), "an unsolved exercise fails: {out:?}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked at"),
        "the raw test output is only for --verbose: {out:?}"
    );
    let out = scratch.xtask(&["ch01", "rusage", "--verbose"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("panicked at"),
        "--verbose shows the raw test output: {out:?}"
    );
}

#[test]
fn a_solved_exercise_says_solved() {
    if !harness::require_root("xtask exercise runner: solved") {
        return;
    }
    let scratch = scratch();
    scratch.apply("ch01-fork-exec/rusage.patch");
    let out = scratch.xtask(&["ch01", "rusage"]);
    snapshot("solved", &out);
    assert!(out.status.success(), "a solved exercise succeeds: {out:?}");
}

#[test]
fn hints_come_one_at_a_time_gentle_first() {
    if !harness::require_root("xtask exercise runner: hints") {
        return;
    }
    let scratch = scratch();
    for n in 1..=4 {
        let out = scratch.xtask(&["ch02", "init", "--hint"]);
        assert!(out.status.success(), "{out:?}");
        snapshot(&format!("hint-{n}"), &out);
    }
    let out = scratch.xtask(&["ch02", "--hint"]);
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("--hint is for one exercise"),
        "--hint without NAME names the exercises: {out:?}"
    );
    // The last hint points at the solution, which warns before it spoils.
    let out = scratch.xtask(&["ch02", "init", "--solution"]);
    let patch = std::fs::read_to_string(
        scratch
            .path()
            .join("book/exercises/ch02-pid-namespace/init.patch"),
    )
    .unwrap();
    let text = stdout(&out);
    assert!(
        out.status.success() && text.starts_with("Spoiler: ") && text.ends_with(&patch),
        "--solution: a warning first, then the patch: {out:?}"
    );
}

#[test]
fn reset_says_which_files_then_puts_back_only_those() {
    if !harness::require_root("xtask exercise runner: reset") {
        return;
    }
    let scratch = scratch();
    scratch.apply("ch02-pid-namespace/init.patch");
    // A change of the learner's own elsewhere stays.
    let readme = scratch.path().join("README.md");
    std::fs::write(&readme, "my notes\n").unwrap();
    let out = scratch.xtask(&["ch02", "init", "--reset"]);
    snapshot("reset", &out);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        git(scratch.path(), &["status", "--porcelain"]),
        " M README.md\n",
        "only the exercise's files went back"
    );
}

#[test]
fn without_root_nothing_is_checked_and_it_says_so() {
    if !harness::require_root("xtask exercise runner: no root") {
        return;
    }
    let scratch = scratch();
    // The checkers run as nobody: cargo's runner for the host target drops
    // root before each test binary starts. It runs a copy of the binary in
    // /tmp, since nobody may not reach the checkout (under /root, say).
    let runner = scratch.path().join("target/as-nobody");
    std::fs::create_dir_all(runner.parent().unwrap()).unwrap();
    std::fs::write(
        &runner,
        "#!/bin/sh\n\
         copy=$(mktemp /tmp/minibox-as-nobody-XXXXXX) || exit 1\n\
         cp \"$1\" \"$copy\" && chmod 755 \"$copy\" || exit 1\n\
         shift\n\
         setpriv --reuid=65534 --regid=65534 --clear-groups -- \"$copy\" \"$@\"\n\
         status=$?\n\
         rm -f \"$copy\"\n\
         exit $status\n",
    )
    .unwrap();
    let mut permissions = std::fs::metadata(&runner).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&runner, permissions).unwrap();
    let target = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let variable = format!(
        "CARGO_TARGET_{}_RUNNER",
        target.to_uppercase().replace('-', "_")
    );
    let out = scratch
        .command(&["ch02"])
        .env(variable, &runner)
        .output()
        .expect("run xtask");
    snapshot("no-root", &out);
    assert!(
        !out.status.success(),
        "nothing checked is a failure: {out:?}"
    );
}

#[test]
fn watch_mode_rechecks_when_a_file_changes() {
    if !harness::require_root("xtask exercise runner: watch") {
        return;
    }
    let scratch = scratch();
    let mut watch = scratch
        .command(&["ch01", "rusage", "--watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run xtask exercise --watch");
    let (lines, receive) = mpsc::channel();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |wanted: &str| {
        let mut seen = Vec::new();
        loop {
            match receive.recv_timeout(Duration::from_secs(300)) {
                Ok(line) if line.contains(wanted) => return seen,
                Ok(line) => seen.push(line),
                Err(_) => panic!("no line with {wanted:?} from --watch; saw {seen:?}"),
            }
        }
    };
    let first = wait_for("Watching chapters/ch01-fork-exec for changes");
    assert!(
        first
            .iter()
            .any(|l| l.ends_with("ch01-fork-exec/rusage: not yet")),
        "the first run finds rusage not solved: {first:?}"
    );
    // The learner saves their solution.
    scratch.apply("ch01-fork-exec/rusage.patch");
    let second = wait_for("Every exercise here is solved");
    assert!(
        second
            .iter()
            .any(|l| l.ends_with("ch01-fork-exec/rusage: solved") && l.starts_with("\x1b[2J")),
        "after the change, the screen is cleared and rusage re-checked: {second:?}"
    );
    let status = harness::process::wait_with_deadline(
        watch,
        "xtask exercise --watch",
        Duration::from_secs(30),
    )
    .status;
    assert!(
        status.success(),
        "--watch ends when all is solved: {status:?}"
    );
}
