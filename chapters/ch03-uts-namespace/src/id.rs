//! Container IDs. Docker names every container with 32 random bytes written as 64
//! hex digits, and shows the first 12 (`docker ps`), which is also the default
//! hostname inside. 12 hex digits are 48 bits: collisions are not a worry on one
//! machine.

use std::fs::File;
use std::io::Read;

use anyhow::{Context, Result};

/// How many hex digits Docker shows of an ID.
pub const SHORT_LEN: usize = 12;

// ANCHOR: new_id
/// A new random container ID: 64 lowercase hex digits. Like Docker, draw again
/// when the short form is all decimal digits (about 1 in 280): a hostname, or an
/// ID typed on a command line, that looks like a number confuses tools.
pub fn new_id() -> Result<String> {
    let mut urandom = File::open("/dev/urandom").context("opening /dev/urandom")?;
    loop {
        let mut bytes = [0u8; 32];
        urandom
            .read_exact(&mut bytes)
            .context("reading /dev/urandom for a container ID")?;
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        if !short(&id).chars().all(|c| c.is_ascii_digit()) {
            return Ok(id);
        }
    }
}
// ANCHOR_END: new_id

/// The short form of an ID, as `docker ps` shows it.
pub fn short(id: &str) -> &str {
    &id[..SHORT_LEN.min(id.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_digits_and_differ() {
        let (a, b) = (new_id().unwrap(), new_id().unwrap());
        assert_eq!(a.len(), 64);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
        assert_eq!(short(&a), &a[..12]);
        for _ in 0..2000 {
            let id = new_id().unwrap();
            assert!(!short(&id).chars().all(|c| c.is_ascii_digit()), "{id}");
        }
    }
}
