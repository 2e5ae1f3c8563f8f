//! What this chapter's test files share: the chapter's binary, named once.

/// The chapter's binary, as cargo built it for the tests.
pub const MINIBOX: &str = env!("CARGO_BIN_EXE_ch03-uts-namespace");
