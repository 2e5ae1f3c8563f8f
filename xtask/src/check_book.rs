//! `cargo xtask check-book`: what mdBook does not check. mdBook renders a broken
//! `{{#include}}` as an error message inside the page and carries on; this fails
//! instead. It checks that:
//!
//! - SUMMARY.md lists every page, and every page it lists exists;
//! - every include and image resolves, and included anchors exist and are not empty;
//! - includes use anchors, never line numbers (line numbers drift silently);
//! - no page includes code that another page already shows unchanged (a later
//!   chapter links to it instead);
//! - every anchor in the chapters' code is unique in its file, closed, non-empty,
//!   and used by the book (an unused anchor is a lesson that lost its page);
//! - a page that names another written chapter ("chapter 4") links to it, outside
//!   code and headings (the *Exercises* sections are left to their authors);
//! - the appendix's tables agree with the code: each module it names exists in
//!   its chapter and mentions the system call, flag or command of its row; each
//!   flag and command first appears in the help text of the chapter it names; and
//!   every flag and command of the help texts is in the appendix;
//! - every chapter's page has its *By hand first* session (the generated
//!   transcript) and keeps *How it's tested* folded in a `<details>` block;
//! - ARCHITECTURE.md's table of where each concept lives names modules that
//!   exist, and has a row for every chapter;
//! - each figure is shown on one page only (others link to it), and every label
//!   of every figure renders at 14 px or more in the book's 750 px column, computed
//!   from the SVG's font sizes, its `viewBox` and its `width` (see [`figures`]).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use regex::Regex;

use crate::figures;

/// One `ANCHOR: name` ... `ANCHOR_END: name` region of a file.
#[derive(Debug)]
struct Anchor {
    name: String,
    line: usize,
    closed: bool,
    non_blank: usize,
}

