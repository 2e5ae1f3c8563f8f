//! `cargo xtask exercise`: the chapters' exercises.
//!
//! An exercise is a checker test plus a reference solution. The checker is an
//! `#[ignore]`d test named `exercise_<name>` in the chapter's `tests/exercises.rs`,
//! so plain `cargo test` does not run it; the solution is a patch kept with the book
//! in `book/exercises/<chapter>/<name>.patch`. Beside it, stubs:
//! `<name>.stub.patch` accepts the exercise's new flag or subcommand and does
//! nothing, and `<name>.stub.<what>.patch` is a plausible wrong solution.
//!
//! - `cargo xtask exercise [ch01 [NAME]]` runs the checkers against your code, with
//!   hints, a watch mode, a reset and the solutions (see [`learner`]).
//! - `cargo xtask exercise --verify` proves, in a scratch copy of the workspace, that
//!   every checker compiles and fails on the code as shipped, fails on each of its
//!   stubs for a reason other than the command line (so it checks what the
//!   exercise does, not only that its flag parses), and passes once the solution
//!   is applied: an exercise that cannot fail, or cannot be solved, is a bug.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use harness::{CHAPTERS, Chapter};

use crate::shell;

mod learner;
mod outcome;

pub use learner::{Mode, main as learn};

/// One exercise of one chapter.
struct Exercise {
    chapter: &'static Chapter,
    name: String,
    /// The reference solution.
    patch: PathBuf,
    /// Patches that must not solve it: `<name>.stub.patch` (the new flag or
    /// subcommand, doing nothing) and `<name>.stub.<what>.patch` (wrong solutions).
    stubs: Vec<PathBuf>,
}

impl Exercise {
    fn test_name(&self) -> String {
        format!("exercise_{}", self.name.replace('-', "_"))
    }

    fn label(&self) -> String {
        format!("{}/{}", self.chapter.package, self.name)
    }
}

/// What clap prints when it refuses a command line: a checker that fails with
/// this fails because the exercise's flag or subcommand is missing, not because
/// of what the program does.
const REFUSED_BY_CLAP: [&str; 2] = ["unexpected argument", "unrecognized subcommand"];

fn refused_by_clap(output: &str) -> bool {
    REFUSED_BY_CLAP.iter().any(|words| output.contains(words))
}

/// The name a stub goes by in reports: `do-nothing` for `<name>.stub.patch`, or
/// the `<what>` of `<name>.stub.<what>.patch`.
fn stub_name(stub: &Path) -> String {
    let file = stub.file_name().unwrap_or_default().to_string_lossy();
    let what = file.trim_end_matches(".patch");
    what.split_once(".stub.")
        .map_or("do-nothing".to_string(), |(_, what)| what.to_string())
}

/// Proves every exercise: its checker fails as shipped and with each of its
/// stubs, and passes when solved.
pub fn verify(root: &Path, chapter: Option<&str>) -> Result<()> {
    check_patches_apply(root)?; // seconds, before minutes of building
    let exercises = find(root, chapter)?;
    if exercises.iter().any(|e| e.chapter.needs_root)
        && let Some(why) = learner::cannot_get_root()
    {
        let count = exercises.iter().filter(|e| e.chapter.needs_root).count();
        bail!("{}", learner::nothing_checked(count, Some(&why)));
    }
    let scratch = tempfile::Builder::new()
        .prefix("minibox-exercises-")
        .tempdir()?;
    copy_workspace(root, scratch.path())?;
    let target = root.join("target/exercise-verify");
    let mut report = Vec::new();
    for exercise in &exercises {
        report.push(verify_one(scratch.path(), &target, exercise)?);
    }
    eprintln!("\nxtask: verified {} exercise(s):", report.len());
    for line in report {
        eprintln!("  ok  {line}");
    }
    Ok(())
}

