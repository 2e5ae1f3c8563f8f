//! `cargo xtask`: the project's tasks, written in Rust (no shell scripts, no make).
//!
//! ## Layout
//!
//! - [`shell`]: running cargo and other programs, echoing what runs.
//! - [`prereqs`]: the host packages the tests and demos need, installed when missing.
//! - [`fixtures`]: what tests and demos need prepared (grows with the chapters).
//! - [`tour`]: every chapter's demo, in story order, with banners.
//! - [`codegen`]: the book's generated files: transcripts from snapshots, and each
//!   chapter's diff against the previous one.
//! - [`check_book`]: what mdBook does not check: includes, anchors, SUMMARY.
//! - [`book`]: building the book with mdbook-driver.
//! - [`figures`]: the book's figures at the book's width: label sizes computed
//!   from each SVG (for check-book), and rendered in headless Chromium.
//! - [`man`]: a man page per command of chapter 10's `minibox`.
//! - [`registry`]: the fixture images on a registry of their own, for classrooms.
//! - [`bench`]: benchmarks that print ratios against peers measured in the same run.
//! - [`v2`]: the cgroup v2 suites of chapters 5, 10, 12 and 13, in a VM with a pure cgroup v2 kernel.
//! - [`exercise`]: the learner's exercise runner (status, checks in plain words,
//!   hints, watch, reset, solutions), and proving each checker fails on the
//!   shipped code and on its stubs, and passes with its reference solution.
//! - [`tidy`]: the chapters' own rules, read from their sources (no recipe
//!   imported from another chapter, short functions, no body written twice).
//!
//! `check-book`, `codegen --check` and `tidy` also run as ordinary `#[test]`s,
//! so plain `cargo test` catches a book that lags the code, or a slip in it.

mod bench;
mod book;
mod check_book;
mod codegen;
mod exercise;
mod figures;
mod fixtures;
mod man;
mod prereqs;
mod registry;
mod shell;
mod tidy;
mod tour;
mod v2;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// The minibox project's tasks
#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Build everything, prepare fixtures, and run every chapter's demo in order
    Tour,
    /// Install missing host prerequisites, then run the whole test suite
    Test {
        /// Extra arguments for `cargo test` (after `--`)
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Run the cgroup v2 suites (chapter 5: limits; chapter 10: the runtime; chapter 12: device rules; chapter 13: rootless limits) in a pure cgroup v2 VM (v2vm)
    TestV2 {
        /// Fail, instead of skipping, when v2vm is not available
        #[arg(long)]
        require: bool,
        /// Only the suite of this chapter's package (e.g. ch13-rootless)
        #[arg(long, value_name = "PACKAGE")]
        only: Option<String>,
    },
    /// Serve the fixture images on a local registry until Ctrl-C (for classrooms)
    Registry {
        #[command(subcommand)]
        action: RegistryAction,
    },
    /// Run a benchmark (snapshot, pull, start, build, oci) and print ratios
    Bench {
        /// Which one: snapshot (chapter 6), pull (chapter 7), start (chapter 9), build (chapter 11), oci (chapter 14)
        which: String,
        /// Write the medians to book/src/data/bench-WHICH.json (start only)
        #[arg(long)]
        record: bool,
    },
    /// Build the book into target/book
    Book {
        /// Open it in a browser afterwards
        #[arg(long)]
        open: bool,
    },
    /// Regenerate book/src/generated (transcripts, per-chapter diffs)
    Codegen {
        /// Only check that the generated files are up to date
        #[arg(long)]
        check: bool,
    },
    /// Check the book's includes, anchors, links, SUMMARY and figure label sizes
    CheckBook,
    /// Render every figure at the book's width in headless Chromium (screenshots in target/figures)
    Figures,
    /// cargo fmt --check, cargo clippy -D warnings, and tidy
    Lint,
    /// The chapters' own rules: no recipe imported from another chapter, no clap
    /// in concept modules, short functions, no function body in two chapters
    Tidy,
    /// Prepare what the tests and demos need
    Fixtures,
    /// The exercises: status of each (no CHAPTER), check a chapter, hints, watch, reset
    Exercise {
        /// The chapter (`ch01` or `ch01-fork-exec`); without it, every exercise's status
        chapter: Option<String>,
        /// Only this exercise
        name: Option<String>,
        /// Show the compiler's and the test harness's own output too
        #[arg(long)]
        verbose: bool,
        /// Show the next hint for exercise NAME (gentle first, more specific each time)
        #[arg(long, requires = "chapter", group = "mode")]
        hint: bool,
        /// Re-check the chapter whenever one of its files changes, until all are solved
        #[arg(long, requires = "chapter", group = "mode")]
        watch: bool,
        /// Put back the files the exercise (or the chapter's exercises) touches, as in HEAD
        #[arg(long, requires = "chapter", group = "mode")]
        reset: bool,
        /// Show the reference solution of exercise NAME (a spoiler)
        #[arg(long, requires = "chapter", group = "mode")]
        solution: bool,
        /// Prove each checker fails on the shipped code and on its stubs, and passes
        /// with the solution (in a scratch copy of the workspace)
        #[arg(long, group = "mode")]
        verify: bool,
    },
    /// Write a man page per command of the `minibox` binary (chapter 10)
    Man {
        /// Where to write them
        #[arg(long, default_value = "target/man")]
        out: std::path::PathBuf,
    },
    /// Everything CI checks: test, test-v2, lint, book, check-book, figures, codegen --check, exercise --verify
    Ci,
}

