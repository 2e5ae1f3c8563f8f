//! The exercise runner a learner sees, in the manner of rustlings: every
//! exercise with its status at a glance, one plain sentence per checker that
//! is not satisfied yet, hints from gentle to specific, a watch mode that
//! re-checks on every save, a reset, and the reference solution for the stuck.
//!
//! Checkers are built quietly (the compiler speaks only when the build fails)
//! and run with `MINIBOX_REQUIRE_PRIVILEGED=1`, so a checker that could not get
//! root fails instead of passing as skipped, and is reported as not checked.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use harness::Chapter;

use super::outcome::{self, Outcome};
use super::{Exercise, find};

/// What `cargo xtask exercise` was asked to do, besides `--verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Check (a chapter) or list (every chapter).
    Check,
    /// Show the next hint of one exercise.
    Hint,
    /// Re-check a chapter whenever one of its files changes.
    Watch,
    /// Put back the files an exercise touches.
    Reset,
    /// Show the reference solution.
    Solution,
}

/// Runs `cargo xtask exercise [CHAPTER [NAME]] [--hint|--watch|--reset|--solution]`.
/// Fails (a non-zero exit) when an exercise is not solved yet or could not be
/// checked.
pub fn main(
    root: &Path,
    chapter: Option<&str>,
    name: Option<&str>,
    mode: Mode,
    verbose: bool,
) -> Result<()> {
    match (mode, chapter) {
        (Mode::Check, None) => list(root, verbose),
        (Mode::Check, Some(chapter)) => check(root, &select(root, chapter, name)?, verbose),
        (Mode::Hint, Some(chapter)) => hint(root, &one(root, chapter, name, "--hint")?),
        (Mode::Watch, Some(chapter)) => watch(root, &select(root, chapter, name)?, verbose),
        (Mode::Reset, Some(chapter)) => reset(root, &select(root, chapter, name)?),
        (Mode::Solution, Some(chapter)) => solution(&one(root, chapter, name, "--solution")?),
        (_, None) => bail!("which chapter? e.g. `cargo xtask exercise ch02 init --hint`"),
    }
}

/// Every exercise of the selected chapters, in the book's order.
fn in_book_order(root: &Path, chapter: Option<&str>) -> Result<Vec<Exercise>> {
    let mut exercises = Vec::new();
    for exercise in find(root, chapter)? {
        let number = about(root, &exercise)?.number;
        exercises.push((number, exercise));
    }
    // `find` goes chapter by chapter; within one, the book's numbering decides.
    exercises.sort_by_key(|(number, e)| {
        let chapter = harness::CHAPTERS
            .iter()
            .position(|c| c.package == e.chapter.package);
        (chapter, *number)
    });
    Ok(exercises.into_iter().map(|(_, e)| e).collect())
}

/// The exercises of `chapter`, or only `name`.
fn select(root: &Path, chapter: &str, name: Option<&str>) -> Result<Vec<Exercise>> {
    let exercises = in_book_order(root, Some(chapter))?;
    let Some(name) = name else {
        return Ok(exercises);
    };
    let names: Vec<&str> = exercises.iter().map(|e| e.name.as_str()).collect();
    if !names.contains(&name) {
        bail!(
            "{} has no exercise {name:?}; its exercises: {}",
            exercises[0].chapter.package,
            names.join(", ")
        );
    }
    Ok(exercises.into_iter().filter(|e| e.name == name).collect())
}

/// The one exercise a flag such as `--hint` needs.
fn one(root: &Path, chapter: &str, name: Option<&str>, flag: &str) -> Result<Exercise> {
    let mut exercises = select(root, chapter, name)?;
    if exercises.len() != 1 {
        let names: Vec<&str> = exercises.iter().map(|e| e.name.as_str()).collect();
        bail!(
            "{flag} is for one exercise: `cargo xtask exercise {} NAME {flag}`, NAME one of {}",
            exercises[0].chapter.package,
            names.join(", ")
        );
    }
    Ok(exercises.remove(0))
}

