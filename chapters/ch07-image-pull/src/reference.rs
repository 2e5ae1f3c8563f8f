//! Image references: what `busybox`, `localhost:5000/team/app:v1` or
//! `busybox@sha256:…` mean, parsed and normalized the way Docker does
//! (the grammar of distribution's `reference` package).
//!
//! A reference names a **registry** (the domain), a **repository** in it (the
//! path), and either a **tag** (a movable name) or a **digest** (the content
//! itself). Everything left out has a default:
//!
//! | typed | registry | repository | tag |
//! |---|---|---|---|
//! | `busybox` | docker.io | library/busybox | latest |
//! | `busybox:1.36` | docker.io | library/busybox | 1.36 |
//! | `team/app` | docker.io | team/app | latest |
//! | `localhost:5000/team/app:v1` | localhost:5000 | team/app | v1 |
//! | `busybox@sha256:…` | docker.io | library/busybox | (none: the digest) |
//!
//! The first path component is a registry only if it looks like a host name:
//! it has a `.` or a `:`, or is `localhost` (or has capital letters, which a
//! repository name may not). Otherwise it is part of a Docker Hub repository.

use std::fmt;

use thiserror::Error;

use crate::digest;

/// Docker Hub's name in references.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that serves Docker Hub's registry API (docker.io itself does not).
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The tag a reference gets when it names none.
pub const DEFAULT_TAG: &str = "latest";

/// A parsed, normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// The registry: `docker.io`, `localhost:5000`, `ghcr.io`...
    pub registry: String,
    /// The repository within it: `library/busybox`, `team/app`.
    pub repository: String,
    /// The tag, when one was given or defaulted (absent with a digest alone).
    pub tag: Option<String>,
    /// The manifest's digest, when one was given (`@sha256:…`).
    pub digest: Option<String>,
}

/// Why a reference is not one. The messages are Docker's.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ReferenceError {
    /// Anything the grammar does not allow.
    #[error("invalid reference format")]
    Format,
    /// Repository names are lowercase.
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    /// A bare 64-hex-digit name would read as an image ID.
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    LooksLikeId(String),
    /// Registry + repository longer than 255 characters.
    #[error("invalid reference format: repository name must not be more than 255 characters")]
    TooLong,
    /// A digest that is not `sha256:` and 64 lowercase hex digits.
    #[error("invalid reference format: unsupported digest {0:?} (minibox knows sha256)")]
    Digest(String),
}

// ANCHOR: parse
impl Reference {
    /// Parses what a user typed, filling in Docker's defaults.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        // 1. The digest, if any, is everything after the `@`.
        let (rest, digest) = match input.split_once('@') {
            Some((_, "")) => return Err(ReferenceError::Format),
            Some((rest, digest)) => (rest, Some(parse_digest(digest)?)),
            None => (input, None),
        };
        // 2. A tag follows the last `:`, unless that `:` is a registry's port
        //    (then a `/` comes after it).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(tag) = tag
            && !valid_tag(tag)
        {
            return Err(ReferenceError::Format);
        }
        // 3. The registry, if the first component looks like a host.
        let (registry, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (first, path.to_string())
            }
            _ => (DOCKER_HUB, name.to_string()),
        };
        if !valid_domain(registry) {
            return Err(ReferenceError::Format);
        }
        // Docker Hub's official images live under `library/`.
        let registry = match registry {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB,
            other => other,
        };
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase(repository));
        }
        if !repository.split('/').all(valid_component) {
            return Err(ReferenceError::Format);
        }
        if name.len() == 64 && name.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ReferenceError::LooksLikeId(name.to_string()));
        }
        if registry.len() + 1 + repository.len() > 255 {
            return Err(ReferenceError::TooLong);
        }
        // 4. No tag and no digest: `latest`.
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG.to_string()),
        };
        Ok(Reference {
            registry: registry.to_string(),
            repository,
            tag,
            digest,
        })
    }
    // ANCHOR_END: parse

    /// What to ask the registry's manifest endpoint for: the digest if there is
    /// one (it pins the content), otherwise the tag.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .expect("a reference has a tag or a digest")
    }

    /// The host whose `/v2/` API serves this registry.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The repository as Docker shows it: `busybox`, `team/app`,
    /// `localhost:5000/team/app`.
    pub fn familiar_name(&self) -> String {
        if self.registry == DOCKER_HUB {
            self.repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository)
                .to_string()
        } else {
            format!("{}/{}", self.registry, self.repository)
        }
    }

    /// The whole reference, fully spelled out: `docker.io/library/busybox:latest`.
    /// This is the key the store's index uses.
    pub fn canonical(&self) -> String {
        self.with_name(&format!("{}/{}", self.registry, self.repository))
    }

    fn with_name(&self, name: &str) -> String {
        let mut text = name.to_string();
        if let Some(tag) = &self.tag {
            text.push(':');
            text.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            text.push('@');
            text.push_str(digest);
        }
        text
    }
}

/// The way Docker shows a reference: `busybox:latest`, `team/app:v1`.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.with_name(&self.familiar_name()))
    }
}