/// Proves one exercise (see [`verify`]) and says how, in one line.
fn verify_one(scratch: &Path, target: &Path, exercise: &Exercise) -> Result<String> {
    let label = exercise.label();
    for patch in std::iter::once(&exercise.patch).chain(&exercise.stubs) {
        let text = fs::read_to_string(patch)?;
        if text
            .lines()
            .any(|l| l.starts_with("+++ ") && l.ends_with("tests/exercises.rs"))
        {
            bail!("{}: edits the checker itself", patch.display());
        }
    }
    // Compiles as shipped (a checker that does not compile fails for the
    // wrong reason) ...
    checker(scratch, target, exercise, true)
        .with_context(|| format!("{label}: the checker does not compile as shipped"))?;
    // ... and fails as shipped.
    let shipped = match checker(scratch, target, exercise, false) {
        Ok(()) => bail!("{label}: the checker passes on the code as shipped: it cannot fail"),
        Err(failure) => format!("{failure:#}"),
    };
    let flag_missing = refused_by_clap(&shipped);
    eprintln!(
        "xtask: as shipped, the checker says: {}",
        outcome::failure_message(&shipped, &exercise.test_name()).unwrap_or_default()
    );
    if flag_missing && exercise.stubs.is_empty() {
        bail!(
            "{label}: as shipped, the checker fails only because the command line is refused; \
             add {}.stub.patch (the flag or subcommand, doing nothing) to prove that it checks \
             what the exercise does",
            exercise.name
        );
    }
    // Each stub parses, and still fails: the checker looks at behaviour.
    let mut stubs = Vec::new();
    for stub in &exercise.stubs {
        let what = stub_name(stub);
        git_apply(scratch, stub, false)
            .with_context(|| format!("{label}: the stub {what} does not apply"))?;
        let result = checker(scratch, target, exercise, false);
        git_apply(scratch, stub, true)?;
        match result {
            Ok(()) => bail!("{label}: the checker passes with the stub {what}: it cannot fail"),
            Err(failure) if refused_by_clap(&format!("{failure:#}")) => bail!(
                "{label}: with the stub {what}, the command line is still refused: \
                 the stub must accept it\n{failure:#}"
            ),
            Err(failure) => {
                let why = outcome::failure_message(&format!("{failure:#}"), &exercise.test_name())
                    .unwrap_or_default();
                eprintln!("xtask: with the stub {what}, the checker says: {why}");
                stubs.push(what);
            }
        }
    }
    git_apply(scratch, &exercise.patch, false)
        .with_context(|| format!("{label}: the solution patch does not apply"))?;
    let solved = checker(scratch, target, exercise, false);
    git_apply(scratch, &exercise.patch, true)?;
    solved.with_context(|| format!("{label}: the checker fails with the solution applied"))?;
    let shipped = if flag_missing {
        "fails as shipped (command line refused)"
    } else {
        "fails as shipped"
    };
    let stubs = if stubs.is_empty() {
        String::new()
    } else {
        format!(", fails with {}", stubs.join(", "))
    };
    Ok(format!(
        "{label}: {shipped}{stubs}, passes with its solution"
    ))
}

/// Whether every solution patch still applies to the code as it is, without
/// touching anything (`git apply --check`). A change to a chapter's sources
/// can leave a patch behind; this is the fast half of `--verify`, and runs as
/// an ordinary test so plain `cargo test` notices.
pub fn check_patches_apply(root: &Path) -> Result<()> {
    let mut stale = Vec::new();
    for exercise in find(root, None)? {
        for patch in std::iter::once(&exercise.patch).chain(&exercise.stubs) {
            let output = Command::new("git")
                .current_dir(root)
                .args(["apply", "--check"])
                .arg(patch)
                .output()
                .context("running git apply --check")?;
            if !output.status.success() {
                stale.push(format!(
                    "{}: {}",
                    patch.strip_prefix(root).unwrap_or(patch).display(),
                    String::from_utf8_lossy(&output.stderr).trim()
                ));
            }
        }
    }
    if !stale.is_empty() {
        bail!(
            "solution patches that no longer apply (rebase them, then `cargo xtask exercise --verify`):\n  {}",
            stale.join("\n  ")
        );
    }
    Ok(())
}