/// Runs every check; fails with the full list of problems.
pub fn check(root: &Path) -> Result<()> {
    let problems = problems(root)?;
    if problems.is_empty() {
        return Ok(());
    }
    bail!(
        "the book has {} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    )
}

fn problems(root: &Path) -> Result<Vec<String>> {
    let src = root.join("book/src");
    let mut problems = Vec::new();
    let rel = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();

    // SUMMARY.md against the pages on disk.
    let summary_path = src.join("SUMMARY.md");
    let summary = fs::read_to_string(&summary_path).context("reading book/src/SUMMARY.md")?;
    let link = Regex::new(r"\]\(([^)\s]+\.md)\)")?;
    let mut listed = BTreeSet::new();
    for cap in link.captures_iter(&summary) {
        let page = src.join(&cap[1]);
        if !page.is_file() {
            problems.push(format!(
                "SUMMARY.md lists {}, which does not exist",
                &cap[1]
            ));
        }
        listed.insert(page);
    }
    let pages: Vec<PathBuf> = files_under(&src)?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .filter(|p| p != &summary_path && !p.starts_with(src.join("generated")))
        .collect();
    for page in &pages {
        if !listed.contains(page) {
            problems.push(format!("{} is not listed in SUMMARY.md", rel(page)));
        }
    }

    // Includes, images and links in every page.
    let include = Regex::new(r"\{\{#(?:include|rustdoc_include)\s+([^}\s]+)\s*\}\}")?;
    let asset = Regex::new(r"\]\(([^)#\s:]+\.(?:svg|png|md))(?:#[^)]*)?\)")?;
    let mut used: BTreeSet<(PathBuf, String)> = BTreeSet::new();
    // Included code, crate names normalised, and the first page that shows it.
    let mut shown: std::collections::BTreeMap<String, String> = Default::default();
    let crate_name = Regex::new(r"ch\d\d_[a-z_]+")?;
    for page in &pages {
        let text = fs::read_to_string(page)?;
        let dir = page.parent().expect("a page is in a directory");
        for cap in include.captures_iter(&text) {
            let (path, selector) = match cap[1].split_once(':') {
                Some((path, selector)) => (path, Some(selector)),
                None => (&cap[1], None),
            };
            let target = dir.join(path);
            let Ok(target) = target.canonicalize() else {
                problems.push(format!("{}: include {path} does not exist", rel(page)));
                continue;
            };
            let Some(selector) = selector else { continue };
            if selector.chars().all(|c| c.is_ascii_digit() || c == ':') {
                problems.push(format!(
                    "{}: include {path}:{selector} uses line numbers; use an anchor",
                    rel(page)
                ));
                continue;
            }
            let anchors = anchors(&fs::read_to_string(&target)?);
            match anchors.iter().find(|a| a.name == selector) {
                None => problems.push(format!(
                    "{}: anchor `{selector}` not found in {path}",
                    rel(page)
                )),
                Some(a) if !a.closed || a.non_blank == 0 => problems.push(format!(
                    "{}: anchor `{selector}` in {path} is unclosed or empty",
                    rel(page)
                )),
                Some(_) => {}
            }
            let code = region(&fs::read_to_string(&target)?, selector);
            let code = crate_name.replace_all(code.trim(), "CRATE").to_string();
            if !code.is_empty() {
                match shown.get(&code) {
                    Some(first) if first != &rel(page) => problems.push(format!(
                        "{}: include {path}:{selector} shows code that {first} already shows unchanged: link to it",
                        rel(page)
                    )),
                    Some(_) => {}
                    None => {
                        shown.insert(code, rel(page));
                    }
                }
            }
            used.insert((target, selector.to_string()));
        }
        for cap in asset.captures_iter(&text) {
            if !dir.join(&cap[1]).exists() {
                problems.push(format!("{}: {} does not exist", rel(page), &cap[1]));
            }
        }
    }

    problems.extend(chapter_links(root, &pages)?);
    problems.extend(appendix_problems(root)?);
    problems.extend(architecture_problems(root)?);
    problems.extend(skeleton_problems(root)?);
    problems.extend(figure_problems(root, &pages)?);

    // Anchors in the chapters' code.
    for file in files_under(&root.join("chapters"))? {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        let canonical = file.canonicalize()?;
        let mut seen = BTreeSet::new();
        for anchor in anchors(&text) {
            let at = format!("{}:{}", rel(&file), anchor.line);
            if !seen.insert(anchor.name.clone()) {
                problems.push(format!("{at}: anchor `{}` appears twice", anchor.name));
            }
            if !anchor.closed {
                problems.push(format!("{at}: anchor `{}` has no ANCHOR_END", anchor.name));
            } else if anchor.non_blank == 0 {
                problems.push(format!("{at}: anchor `{}` is empty", anchor.name));
            }
            if !used.contains(&(canonical.clone(), anchor.name.clone())) {
                problems.push(format!(
                    "{at}: anchor `{}` is not used by the book",
                    anchor.name
                ));
            }
        }
    }
    Ok(problems)
}

/// Mentions of a written chapter ("chapter 4", "Chapter 4's") that are not a
/// link, in every page's prose: outside fenced code, inline code, links, HTML
/// tags, headings and image descriptions, and before the page's *Exercises*.
fn chapter_links(root: &Path, pages: &[PathBuf]) -> Result<Vec<String>> {
    let src = root.join("book/src");
    let mut written = std::collections::BTreeMap::new();
    for page in pages {
        let name = page.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(number) = name
            .strip_prefix("ch")
            .and_then(|rest| rest.get(..2))
            .and_then(|n| n.parse::<u32>().ok())
            && name.len() > 5
            && name.as_bytes()[4] == b'-'
        {
            // A chapter's sub-pages (`ch07-image-pull-auth.md`) extend its
            // page's name: the chapter's own page is the shortest.
            let shorter = written
                .get(&number)
                .is_none_or(|known: &String| name.len() < known.len());
            if shorter {
                written.insert(number, name.to_string());
            }
        }
    }
    let protected =
        Regex::new(r"(?s)!?\[(?:[^\[\]]|\[[^\]]*\])*\]\([^)]*\)|`[^`]*`|<[^>]+>|\{\{#[^}]*\}\}")?;
    let mention = Regex::new(r"\b[Cc]hapter ([0-9]+)\b")?;
    let mut problems = Vec::new();
    for page in pages {
        let text = fs::read_to_string(page)?;
        let own = page
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("ch"))
            .and_then(|n| n.get(..2))
            .and_then(|n| n.parse::<u32>().ok());
        let text = text.split("\n## Exercises\n").next().unwrap_or("");
        let mut prose = String::new();
        let mut fenced = false;
        for line in text.lines() {
            if line.starts_with("```") {
                fenced = !fenced;
                prose.push('\n');
            } else if fenced || line.starts_with('#') {
                prose.push('\n');
            } else {
                prose.push_str(line);
                prose.push('\n');
            }
        }
        let prose = protected.replace_all(&prose, "");
        for cap in mention.captures_iter(&prose) {
            let number: u32 = cap[1].parse()?;
            if Some(number) != own && written.contains_key(&number) {
                let line = prose[..cap.get(0).expect("a match").start()]
                    .matches('\n')
                    .count();
                problems.push(format!(
                    "{}:{}: `{}` is not a link; write [{}]({})",
                    page.strip_prefix(&src).unwrap_or(page).display(),
                    line + 1,
                    &cap[0],
                    &cap[0],
                    written[&number]
                ));
            }
        }
    }
    Ok(problems)
}