/// A reference's digest, checked as every digest is ([`digest::hex_part`]).
fn parse_digest(digest: &str) -> Result<String, ReferenceError> {
    match digest::hex_part(digest) {
        Ok(_) => Ok(digest.to_string()),
        Err(_) => Err(ReferenceError::Digest(digest.to_string())),
    }
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
fn valid_tag(tag: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    tag.len() <= 128
        && tag.starts_with(word)
        && tag.chars().all(|c| word(c) || c == '.' || c == '-')
}

/// A path component: lowercase alphanumerics, separated by one `.`, one or two
/// `_`, or any number of `-`.
fn valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = separator == "."
            || separator == "_"
            || separator == "__"
            || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// A host name or `[IPv6]`, with an optional `:port`.
fn valid_domain(domain: &str) -> bool {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, port)) => {
                if ip.is_empty() || !ip.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
                    return false;
                }
                ("ipv6", port.strip_prefix(':').map(Some).unwrap_or(None))
            }
            None => return false,
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()))
    {
        return false;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parts(input: &str) -> (String, String, Option<String>, Option<String>) {
        let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        (r.registry, r.repository, r.tag, r.digest)
    }

    fn s(text: &str) -> String {
        text.to_string()
    }

    #[test]
    fn docker_hub_defaults() {
        for input in [
            "busybox",
            "busybox:latest",
            "library/busybox",
            "docker.io/library/busybox:latest",
            "index.docker.io/library/busybox",
            "docker.io/busybox",
        ] {
            assert_eq!(
                parts(input),
                (
                    s("docker.io"),
                    s("library/busybox"),
                    Some(s("latest")),
                    None
                ),
                "{input}"
            );
        }
        assert_eq!(parts("busybox:1.36").2, Some(s("1.36")));
        assert_eq!(parts("team/app").1, "team/app");
        assert_eq!(parts("team/sub/app:v2").1, "team/sub/app");
    }

    #[test]
    fn registries_with_hosts_and_ports() {
        assert_eq!(
            parts("localhost:5000/team/app:v1"),
            (s("localhost:5000"), s("team/app"), Some(s("v1")), None)
        );
        assert_eq!(parts("localhost/app").0, "localhost");
        assert_eq!(parts("127.0.0.1:5000/app").0, "127.0.0.1:5000");
        assert_eq!(
            parts("127.0.0.1:5000/app").1,
            "app",
            "no library/ off Docker Hub"
        );
        assert_eq!(parts("ghcr.io/owner/image").0, "ghcr.io");
        assert_eq!(parts("[::1]:5000/app:v1").0, "[::1]:5000");
        // A port, not a tag: the `:` is followed by a `/`.
        assert_eq!(parts("localhost:5000/app").2, Some(s("latest")));
    }

    #[test]
    fn digests_pin_the_content() {
        let (_, repo, tag, digest) = parts(&format!("busybox@{DIGEST}"));
        assert_eq!(
            (repo.as_str(), tag, digest.as_deref()),
            ("library/busybox", None, Some(DIGEST))
        );
        let r = Reference::parse(&format!("busybox:1.36@{DIGEST}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("1.36"));
        assert_eq!(
            r.manifest_reference(),
            DIGEST,
            "the digest wins over the tag"
        );
        assert_eq!(r.to_string(), format!("busybox:1.36@{DIGEST}"));
    }

    #[test]
    fn display_and_canonical_forms() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.to_string(), "busybox:latest");
        assert_eq!(r.canonical(), "docker.io/library/busybox:latest");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let r = Reference::parse("localhost:5000/team/app:v1").unwrap();
        assert_eq!(r.to_string(), "localhost:5000/team/app:v1");
        assert_eq!(r.api_host(), "localhost:5000");
        assert_eq!(
            Reference::parse("team/app").unwrap().to_string(),
            "team/app:latest"
        );
    }

    #[test]
    fn invalid_references_get_dockers_messages() {
        for input in [
            "",
            ":",
            "busybox:",
            "busybox::1",
            "-busybox",
            "busy box",
            "busybox:tag with space",
            "busybox/",
            "/busybox",
            "a//b",
            "busybox:-tag",
            "localhost:port/app",
            "a..b",
            "a_-b",
            "busybox@",
            "example.com:/app",
        ] {
            assert_eq!(
                Reference::parse(input),
                Err(ReferenceError::Format),
                "{input:?}"
            );
        }
        assert_eq!(
            Reference::parse("Busybox").unwrap_err().to_string(),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        assert!(matches!(
            Reference::parse("busybox@sha256:abc"),
            Err(ReferenceError::Digest(_))
        ));
        assert!(matches!(
            Reference::parse("busybox@md5:0123"),
            Err(ReferenceError::Digest(_))
        ));
        let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(
            Reference::parse(id),
            Err(ReferenceError::LooksLikeId(id.into()))
        );
        let long = format!("{}/app", "a".repeat(300));
        assert_eq!(Reference::parse(&long), Err(ReferenceError::TooLong));
        assert!(Reference::parse(&format!("busybox:{}", "t".repeat(129))).is_err());
    }

    #[test]
    fn separators_in_path_components() {
        for ok in ["a.b", "a_b", "a__b", "a-b", "a---b", "a1", "1a"] {
            assert!(valid_component(ok), "{ok}");
        }
        for bad in ["a.", ".a", "a___b", "a.-b", "A", ""] {
            assert!(!valid_component(bad), "{bad}");
        }
    }
}