#[derive(Debug, Subcommand)]
enum RegistryAction {
    /// Start it, push the fixture images, and wait
    Start {
        /// The address to listen on (0.0.0.0 to serve a classroom's network)
        #[arg(long, default_value = "127.0.0.1")]
        address: String,
        /// The port
        #[arg(long, default_value_t = 5000)]
        port: u16,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(task: Task) -> Result<()> {
    let root = workspace_root();
    match task {
        Task::Tour => tour::tour(&root),
        Task::Test { args } => test(&root, &args),
        Task::TestV2 { require, only } => v2::test(&root, require, only.as_deref()),
        Task::Bench { which, record } => bench::bench(&root, &which, record),
        Task::Registry {
            action: RegistryAction::Start { address, port },
        } => registry::start(&root, &address, port),
        Task::Book { open } => book::build(&root, open),
        Task::Codegen { check: false } => codegen::write(&root),
        Task::Codegen { check: true } => codegen::check(&root),
        Task::CheckBook => check_book::check(&root),
        Task::Figures => figures::render(&root),
        Task::Lint => lint(&root),
        Task::Tidy => tidy::check(&root),
        Task::Fixtures => fixtures::prepare(&root),
        Task::Exercise {
            chapter,
            verify: true,
            ..
        } => exercise::verify(&root, chapter.as_deref()),
        Task::Exercise {
            chapter,
            name,
            verbose,
            hint,
            watch,
            reset,
            solution,
            verify: false,
        } => {
            let mode = match (hint, watch, reset, solution) {
                (true, ..) => exercise::Mode::Hint,
                (_, true, ..) => exercise::Mode::Watch,
                (_, _, true, _) => exercise::Mode::Reset,
                (.., true) => exercise::Mode::Solution,
                _ => exercise::Mode::Check,
            };
            exercise::learn(&root, chapter.as_deref(), name.as_deref(), mode, verbose)
        }
        Task::Man { out } => man::write(&root.join(out)).map(|pages| {
            println!(
                "wrote {} man pages in {}",
                pages.len(),
                root.join("target/man").display()
            );
        }),
        Task::Ci => ci(&root),
    }
}

/// The workspace xtask works on: this one, or the one `XTASK_WORKSPACE` names
/// (xtask's own tests drive the exercise runner on a scratch copy).
fn workspace_root() -> std::path::PathBuf {
    std::env::var_os("XTASK_WORKSPACE")
        .map(Into::into)
        .unwrap_or_else(harness::transcript::workspace_root)
}

/// `cargo xtask test`: prerequisites and fixtures, binaries, then `cargo test`.
fn test(root: &std::path::Path, args: &[String]) -> Result<()> {
    fixtures::prepare(root)?; // installs missing prerequisites first
    shell::cargo(root, &["build", "--workspace", "--bins"])?;
    let mut cargo_args = vec!["test", "--workspace", "--no-fail-fast"];
    if !args.is_empty() {
        cargo_args.push("--");
        cargo_args.extend(args.iter().map(String::as_str));
    }
    shell::cargo(root, &cargo_args)
}

fn lint(root: &std::path::Path) -> Result<()> {
    shell::cargo(root, &["fmt", "--all", "--check"])?;
    shell::cargo(
        root,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    tidy::check(root)
}

/// `cargo xtask ci`: what `.ci/run` runs, in the same order.
fn ci(root: &std::path::Path) -> Result<()> {
    // SAFETY: set_var is called while xtask is still single-threaded.
    unsafe {
        std::env::set_var(harness::privilege::REQUIRE_PRIVILEGED, "1");
        std::env::set_var("INSTA_UPDATE", "no");
    }
    test(root, &[])?;
    v2::test(root, true, None)?;
    lint(root)?;
    book::build(root, false)?;
    check_book::check(root)?;
    figures::render(root)?;
    codegen::check(root)?;
    exercise::verify(root, None)
}

#[cfg(test)]
mod tests {
    //! The book's consistency checks, as ordinary tests.

    #[test]
    fn book_includes_anchors_and_summary_are_consistent() {
        let root = harness::transcript::workspace_root();
        if let Err(err) = super::check_book::check(&root) {
            panic!("{err:#}");
        }
    }

    #[test]
    fn exercise_solutions_still_apply() {
        let root = harness::transcript::workspace_root();
        if let Err(err) = super::exercise::check_patches_apply(&root) {
            panic!("{err:#}");
        }
    }

    #[test]
    fn generated_book_files_are_up_to_date() {
        let root = harness::transcript::workspace_root();
        if let Err(err) = super::codegen::check(&root) {
            panic!("{err:#}");
        }
    }
}
