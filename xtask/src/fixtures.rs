//! Fixtures: what the tests and demos need prepared before they run. The
//! recipes live in `harness::fixtures`, shared with the tests (which build what
//! they need themselves when it is missing).

use std::path::Path;

use anyhow::Result;

/// Installs what the fixtures are built from, then prepares every fixture
/// (idempotent: up-to-date ones are kept).
pub fn prepare(_root: &Path) -> Result<()> {
    crate::prereqs::ensure()?;
    let rootfs = harness::fixtures::busybox_rootfs();
    eprintln!(
        "xtask: fixtures: busybox root filesystem at {}",
        rootfs.display()
    );
    Ok(())
}
