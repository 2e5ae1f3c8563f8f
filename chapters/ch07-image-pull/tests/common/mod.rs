//! What chapter 7's tests share: a store of their own, the real registry,
//! and the chapter's binary run with both.

#![allow(dead_code)] // each test file uses its own part of this

use harness::registry::Registry;

/// The chapter's binary.
pub const MINIBOX: &str = env!("CARGO_BIN_EXE_ch07-image-pull");

pub use harness::env::Env;
pub use harness::process::wait;

/// An environment of the test's own (see `harness::env`): a store, a
/// credentials directory and a cgroup parent; `mirror` serves Docker Hub
/// references.
pub fn env(test: &str, mirror: Option<&Registry>) -> Env {
    let builder = Env::builder(MINIBOX, "ch07", test).credentials();
    match mirror {
        Some(registry) => builder.mirror(registry),
        None => builder,
    }
    .build()
}

/// The `Digest:` a pull printed.
pub fn printed_digest(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .unwrap_or_else(|| panic!("no Digest line in:\n{stdout}"))
        .to_string()
}
