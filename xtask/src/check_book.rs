//! `cargo xtask check-book`: what mdBook does not check. mdBook renders a broken
//! `{{#include}}` as an error message inside the page and carries on; this fails
//! instead. It checks that:
//!
//! - SUMMARY.md lists every page, and every page it lists exists;
//! - every include and image resolves, and included anchors exist and are not empty;
//! - includes use anchors, never line numbers (line numbers drift silently);
//! - every anchor in the chapters' code is unique in its file, closed, non-empty,
//!   and used by the book (an unused anchor is a lesson that lost its page).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use regex::Regex;

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
            used.insert((target, selector.to_string()));
        }
        for cap in asset.captures_iter(&text) {
            if !dir.join(&cap[1]).exists() {
                problems.push(format!("{}: {} does not exist", rel(page), &cap[1]));
            }
        }
    }

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
}