/// `cargo xtask exercise`: every exercise, its status, its goal and where the
/// book explains it; then the count.
fn list(root: &Path, verbose: bool) -> Result<()> {
    let exercises = in_book_order(root, None)?;
    let outcomes = run_checkers(root, &exercises, verbose)?;
    let width = outcomes
        .values()
        .map(|o| status(o).len())
        .max()
        .unwrap_or(0);
    let mut out = std::io::stdout().lock();
    let mut chapter = "";
    for exercise in &exercises {
        if exercise.chapter.package != chapter {
            chapter = exercise.chapter.package;
            writeln!(out, "\n{chapter}")?;
        }
        let about = about(root, exercise)?;
        writeln!(
            out,
            "  {:<width$}  {:<22} {} ({})",
            status(&outcomes[&exercise.label()]),
            exercise.name,
            about.goal,
            about.section
        )?;
    }
    drop(out);
    // A list is for reading: it fails only when something could not be checked.
    summary(&exercises, &outcomes, false)
}

/// `cargo xtask exercise CHAPTER [NAME]`: for each checker, "solved" or what it
/// expected and saw.
fn check(root: &Path, exercises: &[Exercise], verbose: bool) -> Result<()> {
    let outcomes = run_checkers(root, exercises, verbose)?;
    report(root, exercises, &outcomes)?;
    summary(exercises, &outcomes, true)
}

/// Prints each exercise's outcome, with the checker's sentence when it failed.
fn report(root: &Path, exercises: &[Exercise], outcomes: &Outcomes) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for exercise in exercises {
        let outcome = &outcomes[&exercise.label()];
        writeln!(out, "{}: {}", exercise.label(), status(outcome))?;
        if let Outcome::NotYet(message) = outcome {
            for line in message.lines() {
                writeln!(out, "  {line}")?;
            }
            let about = about(root, exercise)?;
            writeln!(
                out,
                "  (the exercise: {}; stuck? `cargo xtask exercise {} {} --hint`)",
                about.section,
                short(exercise.chapter),
                exercise.name
            )?;
        }
    }
    Ok(())
}

/// The count, and the one message about what could not be checked; fails
/// when something could not be checked, or (`strict`) is not solved yet.
fn summary(exercises: &[Exercise], outcomes: &Outcomes, strict: bool) -> Result<()> {
    let solved = outcomes.values().filter(|o| **o == Outcome::Solved).count();
    println!("\n{solved} of {} solved", exercises.len());
    let count = |wanted: &Outcome| outcomes.values().filter(|o| *o == wanted).count();
    let (needs_root, needs_v2) = (count(&Outcome::NeedsRoot), count(&Outcome::NeedsV2));
    let other = outcomes
        .values()
        .filter(|o| matches!(o, Outcome::NotChecked(_)))
        .count();
    if needs_root > 0 {
        println!(
            "\n{}",
            nothing_checked(needs_root, cannot_get_root().as_deref())
        );
    }
    if needs_v2 > 0 {
        println!(
            "\n{needs_v2} exercise(s) not checked: they need a host with pure cgroup v2; \
             `cargo xtask test-v2` runs such tests in the v2 VM"
        );
    }
    if needs_root + needs_v2 + other > 0 {
        bail!(
            "{} exercise(s) not checked: none of them counts as solved",
            needs_root + needs_v2 + other
        );
    }
    if strict && solved < exercises.len() {
        bail!("{} exercise(s) not solved yet", exercises.len() - solved);
    }
    Ok(())
}

/// What a learner reads for one outcome.
fn status(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Solved => "solved".into(),
        Outcome::NotYet(_) => "not yet".into(),
        Outcome::NeedsRoot => "not checked (needs root)".into(),
        Outcome::NeedsV2 => "not checked (needs the v2 VM)".into(),
        Outcome::NotChecked(reason) => format!("not checked ({reason})"),
    }
}

/// `ch02` for `ch02-pid-namespace`, as a learner types it.
fn short(chapter: &Chapter) -> &'static str {
    chapter.package.split('-').next().unwrap_or(chapter.package)
}

/// The outcome of each exercise, by [`Exercise::label`].
type Outcomes = BTreeMap<String, Outcome>;