/// The rows of the markdown table under `## {heading}` in `text`, as cells.
fn table_rows(text: &str, heading: &str) -> Vec<Vec<String>> {
    let Some(start) = text.find(&format!("\n## {heading}\n")) else {
        return Vec::new();
    };
    text[start..]
        .lines()
        .skip(2)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // the header and the |---| line
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

/// The help texts recorded by `tests/help.rs`, per chapter, in story order:
/// (chapter number, `run --help`, top-level help, the program whose commands
/// they are: `minibox`, or chapter 14's second program, `minibox-runc`,
/// whose top-level help is recorded as `second-help`).
fn help_texts(root: &Path) -> Result<Vec<(u32, String, String, &'static str)>> {
    let mut texts = Vec::new();
    for chapter in harness::CHAPTERS {
        let program = "minibox";
        let snapshot = |name: &str| {
            fs::read_to_string(
                root.join(format!("tests/snapshots/{}-{name}.snap", chapter.package)),
            )
            .unwrap_or_default()
        };
        texts.push((
            chapter.number(),
            snapshot("run-help"),
            snapshot("help"),
            program,
        ));
        if let Some(second) = chapter.second_binary() {
            texts.push((
                chapter.number(),
                String::new(),
                snapshot("second-help"),
                second,
            ));
        }
    }
    Ok(texts)
}

/// What the appendix says against what the code and the help texts say.
fn appendix_problems(root: &Path) -> Result<Vec<String>> {
    let path = root.join("book/src/appendix.md");
    let Ok(text) = fs::read_to_string(&path) else {
        return Ok(vec!["book/src/appendix.md is missing".to_string()]);
    };
    let mut problems = Vec::new();
    let number = Regex::new(r"^\[(\d+)\]")?;
    let code = Regex::new(r"`([^`]+)`")?;
    let long_flag = Regex::new(r"--[a-z][a-z-]*")?;
    let helps = help_texts(root)?;
    // The module named in a row: it must exist in the chapter and mention `word`.
    let mut module_problems = Vec::new();
    let mut check_module = |row: &[String], words: &[String]| -> Option<u32> {
        let what = &row[0];
        let Some(chapter) = number
            .captures(&row[1])
            .and_then(|c| c[1].parse::<u32>().ok())
        else {
            module_problems.push(format!("appendix: {what}: no chapter link in {:?}", row[1]));
            return None;
        };
        let Some(package) = harness::CHAPTERS.iter().find(|c| c.number() == chapter) else {
            module_problems.push(format!(
                "appendix: {what}: chapter {chapter} is not written"
            ));
            return None;
        };
        let module = code
            .captures(&row[2])
            .map(|c| c[1].to_string())
            .unwrap_or_default();
        let file = root
            .join("chapters")
            .join(package.package)
            .join("src")
            .join(format!("{module}.rs"));
        let Ok(source) = fs::read_to_string(&file) else {
            module_problems.push(format!(
                "appendix: {what}: chapter {chapter} has no module `{module}` ({} does not exist)",
                file.strip_prefix(root).unwrap_or(&file).display()
            ));
            return Some(chapter);
        };
        let mentions = |word: &str| {
            Regex::new(&format!(r"\b{}\b", regex::escape(word)))
                .map(|re| re.is_match(&source))
                .unwrap_or(false)
        };
        if !words.iter().any(|w| mentions(w)) {
            module_problems.push(format!(
                "appendix: {what}: `{module}` of chapter {chapter} never mentions {}",
                words.join(" or ")
            ));
        }
        Some(chapter)
    };
    for row in table_rows(&text, "System calls") {
        let call = code
            .captures(&row[0])
            .map(|c| c[1].split('(').next().unwrap_or("").to_string())
            .unwrap_or_default();
        // The call by name, or the wrapper the last column names (`xattr::set`).
        let mut words = vec![call];
        if let Some(last) = row.last() {
            words.extend(code.captures_iter(last).map(|c| c[1].to_string()));
        }
        check_module(&row, &words);
    }
    let flags_row_count = table_rows(&text, "`docker run` flags").len();
    for row in table_rows(&text, "`docker run` flags") {
        let flags: Vec<String> = long_flag
            .find_iter(&row[0])
            .map(|m| m.as_str().to_string())
            .collect();
        let words: Vec<String> = flags
            .iter()
            .flat_map(|f| {
                let bare = f.trim_start_matches('-');
                [bare.to_string(), bare.replace('-', "_")]
            })
            .collect();
        let Some(chapter) = check_module(&row, &words) else {
            continue;
        };
        for flag in &flags {
            let listed = Regex::new(&format!(r"(?m)^\s+(-\w, )?{}\b", regex::escape(flag)))?;
            let first = helps
                .iter()
                .find(|(_, run, _, _)| listed.is_match(run))
                .map(|h| h.0);
            if first != Some(chapter) {
                problems.push(format!(
                    "appendix: {flag} is said to arrive in chapter {chapter}, but the help texts first list it in chapter {}",
                    first.map_or("none".to_string(), |n| n.to_string())
                ));
            }
        }
    }
    // minibox's commands, then chapter 14's minibox-runc's (runc's).
    let rows = table_rows(&text, "Commands")
        .into_iter()
        .chain(table_rows(&text, "`minibox-runc` commands"));
    for row in rows {
        let name = row[0].trim_matches('`');
        let (program, command) = match name.strip_prefix("minibox-runc ") {
            Some(command) => ("minibox-runc", command.to_string()),
            None => ("minibox", name.trim_start_matches("minibox ").to_string()),
        };
        let Some(chapter) = check_module(&row, std::slice::from_ref(&command)) else {
            continue;
        };
        let listed = Regex::new(&format!(r"(?m)^  {}\s", regex::escape(&command)))?;
        let first = helps
            .iter()
            .filter(|h| h.3 == program)
            .find(|(_, _, top, _)| listed.is_match(top))
            .map(|h| h.0);
        // Chapters 1 to 5 have only `run`, and no top-level help of their own.
        if first != Some(chapter) && !(command == "run" && chapter == 1) {
            problems.push(format!(
                "appendix: `{program} {command}` is said to arrive in chapter {chapter}, but the help texts first list it in chapter {}",
                first.map_or("none".to_string(), |n| n.to_string())
            ));
        }
    }
    // Every flag and command the help texts list is somewhere in the appendix.
    let command_line = Regex::new(r"(?m)^  ([a-z]+)  ")?;
    for (chapter, run, top, program) in &helps {
        for flag in long_flag.find_iter(run).map(|m| m.as_str()) {
            if flag != "--help" && !text.contains(&format!("`{flag}`")) {
                problems.push(format!(
                    "appendix: {flag} (chapter {chapter}'s run --help) is in neither table nor list"
                ));
            }
        }
        for cap in command_line.captures_iter(top) {
            if &cap[1] != "help" && !text.contains(&format!("`{program} {}`", &cap[1])) {
                problems.push(format!(
                    "appendix: `{program} {}` (chapter {chapter}'s help) is not in a Commands table",
                    &cap[1]
                ));
            }
        }
    }
    problems.extend(module_problems);
    if flags_row_count == 0 {
        problems.push("appendix: the `docker run` flags table is empty".to_string());
    }
    problems.sort();
    problems.dedup();
    Ok(problems)
}

/// The parts of a chapter's page that are easy to lose in an edit: the *By
/// hand first* session, and *How it's tested* folded away from learners.
fn skeleton_problems(root: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for chapter in harness::CHAPTERS {
        let page = format!("book/src/{}.md", chapter.package);
        let Ok(text) = fs::read_to_string(root.join(&page)) else {
            problems.push(format!("{page} is missing"));
            continue;
        };
        let by_hand = format!("{{{{#include generated/{}/by-hand.txt}}}}", chapter.package);
        match text.split_once("\n## By hand first\n") {
            Some((_, rest)) if rest.split("\n## ").next().unwrap_or("").contains(&by_hand) => {}
            _ => problems.push(format!(
                "{page}: no *By hand first* section including {by_hand}"
            )),
        }
        let folded = text
            .split_once("\n## How it's tested\n")
            .is_some_and(|(_, rest)| rest.trim_start().starts_with("<details>"));
        if !folded {
            problems.push(format!(
                "{page}: *How it's tested* must be folded in a <details> block (it is for contributors)"
            ));
        }
    }
    Ok(problems)
}

/// ARCHITECTURE.md's *Where each concept lives* against the chapters' sources:
/// every module it names exists (`cgroup` as `cgroup/mod.rs`, and `v1` in
/// `cgroup (v1, v2)` as `cgroup/v1.rs`), and every chapter has a row.
fn architecture_problems(root: &Path) -> Result<Vec<String>> {
    let Ok(text) = fs::read_to_string(root.join("ARCHITECTURE.md")) else {
        return Ok(vec!["ARCHITECTURE.md is missing".to_string()]);
    };
    let module = Regex::new(r"`([a-z_0-9]+)`(?: \(([^)]*)\))?")?;
    let inner = Regex::new(r"`([a-z_0-9]+)`")?;
    let mut problems = Vec::new();
    let rows = table_rows(&text, "Where each concept lives");
    for chapter in harness::CHAPTERS {
        let Some(row) = rows
            .iter()
            .find(|r| r[0].parse::<u32>().ok() == Some(chapter.number()))
        else {
            problems.push(format!(
                "ARCHITECTURE.md: no row for chapter {} in *Where each concept lives*",
                chapter.number()
            ));
            continue;
        };
        let src = root.join("chapters").join(chapter.package).join("src");
        let exists = |path: &str| {
            src.join(format!("{path}.rs")).is_file() || src.join(path).join("mod.rs").is_file()
        };
        for cap in module.captures_iter(&row[1]) {
            let name = &cap[1];
            if !exists(name) {
                problems.push(format!(
                    "ARCHITECTURE.md: chapter {} has no module `{name}`",
                    chapter.number()
                ));
            }
            for sub in cap.get(2).map(|m| m.as_str()).into_iter().flat_map(|s| {
                inner
                    .captures_iter(s)
                    .map(|c| c[1].to_string())
                    .collect::<Vec<_>>()
            }) {
                if !exists(&format!("{name}/{sub}")) {
                    problems.push(format!(
                        "ARCHITECTURE.md: chapter {} has no module `{name}::{sub}`",
                        chapter.number()
                    ));
                }
            }
        }
    }
    Ok(problems)
}

/// Figures shown on more than one page, and labels too small to read.
fn figure_problems(root: &Path, pages: &[PathBuf]) -> Result<Vec<String>> {
    // Alt texts may hold balanced brackets (`Cmd ["world"]`).
    let image = Regex::new(r"!\[(?:[^\[\]]|\[[^\]]*\])*\]\((images/[^)\s]+\.svg)\)")?;
    let mut shown: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for page in pages {
        let text = fs::read_to_string(page)?;
        for cap in image.captures_iter(&text) {
            let name = page
                .file_name()
                .expect("a page")
                .to_string_lossy()
                .to_string();
            shown.entry(cap[1].to_string()).or_default().push(name);
        }
    }
    let mut problems = Vec::new();
    for (figure, on) in &shown {
        if on.len() > 1 {
            problems.push(format!(
                "{figure} is shown on {} pages ({}): show it once and link to it",
                on.len(),
                on.join(", ")
            ));
        }
    }
    let images = root.join("book/src/images");
    let figures = if images.is_dir() {
        files_under(&images)?
    } else {
        Vec::new()
    };
    for file in figures {
        if file.extension().is_some_and(|e| e == "svg") {
            let text = fs::read_to_string(&file)?;
            let name = file
                .strip_prefix(root)
                .unwrap_or(&file)
                .display()
                .to_string();
            problems.extend(
                figures::label_problems(&text)
                    .into_iter()
                    .map(|p| format!("{name}: {p}")),
            );
        }
    }
    Ok(problems)
}

/// The lines of anchor `name` in `text`, without nested anchor markers.
fn region(text: &str, name: &str) -> String {
    let start = Regex::new(&format!(r"ANCHOR:\s*{}\b", regex::escape(name))).expect("valid regex");
    let end =
        Regex::new(&format!(r"ANCHOR_END:\s*{}\b", regex::escape(name))).expect("valid regex");
    let mut inside = false;
    let mut lines = Vec::new();
    for line in text.lines() {
        if end.is_match(line) {
            inside = false;
        } else if start.is_match(line) {
            inside = true;
        } else if inside && !line.contains("ANCHOR") {
            lines.push(line);
        }
    }
    lines.join("\n")
}

/// The anchors of a file, in order, with whether each is closed and how many
/// non-blank lines it holds (nested anchor markers do not count).
fn anchors(text: &str) -> Vec<Anchor> {
    let start = Regex::new(r"ANCHOR:\s*([\w-]+)").expect("valid regex");
    let end = Regex::new(r"ANCHOR_END:\s*([\w-]+)").expect("valid regex");
    let mut found: Vec<Anchor> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(cap) = end.captures(line) {
            if let Some(pos) = open.iter().position(|&a| found[a].name == cap[1]) {
                found[open.remove(pos)].closed = true;
            }
        } else if let Some(cap) = start.captures(line) {
            open.push(found.len());
            found.push(Anchor {
                name: cap[1].to_string(),
                line: i + 1,
                closed: false,
                non_blank: 0,
            });
        } else if !line.trim().is_empty() {
            for &a in &open {
                found[a].non_blank += 1;
            }
        }
    }
    found
}

