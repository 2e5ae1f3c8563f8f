//! The narration: lines on stderr that say what minibox is doing, step by step,
//! so a learner sees fork, exec and wait happen. `--quiet` turns it off.
//!
//! Narration starts with `[minibox]`; errors start with `minibox:`. Host PIDs
//! always appear as `PID n`, so tests can redact them and nothing else.

use std::fmt::Display;
use std::io::Write;

/// Prints narration lines unless told to keep quiet.
#[derive(Debug, Clone, Copy)]
pub struct Narrator {
    quiet: bool,
}

impl Narrator {
    /// A narrator that speaks unless `quiet` is set.
    pub fn new(quiet: bool) -> Self {
        Narrator { quiet }
    }

    /// Prints one narration line. Writes to stderr, which is unbuffered, so lines
    /// from the parent and the child appear in the order they were written. A
    /// closed stderr (say, `2>&1 | head -1`) must not stop minibox, so write errors
    /// are ignored (`eprintln!` would panic).
    pub fn say(&self, line: impl Display) {
        if !self.quiet {
            let _ = writeln!(std::io::stderr(), "[minibox] {line}");
        }
    }
}
