//! `cargo xtask tidy`: the rules that keep the chapters' sources the way the
//! design says, checked by reading them (rust-analyzer's `tidy` habit). They
//! also run as ordinary tests, so `cargo test` catches a slip:
//!
//! - **no chapter uses another chapter's recipe**: a later chapter calls an
//!   earlier chapter's concepts, never its `run::` helpers (the subcommand
//!   dispatch `run::act` aside: chapter 8 hands `pull`, `images`... to
//!   chapter 7 whole);
//! - **concept modules know nothing of clap**: the command line lives in
//!   `cli.rs` (and `main.rs`), and is turned into plain types there;
//! - **functions stay short**: at most [`MAX_FUNCTION_LINES`] lines in
//!   `chapters/*/src`, but for the few in [`LONG_FUNCTIONS`], each with its
//!   reason;
//! - **no function body is written twice**: two chapters with the same body
//!   (comments and layout aside) mean a step was copied forward instead of
//!   called where it was introduced.
//!
//! Each rule has a unit test that feeds it a violating snippet and sees it fail.
//!
//! The reading is lexical: comments and the insides of string and character
//! literals are blanked out first, then functions are found by their `fn`
//! keyword and their braces. That is enough for code that rustfmt formats.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use regex::Regex;

/// The longest a function in `chapters/*/src` may be, signature and closing
/// brace included: a recipe fits on one screen with room to spare.
pub const MAX_FUNCTION_LINES: usize = 70;

/// The functions allowed to be longer, as `(chapter, file, function)`, each
/// for a reason. Keep it short: a new entry needs as good a reason.
pub const LONG_FUNCTIONS: &[(&str, &str, &str)] = &[
    // runc's rules for `-u USER[:GROUP]`, one case per arm: split up, the
    // rules would no longer read as the table the book shows.
    ("ch08-command-override", "src/user.rs", "resolve"),
    // One tar entry, by type: each arm is short, and they belong together.
    ("ch07-image-pull", "src/extract.rs", "unpack_entry"),
    // A pull, start to finish, in the numbered steps the book walks through.
    ("ch07-image-pull", "src/pull.rs", "pull"),
    // One request with its challenge answered and its retries: the protocol's
    // loop in one place, on the page as it runs.
    ("ch07-image-pull", "src/registry.rs", "send"),
];

/// Bodies shorter than this (normalized, in bytes) are too small to count as a
/// copied step: `{ self.dir.join("rootfs") }` may well be written twice.
pub const MIN_DUPLICATE_BODY: usize = 160;

/// One source file of a chapter.
#[derive(Debug, Clone)]
pub struct Source {
    /// The chapter's directory name, `ch05-cgroups`.
    pub chapter: String,
    /// The path inside the chapter, `src/run.rs`.
    pub path: PathBuf,
    /// The file's text.
    pub text: String,
}

impl Source {
    /// The chapter's crate name as Rust code spells it: `ch05_cgroups`.
    fn crate_name(&self) -> String {
        self.chapter.replace('-', "_")
    }

    fn is_command_line(&self) -> bool {
        let name = self.path.file_name().and_then(|n| n.to_str());
        matches!(name, Some("cli.rs" | "main.rs"))
    }
}

/// A rule broken, with where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// `chapters/ch06-rootfs-snapshot/src/run.rs:12`.
    pub place: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.message)
    }
}

/// Runs every rule on the workspace at `root`; fails with the list of
/// violations.
pub fn check(root: &Path) -> Result<()> {
    let sources = read_chapters(root)?;
    let violations = check_sources(&sources);
    if violations.is_empty() {
        eprintln!("xtask: tidy: {} files, all rules hold", sources.len());
        return Ok(());
    }
    let list: Vec<String> = violations.iter().map(ToString::to_string).collect();
    bail!("tidy: {} violation(s):\n{}", list.len(), list.join("\n"))
}

/// Every rule, on `sources`.
pub fn check_sources(sources: &[Source]) -> Vec<Violation> {
    let mut found = Vec::new();
    found.extend(no_cross_chapter_recipes(sources));
    found.extend(no_clap_in_concepts(sources));
    found.extend(short_functions(sources, MAX_FUNCTION_LINES, LONG_FUNCTIONS));
    found.extend(no_body_in_two_chapters(sources, MIN_DUPLICATE_BODY));
    found
}

/// `chapters/*/src/**/*.rs`.
pub fn read_chapters(root: &Path) -> Result<Vec<Source>> {
    let mut sources = Vec::new();
    let chapters = root.join("chapters");
    let mut dirs: Vec<_> = fs::read_dir(&chapters)
        .with_context(|| format!("reading {}", chapters.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("src").is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let chapter = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut stack = vec![dir.join("src")];
        while let Some(at) = stack.pop() {
            for entry in fs::read_dir(&at)?.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    let path = path.strip_prefix(&dir)?.to_path_buf();
                    sources.push(Source {
                        chapter: chapter.clone(),
                        path,
                        text,
                    });
                }
            }
        }
    }
    sources.sort_by(|a, b| (&a.chapter, &a.path).cmp(&(&b.chapter, &b.path)));
    Ok(sources)
}