/// Builds and runs the checkers of `exercises`, chapter by chapter, quietly.
fn run_checkers(root: &Path, exercises: &[Exercise], verbose: bool) -> Result<Outcomes> {
    let mut outcomes = Outcomes::new();
    let mut chapters: Vec<&'static Chapter> = exercises.iter().map(|e| e.chapter).collect();
    chapters.dedup_by_key(|c| c.package);
    for chapter in chapters {
        let mine: Vec<&Exercise> = exercises
            .iter()
            .filter(|e| e.chapter.package == chapter.package)
            .collect();
        if chapter.needs_root && cannot_get_root().is_some() {
            for exercise in mine {
                outcomes.insert(exercise.label(), Outcome::NeedsRoot);
            }
            continue;
        }
        // On stderr, so that what the checkers said stands alone on stdout.
        eprintln!("checking {} ...", chapter.package);
        build(root, chapter, verbose)?;
        let output = test(root, chapter, &mine, verbose)?;
        let found = outcome::parse(&output);
        for exercise in mine {
            let outcome = found
                .get(&exercise.test_name())
                .cloned()
                .unwrap_or_else(|| {
                    Outcome::NotYet(format!(
                        "the checker did not run; see `cargo xtask exercise {} {} --verbose`",
                        short(chapter),
                        exercise.name
                    ))
                });
            outcomes.insert(exercise.label(), outcome);
        }
    }
    Ok(outcomes)
}

/// `cargo test --no-run` for a chapter's checkers; the compiler's output only
/// when the build fails (or with `--verbose`).
fn build(root: &Path, chapter: &Chapter, verbose: bool) -> Result<()> {
    let mut command = cargo(root);
    command.args([
        "test",
        "--no-run",
        "-p",
        chapter.package,
        "--test",
        "exercises",
    ]);
    let output = capture(&mut command)?;
    if verbose || !output.status.success() {
        std::io::stderr().write_all(&output.stderr)?;
    }
    if !output.status.success() {
        bail!(
            "{} does not compile (the compiler's messages are above)",
            chapter.package
        );
    }
    Ok(())
}

/// Runs the checkers of `exercises` (all of one chapter); libtest's output.
fn test(root: &Path, chapter: &Chapter, exercises: &[&Exercise], verbose: bool) -> Result<String> {
    let mut command = cargo(root);
    command.args(["test", "-p", chapter.package, "--test", "exercises"]);
    command.args(["--", "--ignored", "--exact", "--format", "pretty"]);
    command.args(exercises.iter().map(|e| e.test_name()));
    // A checker that cannot get root fails, and says so, instead of passing.
    command
        .env(harness::privilege::REQUIRE_PRIVILEGED, "1")
        .env("RUST_BACKTRACE", "0");
    let output = capture(&mut command)?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if verbose {
        eprint!("{text}");
    }
    Ok(text)
}

fn cargo(root: &Path) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(root);
    command
}

/// Runs a command with its output captured. stdin stays the terminal's, so
/// that sudo (from the cargo runner) can ask for a password.
fn capture(command: &mut Command) -> Result<Output> {
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot start `{}`", crate::shell::show(command)))
}

/// Why the checkers cannot get root here, if they cannot: not root, and the
/// workspace's cargo runner cannot use sudo (`.cargo/privileged-runner`).
pub fn cannot_get_root() -> Option<String> {
    if harness::privilege::is_root() {
        return None;
    }
    if std::env::var_os("MINIBOX_NO_SUDO").is_some_and(|v| !v.is_empty()) {
        return Some("MINIBOX_NO_SUDO is set, so the cargo runner does not use sudo".into());
    }
    let sudo = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("sudo").is_file()));
    (!sudo).then(|| "you are not root, and sudo is not installed".into())
}

/// What to tell a learner whose checkers ran without root: plainly, that
/// nothing was checked, and how to run them.
pub fn nothing_checked(count: usize, why: Option<&str>) -> String {
    let why = why.unwrap_or("they ran without it");
    format!(
        "Nothing was checked for {count} exercise(s): the checkers of chapters 2 on need \
         root, and {why}.\nRun them as root, or install sudo and unset MINIBOX_NO_SUDO: \
         the workspace's cargo runner (.cargo/privileged-runner) then runs them through \
         `sudo -E`, asking for your password (see the README, \"What needs root, and why\")."
    )
}

