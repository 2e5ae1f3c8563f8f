//! Fixtures: what the tests and demos need prepared before they run. The
//! recipes live in `harness::fixtures` and `harness::images`, shared with the
//! tests (which build what they need themselves when it is missing).

use std::path::Path;

use anyhow::{Result, anyhow};

/// Installs what the fixtures are built from, then prepares every fixture
/// (idempotent: up-to-date ones are kept).
pub fn prepare(_root: &Path) -> Result<()> {
    crate::prereqs::ensure()?;
    let rootfs = harness::fixtures::busybox_rootfs();
    eprintln!(
        "xtask: fixtures: busybox root filesystem at {}",
        rootfs.display()
    );
    // Built once here, so the tests that push it find it in target/fixtures
    // instead of each gzipping it at the same time.
    let redis = harness::images::redis().map_err(|e| anyhow!(e))?;
    eprintln!(
        "xtask: fixtures: redis image, {} layers, {} bytes unpacked",
        redis.layers.len(),
        redis.layers.iter().map(|l| l.unpacked_size()).sum::<u64>()
    );
    Ok(())
}
