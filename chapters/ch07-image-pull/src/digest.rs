//! Content addressing: a blob's name is the sha256 of its bytes,
//! `sha256:` and 64 hex digits. Everything a registry sends is checked against
//! the digest we asked for, *while it streams*, so a layer is never held whole
//! in memory and never trusted before its last byte has been hashed.

use std::io::{self, Read};

use anyhow::{Result, bail};
use sha2::{Digest as _, Sha256};

/// `sha256:` and the lowercase hex of `bytes`' hash.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// Lowercase hex. (sha2 0.11's hashes no longer format themselves with `{:x}`.)
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(DIGITS[usize::from(b >> 4)] as char);
        text.push(DIGITS[usize::from(b & 15)] as char);
    }
    text
}

/// The 64 hex digits of a `sha256:` digest, checked, for use as a file name:
/// a digest from a manifest is untrusted input, and `sha256:../../etc` must
/// never become a path.
pub fn hex_part(digest: &str) -> Result<&str> {
    match digest.split_once(':') {
        Some(("sha256", hex))
            if hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(hex)
        }
        Some(("sha256", _)) => bail!("malformed digest {digest:?}"),
        _ => bail!("unsupported digest {digest:?}: minibox verifies sha256 digests only"),
    }
}

/// The first 12 hex digits, as Docker shows layer and image IDs.
pub fn short(digest: &str) -> &str {
    let hex = digest.split_once(':').map_or(digest, |(_, hex)| hex);
    &hex[..12.min(hex.len())]
}

// ANCHOR: hashing_reader
/// A reader that hashes and counts everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    /// Bytes read so far.
    pub count: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The digest of everything read.
    pub fn digest(&self) -> String {
        format!("sha256:{}", hex(&self.hasher.clone().finalize()))
    }

    /// The wrapped reader, to read on without hashing (what follows a gzip
    /// stream in a blob, say).
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}
// ANCHOR_END: hashing_reader

/// Fails unless `actual` is `expected`, naming what was checked.
pub fn verify(what: &str, expected: &str, actual: &str) -> Result<()> {
    if expected != actual {
        bail!("{what}: digest mismatch: expected {expected}, got {actual}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_and_their_hex() {
        assert_eq!(
            sha256(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut reader = HashingReader::new(&b"hello"[..]);
        io::copy(&mut reader, &mut io::sink()).unwrap();
        assert_eq!(reader.digest(), sha256(b"hello"));
        assert_eq!(reader.count, 5);
        assert_eq!(short(&sha256(b"")), "e3b0c44298fc");
    }

    #[test]
    fn only_well_formed_sha256_digests_become_file_names() {
        assert!(hex_part(&sha256(b"x")).is_ok());
        for bad in [
            "sha256:../../../etc/passwd",
            "sha256:ABCDEF",
            "sha512:00",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert!(hex_part(bad).is_err(), "{bad}");
        }
    }
}