/// An exercise as the book presents it.
struct About {
    /// The one-line goal: the bold title of its item in the book.
    goal: String,
    /// Where the book explains it: `book ch02, Exercises 1`.
    section: String,
    /// Its number in the chapter's Exercises section.
    number: usize,
}

/// Reads the exercise's goal from its chapter page's *Exercises* section,
/// where each item starts `N. **`name`: goal**`: one place for the words.
fn about(root: &Path, exercise: &Exercise) -> Result<About> {
    let page = root
        .join("book/src")
        .join(format!("{}.md", exercise.chapter.package));
    let text = fs::read_to_string(&page).with_context(|| format!("reading {}", page.display()))?;
    let section = text
        .split_once("\n## Exercises")
        .map(|(_, s)| s)
        .unwrap_or_default();
    let start = format!("**`{}`: ", exercise.name);
    for line in section.lines() {
        let Some((number, rest)) = line.split_once(". ") else {
            continue;
        };
        if !number.chars().all(|c| c.is_ascii_digit()) || number.is_empty() {
            continue;
        }
        if let Some(goal) = rest.strip_prefix(&start) {
            let goal = goal
                .split("**")
                .next()
                .unwrap_or(goal)
                .trim_end_matches('.');
            return Ok(About {
                goal: goal.to_string(),
                section: format!("book {}, Exercises {number}", short(exercise.chapter)),
                number: number.parse()?,
            });
        }
    }
    bail!(
        "{}: no item `N. **`{}`: goal**` in the Exercises section of {}",
        exercise.label(),
        exercise.name,
        page.display()
    )
}

/// The hints of an exercise, from `<name>.hints.md` beside its solution:
/// paragraphs separated by a line `---`, from gentle to specific.
fn hints(exercise: &Exercise) -> Result<Vec<String>> {
    let path = exercise.patch.with_extension("hints.md");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let hints: Vec<String> = text
        .split("\n---\n")
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .collect();
    if hints.is_empty() {
        bail!("{} has no hints", path.display());
    }
    Ok(hints)
}

/// Where the runner remembers how many hints of `exercise` were shown.
fn hint_state(root: &Path, exercise: &Exercise) -> PathBuf {
    root.join("target/exercises/hints")
        .join(format!("{}-{}", exercise.chapter.package, exercise.name))
}

/// `--hint`: the next hint (the last one again once all were shown).
fn hint(root: &Path, exercise: &Exercise) -> Result<()> {
    let hints = hints(exercise)?;
    let state = hint_state(root, exercise);
    let shown: usize = fs::read_to_string(&state)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let next = shown.min(hints.len() - 1);
    println!(
        "Hint {} of {} for {}:\n",
        next + 1,
        hints.len(),
        exercise.label()
    );
    for line in hints[next].lines() {
        println!("  {line}");
    }
    if next + 1 < hints.len() {
        println!("\n(`--hint` again for the next one)");
    } else {
        println!(
            "\nThat was the last hint. The reference solution: \
             `cargo xtask exercise {} {} --solution` (it spoils the exercise).",
            short(exercise.chapter),
            exercise.name
        );
    }
    fs::create_dir_all(state.parent().expect("a directory"))?;
    fs::write(&state, format!("{}\n", next + 1))?;
    Ok(())
}

/// `--solution`: the reference patch, after saying that it spoils the exercise.
fn solution(exercise: &Exercise) -> Result<()> {
    let patch = fs::read_to_string(&exercise.patch)?;
    println!(
        "Spoiler: below is the reference solution of {}. Reading it before you have \
         tried takes the exercise away; `--hint` gives a nudge instead.\n",
        exercise.label()
    );
    print!("{patch}");
    Ok(())
}

/// The files a patch touches: (path, whether the patch creates it).
fn touched(patch: &str) -> Vec<(String, bool)> {
    let mut files = Vec::new();
    let mut from = None;
    for line in patch.lines() {
        if let Some(old) = line.strip_prefix("--- ") {
            from = Some(old.to_string());
        } else if let Some(new) = line.strip_prefix("+++ ") {
            let created = from.as_deref() == Some("/dev/null");
            let path = if new == "/dev/null" {
                from.as_deref().unwrap_or_default()
            } else {
                new
            };
            let path = path
                .strip_prefix("a/")
                .or_else(|| path.strip_prefix("b/"))
                .unwrap_or(path);
            if !files.iter().any(|(p, _)| p == path) {
                files.push((path.to_string(), created));
            }
        }
    }
    files
}

