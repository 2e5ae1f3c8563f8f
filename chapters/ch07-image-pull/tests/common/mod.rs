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

/// The value of the extended attribute `name` of `path` (not following a
/// symlink), or `None` when it has none. Read with lgetxattr(2) directly, not
/// through the chapter's code, so a test does not trust what it checks.
pub fn xattr(path: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let name = std::ffi::CString::new(name).unwrap();
    let mut value = [0u8; 256];
    // SAFETY: NUL-terminated strings; the kernel writes at most value.len() bytes.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    (n >= 0).then(|| value[..n as usize].to_vec())
}