fn place(source: &Source, line: usize) -> String {
    format!(
        "chapters/{}/{}:{line}",
        source.chapter,
        source.path.display()
    )
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

// ---------------------------------------------------------------------------
// Rule 1: no chapter uses another chapter's `run::`.

/// A later chapter calls an earlier chapter's concepts, never its recipe's
/// helpers: no `use chNN_x::run...` and no `chNN_x::run::f` from another
/// chapter, but for `run::act`, the subcommand dispatch.
pub fn no_cross_chapter_recipes(sources: &[Source]) -> Vec<Violation> {
    let use_statement = Regex::new(r"(?s)\buse\s+([^;]*);").unwrap();
    let crate_path = Regex::new(r"\b(ch\d\d_[a-z0-9_]+)\s*::").unwrap();
    let run_path = Regex::new(r"\b(ch\d\d_[a-z0-9_]+)::run::([A-Za-z_][A-Za-z0-9_]*)").unwrap();
    let run_word = Regex::new(r"\brun\b").unwrap();
    let mut found = Vec::new();
    for source in sources {
        let own = source.crate_name();
        let code = code_only(&source.text);
        for statement in use_statement.captures_iter(&code) {
            let body = &statement[1];
            let foreign = crate_path.captures_iter(body).any(|c| c[1] != own);
            if foreign && run_word.is_match(body) {
                found.push(Violation {
                    place: place(source, line_of(&code, statement.get(0).unwrap().start())),
                    message: format!(
                        "`use {}` imports another chapter's recipe: call the concept module that introduced the step instead",
                        body.split_whitespace().collect::<Vec<_>>().join(" ")
                    ),
                });
            }
        }
        // Paths in code, the `use` statements (checked above) blanked out.
        let outside_uses = use_statement.replace_all(&code, |c: &regex::Captures| {
            c[0].chars()
                .map(|ch| if ch == '\n' { '\n' } else { ' ' })
                .collect::<String>()
        });
        for path in run_path.captures_iter(&outside_uses) {
            if path[1] != own && &path[2] != "act" {
                found.push(Violation {
                    place: place(source, line_of(&outside_uses, path.get(0).unwrap().start())),
                    message: format!(
                        "`{}` is another chapter's recipe: only its `run::act` dispatch may be called",
                        &path[0]
                    ),
                });
            }
        }
    }
    found
}

// ---------------------------------------------------------------------------
// Rule 2: concept modules do not depend on clap.

/// Only `cli.rs` and `main.rs` may name clap: the rest of a chapter works with
/// plain types.
pub fn no_clap_in_concepts(sources: &[Source]) -> Vec<Violation> {
    let clap = Regex::new(r"\bclap\b").unwrap();
    let mut found = Vec::new();
    for source in sources.iter().filter(|s| !s.is_command_line()) {
        let code = code_only(&source.text);
        if let Some(at) = clap.find(&code) {
            found.push(Violation {
                place: place(source, line_of(&code, at.start())),
                message: "a concept module uses clap: keep the command line in cli.rs and hand the module plain values".into(),
            });
        }
    }
    found
}

// ---------------------------------------------------------------------------
// Rule 3: functions stay short.

/// No function longer than `max` lines, but those in `allowed`.
pub fn short_functions(
    sources: &[Source],
    max: usize,
    allowed: &[(&str, &str, &str)],
) -> Vec<Violation> {
    let mut found = Vec::new();
    for source in sources {
        for function in functions(&source.text) {
            let lines = function.end_line - function.start_line + 1;
            let path = source.path.to_string_lossy();
            let listed = allowed.iter().any(|(chapter, file, name)| {
                *chapter == source.chapter && *file == path && *name == function.name
            });
            if lines > max && !listed {
                found.push(Violation {
                    place: place(source, function.start_line),
                    message: format!(
                        "fn {} is {lines} lines long, more than {max}: move steps that do not change into the concept module that introduced them",
                        function.name
                    ),
                });
            }
        }
    }
    found
}

// ---------------------------------------------------------------------------
// Rule 4: no function body in two chapters.

/// No two chapters contain the same function body (comments and whitespace
/// aside), unless it is shorter than `min_len` normalized bytes.
pub fn no_body_in_two_chapters(sources: &[Source], min_len: usize) -> Vec<Violation> {
    let mut bodies: BTreeMap<String, Vec<(&Source, Function)>> = BTreeMap::new();
    for source in sources {
        for function in functions(&source.text) {
            let normalized: String = function
                .body
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            if normalized.len() >= min_len {
                bodies
                    .entry(normalized)
                    .or_default()
                    .push((source, function));
            }
        }
    }
    let mut found = Vec::new();
    for places in bodies.values() {
        let mut chapters: Vec<&str> = places.iter().map(|(s, _)| s.chapter.as_str()).collect();
        chapters.dedup();
        if chapters.len() < 2 {
            continue;
        }
        let (first, first_fn) = &places[0];
        for (source, function) in &places[1..] {
            if source.chapter != first.chapter {
                found.push(Violation {
                    place: place(source, function.start_line),
                    message: format!(
                        "fn {} has the same body as fn {} at {}: call the one in the chapter that introduced it",
                        function.name,
                        first_fn.name,
                        place(first, first_fn.start_line)
                    ),
                });
            }
        }
    }
    found
}

// ---------------------------------------------------------------------------
// Reading Rust, lexically.

/// A function found in a file.
#[derive(Debug, Clone)]
pub struct Function {
    /// Its name.
    pub name: String,
    /// The line of its `fn` keyword (its attributes and comments not counted).
    pub start_line: usize,
    /// The line of its closing brace.
    pub end_line: usize,
    /// Its body, braces included, comments and literals blanked.
    pub body: String,
}

/// Every function with a body in `text`, nested ones included.
pub fn functions(text: &str) -> Vec<Function> {
    let code = code_only(text);
    let keyword = Regex::new(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)").unwrap();
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    for capture in keyword.captures_iter(&code) {
        let start = capture.get(0).unwrap().start();
        // The body starts at the first `{` outside the signature's brackets;
        // a `;` first means a declaration without a body.
        let mut depth = 0i32;
        let mut open = None;
        for (i, &b) in bytes.iter().enumerate().skip(capture.get(0).unwrap().end()) {
            match b {
                b'(' | b'[' | b'<' => depth += 1,
                b')' | b']' => depth -= 1,
                b'>' if i > 0 && bytes[i - 1] != b'-' && bytes[i - 1] != b'=' => depth -= 1,
                b'{' if depth <= 0 => {
                    open = Some(i);
                    break;
                }
                b';' if depth <= 0 => break,
                _ => {}
            }
        }
        let Some(open) = open else { continue };
        let mut depth = 0i32;
        let mut close = None;
        for (i, &b) in bytes.iter().enumerate().skip(open) {
            match b {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(close) = close else { continue };
        found.push(Function {
            name: capture[1].to_string(),
            start_line: line_of(&code, start),
            end_line: line_of(&code, close),
            body: code[open..=close].to_string(),
        });
    }
    found
}

/// `text` with comments removed and the insides of string and character
/// literals blanked, line breaks kept (so line numbers still hold).
pub fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    // Keeps line breaks of what is skipped.
    let blank = |out: &mut String, c: char| {
        if c == '\n' {
            out.push('\n');
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && is_raw_string(&chars, i) {
            // r"..." or r#"..."#
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            out.push_str("r\"");
            j += 1; // the opening quote
            while j < chars.len() {
                if chars[j] == '"' && (0..hashes).all(|k| chars.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                blank(&mut out, chars[j]);
                j += 1;
            }
            out.push('"');
            i = j;
        } else if c == '"' {
            out.push('"');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if let Some(&c) = chars.get(i) {
                    blank(&mut out, c);
                }
                i += 1;
            }
            out.push('"');
            i += 1;
        } else if c == '\'' {
            // A character literal ('a', '\n', '\u{1F600}') or a lifetime ('a).
            if next == Some('\\') {
                let mut j = i + 2;
                while j < chars.len() && chars[j] != '\'' {
                    j += 1;
                }
                out.push_str("' '");
                i = j + 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                out.push_str("' '");
                i += 3;
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Whether the `r` at `at` starts a raw string (and is not the end of a name
/// such as `for`, or `r#type`).
fn is_raw_string(chars: &[char], at: usize) -> bool {
    if at > 0 && (chars[at - 1].is_alphanumeric() || chars[at - 1] == '_') {
        // `br"..."` is a raw byte string; anything else is a name ending in r.
        if !(chars[at - 1] == 'b' && (at < 2 || !chars[at - 2].is_alphanumeric())) {
            return false;
        }
    }
    let mut j = at + 1;
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    chars.get(j) == Some(&'"')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(chapter: &str, path: &str, text: &str) -> Source {
        Source {
            chapter: chapter.into(),
            path: path.into(),
            text: text.into(),
        }
    }

    /// The rules hold on the chapters as they are.
    #[test]
    fn the_chapters_are_tidy() {
        let root = harness::transcript::workspace_root();
        if let Err(err) = check(&root) {
            panic!("{err:#}");
        }
    }

    #[test]
    fn another_chapters_recipe_is_refused_but_its_dispatch_is_not() {
        let violating = source(
            "ch07-image-pull",
            "src/run.rs",
            "use ch05_cgroups::run::report;\nuse ch06_rootfs_snapshot::{run, snapshot};\nfn f() { ch06_rootfs_snapshot::run::print_changes(&s); }\n",
        );
        let found = no_cross_chapter_recipes(&[violating]);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(
            found[0].message.contains("ch05_cgroups::run::report"),
            "{}",
            found[0]
        );
        assert_eq!(found[2].place, "chapters/ch07-image-pull/src/run.rs:3");

        let fine = source(
            "ch08-command-override",
            "src/run.rs",
            "use ch05_cgroups::cgroup;\nuse ch08_command_override::{cli, run};\n// ch06_rootfs_snapshot::run::print_changes in a comment\nfn act() { ch07_image_pull::run::act(action) }\nconst S: &str = \"ch06_rootfs_snapshot::run::x\";\n",
        );
        assert_eq!(no_cross_chapter_recipes(&[fine]), []);
    }

    #[test]
    fn clap_in_a_concept_module_is_refused() {
        let concept = source(
            "ch06-rootfs-snapshot",
            "src/snapshot.rs",
            "/// See clap's docs.\n#[derive(clap::ValueEnum)]\npub enum Snapshotter { Overlay }\n",
        );
        let found = no_clap_in_concepts(&[concept]);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].place,
            "chapters/ch06-rootfs-snapshot/src/snapshot.rs:2"
        );
        let cli = source("ch06-rootfs-snapshot", "src/cli.rs", "use clap::Args;\n");
        assert_eq!(no_clap_in_concepts(&[cli]), []);
    }

    #[test]
    fn a_long_function_is_refused_unless_allowed() {
        let mut text = String::from("/// Doc.\npub fn long(x: u32) -> u32 {\n");
        for i in 0..8 {
            text.push_str(&format!("    let _a{i} = x + {i}; // }}\n"));
        }
        text.push_str("    x\n}\n\nfn short() {}\n");
        let file = source("ch05-cgroups", "src/run.rs", &text);
        // `long` is 11 lines: from `pub fn` to its closing brace.
        let found = short_functions(std::slice::from_ref(&file), 10, &[]);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].place, "chapters/ch05-cgroups/src/run.rs:2");
        assert!(
            found[0].message.contains("fn long is 11 lines"),
            "{}",
            found[0]
        );
        assert_eq!(short_functions(std::slice::from_ref(&file), 11, &[]), []);
        let allowed = [("ch05-cgroups", "src/run.rs", "long")];
        assert_eq!(short_functions(&[file], 10, &allowed), []);
    }

    #[test]
    fn the_same_body_in_two_chapters_is_refused() {
        let body = "{\n    // the parent's side\n    parent.release()?;\n    if let Err(error) = parent.wait_for_exec(&program) {\n        process::wait_for(child)?;\n        return Err(error);\n    }\n    process::wait_for(child)\n}\n";
        let mut copied = body.replace("// the parent's side", "/* copied */");
        copied = copied.replace("    ", "  ");
        let a = source(
            "ch05-cgroups",
            "src/run.rs",
            &format!("fn start(x: u8) -> R {body}"),
        );
        let b = source(
            "ch06-rootfs-snapshot",
            "src/run.rs",
            &format!("pub fn run_in(y: u16) -> R {copied}"),
        );
        let found = no_body_in_two_chapters(&[a.clone(), b], 100);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].place, "chapters/ch06-rootfs-snapshot/src/run.rs:1");
        assert!(
            found[0]
                .message
                .contains("fn run_in has the same body as fn start"),
            "{}",
            found[0]
        );
        // Within one chapter, or below the size that counts, it is not a slip.
        let same_chapter = source(
            "ch05-cgroups",
            "src/other.rs",
            &format!("fn again() {body}"),
        );
        assert_eq!(no_body_in_two_chapters(&[a.clone(), same_chapter], 100), []);
        let c = source("ch07-image-pull", "src/run.rs", &format!("fn f() {body}"));
        assert_eq!(no_body_in_two_chapters(&[a, c], 10_000), []);
    }

    #[test]
    fn comments_and_literals_are_blanked_and_functions_found() {
        let text = "fn a<'x>(s: &'x str) -> char {\n    let _ = \"}\\\"{\"; let _ = r#\"}\"#; // }\n    /* { */ '}'\n}\nfn decl();\nfn b() -> Result<(), E> where E: Into<u8> { Ok(()) }\n";
        let found = functions(text);
        let names: Vec<_> = found
            .iter()
            .map(|f| (f.name.as_str(), f.start_line, f.end_line))
            .collect();
        assert_eq!(names, [("a", 1, 4), ("b", 6, 6)]);
    }
}