/// Every file below `dir`, recursively, sorted; skips `target` directories.
pub fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    stack.push(path);
                }
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_are_found_closed_and_counted() {
        let text =
            "// ANCHOR: a\nx\n// ANCHOR: b\ny\n// ANCHOR_END: b\n// ANCHOR_END: a\n// ANCHOR: c\n";
        let found = anchors(text);
        assert_eq!(found.len(), 3);
        assert!(found[0].closed && found[0].non_blank == 2);
        assert!(found[1].closed && found[1].non_blank == 1);
        assert!(!found[2].closed);
    }

    #[test]
    fn a_broken_book_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("book/src")).unwrap();
        fs::create_dir_all(root.join("chapters/ch99/src")).unwrap();
        fs::write(
            root.join("chapters/ch99/src/lib.rs"),
            "// ANCHOR: used\nfn f() {}\n// ANCHOR_END: used\n// ANCHOR: unused\nfn g() {}\n// ANCHOR_END: unused\n",
        )
        .unwrap();
        fs::write(
            root.join("book/src/SUMMARY.md"),
            "- [One](one.md)\n- [Gone](gone.md)\n",
        )
        .unwrap();
        fs::write(
            root.join("book/src/one.md"),
            "{{#include ../../chapters/ch99/src/lib.rs:used}}\n{{#include ../../chapters/ch99/src/lib.rs:missing}}\n{{#include ../../chapters/ch99/src/lib.rs:1:3}}\n{{#include nope.rs}}\n![x](images/x.svg)\n",
        )
        .unwrap();
        fs::write(root.join("book/src/orphan.md"), "# not listed\n").unwrap();
        let found = problems(root).unwrap().join("\n");
        for expected in [
            "SUMMARY.md lists gone.md",
            "orphan.md is not listed",
            "anchor `missing` not found",
            "uses line numbers",
            "include nope.rs does not exist",
            "images/x.svg does not exist",
            "anchor `unused` is not used by the book",
        ] {
            assert!(
                found.contains(expected),
                "missing {expected:?} in:\n{found}"
            );
        }
        assert!(!found.contains("`used` is not used"), "{found}");
    }

    #[test]
    fn unlinked_chapters_and_repeated_figures_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("book/src/images")).unwrap();
        fs::create_dir_all(root.join("chapters")).unwrap();
        fs::write(
            root.join("book/src/SUMMARY.md"),
            "- [One](ch01-one.md)\n- [Two](ch02-two.md)\n",
        )
        .unwrap();
        let svg = r#"<svg viewBox="0 0 750 100" width="750"><text font-size="16">ok</text></svg>"#;
        fs::write(root.join("book/src/images/f.svg"), svg).unwrap();
        fs::write(
            root.join("book/src/ch01-one.md"),
            "# 1. One\n\nAs chapter 2 shows, and [chapter 2](ch02-two.md) too.\n\n```\nchapter 2 in code\n```\n\n![f](images/f.svg)\n\n## Exercises\n\nchapter 2 here is left alone.\n",
        )
        .unwrap();
        fs::write(
            root.join("book/src/ch02-two.md"),
            "# 2. Two\n\nChapter 2 is this page; chapter 9 is not written.\n\n![f](images/f.svg)\n",
        )
        .unwrap();
        let found = problems(root).unwrap();
        let unlinked: Vec<_> = found
            .iter()
            .filter(|p| p.contains("is not a link"))
            .collect();
        assert_eq!(unlinked.len(), 1, "{found:#?}");
        assert!(
            unlinked[0].starts_with("ch01-one.md:3: `chapter 2`"),
            "{found:#?}"
        );
        assert!(
            found
                .iter()
                .any(|p| p.contains("images/f.svg is shown on 2 pages")),
            "{found:#?}"
        );
    }
}