/// Every exercise of the selected chapters; fails on a patch without a checker.
fn find(root: &Path, chapter: Option<&str>) -> Result<Vec<Exercise>> {
    let selected: Vec<&'static Chapter> = CHAPTERS
        .iter()
        .filter(|c| chapter.is_none_or(|want| c.package.starts_with(want)))
        .collect();
    if selected.is_empty() {
        bail!("no chapter matches {:?}", chapter.unwrap_or_default());
    }
    let mut found = Vec::new();
    for chapter in selected {
        let dir = root.join("book/exercises").join(chapter.package);
        let checkers_path = root
            .join("chapters")
            .join(chapter.package)
            .join("tests/exercises.rs");
        let checkers = fs::read_to_string(&checkers_path).unwrap_or_default();
        let mut patches: Vec<PathBuf> = match fs::read_dir(&dir) {
            Ok(entries) => entries
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()?,
            Err(_) => Vec::new(),
        };
        patches.retain(|p| p.extension().is_some_and(|e| e == "patch"));
        patches.sort();
        // `<name>.patch` is a solution; `<name>.stub[.<what>].patch`, a stub.
        let (stubs, solutions): (Vec<PathBuf>, Vec<PathBuf>) = patches.into_iter().partition(|p| {
            p.file_stem()
                .is_some_and(|s| s.to_string_lossy().contains('.'))
        });
        for stub in &stubs {
            let file = stub.file_name().unwrap_or_default().to_string_lossy();
            let owner = file.split('.').next().unwrap_or_default();
            if !file.contains(".stub.") && !file.ends_with(".stub.patch")
                || !solutions
                    .iter()
                    .any(|p| p.file_stem().is_some_and(|s| s == owner))
            {
                bail!(
                    "{}: not a stub of any exercise (expected NAME.stub.patch or \
                     NAME.stub.WHAT.patch beside NAME.patch)",
                    stub.display()
                );
            }
        }
        for patch in solutions {
            let name = patch
                .file_stem()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            let prefix = format!("{name}.stub");
            let exercise = Exercise {
                chapter,
                stubs: stubs
                    .iter()
                    .filter(|s| {
                        s.file_name()
                            .is_some_and(|f| f.to_string_lossy().starts_with(&prefix))
                    })
                    .cloned()
                    .collect(),
                name,
                patch,
            };
            if !checkers.contains(&format!("fn {}()", exercise.test_name())) {
                bail!(
                    "{}: no checker `fn {}()` in {}",
                    exercise.label(),
                    exercise.test_name(),
                    checkers_path.display()
                );
            }
            found.push(exercise);
        }
    }
    if found.is_empty() {
        bail!("no exercises found");
    }
    if chapter.is_none() {
        // The book promises every chapter at least two exercises.
        for c in CHAPTERS {
            let count = found
                .iter()
                .filter(|e| e.chapter.package == c.package)
                .count();
            if count < 2 {
                bail!(
                    "{} has {count} exercise(s); every chapter needs at least two",
                    c.package
                );
            }
        }
    }
    Ok(found)
}

/// Compiles (`build_only`) or runs one checker in `workspace`; Ok when it passes.
fn checker(workspace: &Path, target: &Path, exercise: &Exercise, build_only: bool) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .env("CARGO_TARGET_DIR", target)
        // A checker that cannot run (no root) must fail, never pass by skipping.
        .env(harness::privilege::REQUIRE_PRIVILEGED, "1")
        // The checker's message is what the report quotes, without a backtrace.
        .env("RUST_BACKTRACE", "0")
        .args([
            "test",
            "-q",
            "-p",
            exercise.chapter.package,
            "--test",
            "exercises",
        ]);
    if build_only {
        command.arg("--no-run");
    } else {
        command.args(["--", "--ignored", "--exact", &exercise.test_name()]);
    }
    eprintln!(
        "xtask: {} checker of {}",
        if build_only { "building" } else { "running" },
        exercise.label()
    );
    let output = command.stdin(Stdio::null()).output()?;
    if output.status.success() {
        return Ok(());
    }
    bail!(
        "`{}` failed:\n{}{}",
        shell::show(&command),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn git_apply(workspace: &Path, patch: &Path, reverse: bool) -> Result<()> {
    let mut command = Command::new("git");
    command.current_dir(workspace).arg("apply");
    if reverse {
        command.arg("--reverse");
    }
    command.arg(patch);
    shell::run(&mut command)
}

/// Copies the files git knows of (tracked, and new ones not ignored) into `to`.
fn copy_workspace(root: &Path, to: &Path) -> Result<()> {
    let output = Command::new("git")
        .current_dir(root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()
        .context("git ls-files")?;
    if !output.status.success() {
        bail!(
            "git ls-files failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    for name in output.stdout.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = Path::new(std::str::from_utf8(name)?);
        let from = root.join(name);
        if !from.exists() {
            continue; // deleted in the work tree, not yet committed
        }
        let dest = to.join(name);
        fs::create_dir_all(dest.parent().expect("a file has a parent"))?;
        fs::copy(&from, &dest).with_context(|| format!("copying {}", name.display()))?;
    }
    Ok(())
}
