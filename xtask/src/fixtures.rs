//! Fixtures: what the tests and demos need prepared before they run. Chapter 1
//! runs host commands and needs none; later chapters add a busybox root
//! filesystem, images and a registry here.

use std::path::Path;

use anyhow::Result;

/// Prepares every fixture (idempotent: existing ones are kept).
pub fn prepare(_root: &Path) -> Result<()> {
    eprintln!("xtask: fixtures: chapter 1 runs host commands and needs none");
    Ok(())
}