/// `--reset`: says which files go back to the last commit (and which files,
/// created by the exercise, are removed), then does it. Nothing else is touched.
fn reset(root: &Path, exercises: &[Exercise]) -> Result<()> {
    let mut files: Vec<(String, bool)> = Vec::new();
    for exercise in exercises {
        for file in touched(&fs::read_to_string(&exercise.patch)?) {
            if !files.iter().any(|(p, _)| *p == file.0) {
                files.push(file);
            }
        }
    }
    files.sort();
    let names: Vec<String> = exercises.iter().map(Exercise::label).collect();
    let (created, restored): (Vec<_>, Vec<_>) = files.iter().partition(|(_, created)| *created);
    println!(
        "Resetting {} puts these files back as they are in your last commit (HEAD); \
         your changes to them are lost:",
        names.join(", ")
    );
    for (path, _) in &restored {
        println!("  {path}");
    }
    if !created.is_empty() {
        println!("and removes these files, which the exercise adds:");
        for (path, _) in &created {
            println!("  {path}");
        }
    }
    for (path, _) in &restored {
        let status = Command::new("git")
            .current_dir(root)
            .args(["checkout", "HEAD", "--", path])
            .status()
            .context("running git checkout")?;
        if !status.success() {
            bail!("`git checkout HEAD -- {path}` failed");
        }
    }
    for (path, _) in &created {
        match fs::remove_file(root.join(path)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {path}")),
        }
    }
    println!("Done.");
    Ok(())
}

/// `--watch`: checks, then re-checks whenever a file under the chapter
/// changes (its modification times, polled), clearing the screen each time,
/// until every selected exercise is solved.
fn watch(root: &Path, exercises: &[Exercise], verbose: bool) -> Result<()> {
    let dir = root.join("chapters").join(exercises[0].chapter.package);
    loop {
        let seen = fingerprint(&dir);
        // Clear the screen and go home, as rustlings does between runs.
        print!("\x1b[2J\x1b[H");
        let result = run_checkers(root, exercises, verbose).and_then(|outcomes| {
            report(root, exercises, &outcomes)?;
            summary(exercises, &outcomes, true)
        });
        match result {
            Ok(()) => {
                println!("Every exercise here is solved. Well done!");
                return Ok(());
            }
            Err(why) => println!(
                "\n{why:#}. Watching {} for changes (Ctrl-C to stop)...",
                dir.strip_prefix(root).unwrap_or(&dir).display()
            ),
        }
        std::io::stdout().flush()?;
        while fingerprint(&dir) == seen {
            std::thread::sleep(Duration::from_millis(300));
        }
        // Let an editor finish writing.
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The modification time and size of every file under `dir` (but `target`).
fn fingerprint(dir: &Path) -> Vec<(PathBuf, SystemTime, u64)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_dir() {
                if entry.file_name() != "target" {
                    stack.push(path);
                }
            } else {
                let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                files.push((path, modified, meta.len()));
            }
        }
    }
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_touches_the_files_it_names_and_creates_new_ones() {
        let patch = "--- a/chapters/x/src/cli.rs\n+++ b/chapters/x/src/cli.rs\n@@\n\
                     --- /dev/null\n+++ b/chapters/x/src/init.rs\n@@\n";
        assert_eq!(
            touched(patch),
            [
                ("chapters/x/src/cli.rs".to_string(), false),
                ("chapters/x/src/init.rs".to_string(), true)
            ]
        );
    }

    #[test]
    fn every_exercise_has_a_goal_in_the_book_and_hints() {
        let root = harness::transcript::workspace_root();
        for exercise in find(&root, None).unwrap() {
            about(&root, &exercise).unwrap();
            assert!(
                hints(&exercise).unwrap().len() >= 2,
                "{}: give at least two hints, gentle to specific",
                exercise.label()
            );
        }
    }
}
