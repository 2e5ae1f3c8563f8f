//! `cargo xtask exercise`: the chapters' exercises.
//!
//! An exercise is a checker test plus a reference solution. The checker is an
//! `#[ignore]`d test named `exercise_<name>` in the chapter's `tests/exercises.rs`,
//! so plain `cargo test` does not run it; the solution is a patch kept with the book
//! in `book/exercises/<chapter>/<name>.patch`.
//!
//! - `cargo xtask exercise ch01 [NAME]` runs the checkers against your code.
//! - `cargo xtask exercise --verify` proves, in a scratch copy of the workspace, that
//!   every checker compiles and fails on the code as shipped, and passes once the
//!   solution is applied: an exercise that cannot fail, or cannot be solved, is a bug.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use harness::{CHAPTERS, Chapter};

use crate::shell;

/// One exercise of one chapter.
struct Exercise {
    chapter: &'static Chapter,
    name: String,
    patch: PathBuf,
}

impl Exercise {
    fn test_name(&self) -> String {
        format!("exercise_{}", self.name.replace('-', "_"))
    }

    fn label(&self) -> String {
        format!("{}/{}", self.chapter.package, self.name)
    }
}

/// Runs the checkers of one chapter (or all), optionally only one exercise.
pub fn run(root: &Path, chapter: Option<&str>, name: Option<&str>) -> Result<()> {
    let exercises = find(root, chapter)?;
    let mut chapters: Vec<&Chapter> = exercises.iter().map(|e| e.chapter).collect();
    chapters.dedup_by_key(|c| c.package);
    for chapter in chapters {
        let mut args = vec!["test", "-p", chapter.package, "--test", "exercises", "--"];
        args.push("--ignored");
        let filter;
        if let Some(name) = name {
            filter = format!("exercise_{}", name.replace('-', "_"));
            args.extend(["--exact", &filter]);
        }
        shell::cargo(root, &args)?;
    }
    Ok(())
}

/// Proves every exercise: its checker fails as shipped and passes when solved.
pub fn verify(root: &Path, chapter: Option<&str>) -> Result<()> {
    check_patches_apply(root)?; // seconds, before minutes of building
    let exercises = find(root, chapter)?;
    let scratch = tempfile::Builder::new()
        .prefix("minibox-exercises-")
        .tempdir()?;
    copy_workspace(root, scratch.path())?;
    let target = root.join("target/exercise-verify");
    let mut report = Vec::new();
    for exercise in &exercises {
        let label = exercise.label();
        let patch = fs::read_to_string(&exercise.patch)?;
        if patch
            .lines()
            .any(|l| l.starts_with("+++ ") && l.ends_with("tests/exercises.rs"))
        {
            bail!("{label}: the solution patch edits the checker itself");
        }
        // Compiles as shipped (a checker that does not compile fails for the
        // wrong reason) ...
        checker(scratch.path(), &target, exercise, true)
            .with_context(|| format!("{label}: the checker does not compile as shipped"))?;
        // ... and fails as shipped.
        if checker(scratch.path(), &target, exercise, false).is_ok() {
            bail!("{label}: the checker passes on the code as shipped: it cannot fail");
        }
        git_apply(scratch.path(), &exercise.patch, false)
            .with_context(|| format!("{label}: the solution patch does not apply"))?;
        let solved = checker(scratch.path(), &target, exercise, false);
        git_apply(scratch.path(), &exercise.patch, true)?;
        solved.with_context(|| format!("{label}: the checker fails with the solution applied"))?;
        report.push(format!(
            "{label}: fails as shipped, passes with its solution"
        ));
    }
    eprintln!("\nxtask: verified {} exercise(s):", report.len());
    for line in report {
        eprintln!("  ok  {line}");
    }
    Ok(())
}

/// Whether every solution patch still applies to the code as it is, without
/// touching anything (`git apply --check`). A change to a chapter's sources
/// can leave a patch behind; this is the fast half of `--verify`, and runs as
/// an ordinary test so plain `cargo test` notices.
pub fn check_patches_apply(root: &Path) -> Result<()> {
    let mut stale = Vec::new();
    for exercise in find(root, None)? {
        let output = Command::new("git")
            .current_dir(root)
            .args(["apply", "--check"])
            .arg(&exercise.patch)
            .output()
            .context("running git apply --check")?;
        if !output.status.success() {
            stale.push(format!(
                "{}: {}",
                exercise.label(),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
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
        for patch in patches {
            let name = patch
                .file_stem()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            let exercise = Exercise {
                chapter,
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
