//! `cargo xtask book`: builds the mdBook in `book/` into `target/book` with
//! mdbook-driver (mdBook's library), after checking what mdBook itself does not.

use std::path::Path;
use std::process::Command;

use anyhow::{Result, anyhow};

use crate::check_book;

/// Checks, then builds the book; optionally opens it in a browser.
pub fn build(root: &Path, open: bool) -> Result<()> {
    check_book::check(root)?;
    let book_dir = root.join("book");
    let book = mdbook_driver::MDBook::load(&book_dir)
        .map_err(|e| anyhow!("loading the book in {}: {e:#}", book_dir.display()))?;
    book.build()
        .map_err(|e| anyhow!("building the book: {e:#}"))?;
    let index = root.join("target/book/index.html");
    eprintln!("xtask: the book is at {}", index.display());
    if open {
        let opened = Command::new("xdg-open").arg(&index).status();
        if !opened.is_ok_and(|s| s.success()) {
            eprintln!("xtask: could not start a browser; open the file above yourself");
        }
    }
    Ok(())
}
