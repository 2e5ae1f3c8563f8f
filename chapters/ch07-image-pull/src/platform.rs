//! Choosing one image from a multi-platform index: this machine's os,
//! architecture and variant, or the one `--platform os/arch[/variant]` asks for.

use anyhow::{Result, bail};

use crate::oci::{Descriptor, Platform};

/// This machine's platform, in OCI's names.
pub fn host() -> Platform {
    let (architecture, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "aarch64" => ("arm64", Some("v8")),
        "arm" => ("arm", Some("v7")),
        "x86" => ("386", None),
        "powerpc64" => ("ppc64le", None),
        "riscv64" => ("riscv64", None),
        "s390x" => ("s390x", None),
        other => (other, None),
    };
    Platform {
        os: "linux".into(),
        architecture: architecture.into(),
        variant: variant.map(str::to_string),
    }
}

/// Parses `--platform`: `linux/arm64`, `linux/arm/v7`, or just `arm64`.
pub fn parse(text: &str) -> Result<Platform> {
    let parts: Vec<&str> = text.split('/').collect();
    let (os, architecture, variant) = match parts.as_slice() {
        [arch] => ("linux", *arch, None),
        [os, arch] => (*os, *arch, None),
        [os, arch, variant] => (*os, *arch, Some(*variant)),
        _ => bail!("invalid platform {text:?}: expected os/arch[/variant]"),
    };
    if [os, architecture].iter().any(|p| p.is_empty()) || variant == Some("") {
        bail!("invalid platform {text:?}: expected os/arch[/variant]");
    }
    let architecture = match architecture {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    Ok(Platform {
        os: os.to_lowercase(),
        architecture: architecture.to_string(),
        variant: variant.map(str::to_string),
    })
}

/// `linux/arm64/v8`, as Docker prints a platform.
pub fn display(platform: &Platform) -> String {
    match &platform.variant {
        Some(v) => format!("{}/{}/{v}", platform.os, platform.architecture),
        None => format!("{}/{}", platform.os, platform.architecture),
    }
}

// ANCHOR: matches
/// Whether an index entry for `offered` can run where `wanted` is asked for.
/// The os and architecture must be equal. A variant left out on either side
/// matches (arm64 images are v8 whether they say so or not); two variants given
/// must be equal.
pub fn matches(wanted: &Platform, offered: &Platform) -> bool {
    let default_variant = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
        ("arm64", None) => Some("v8".to_string()),
        _ => p.variant.clone(),
    };
    wanted.os == offered.os
        && wanted.architecture == offered.architecture
        && match (default_variant(wanted), default_variant(offered)) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
}

/// The index entry for `wanted`, or Docker's error when there is none.
pub fn choose<'a>(entries: &'a [Descriptor], wanted: &Platform) -> Result<&'a Descriptor> {
    entries
        .iter()
        .find(|entry| entry.platform.as_ref().is_some_and(|p| matches(wanted, p)))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no matching manifest for {} in the manifest list entries",
                display(wanted)
            )
        })
}
// ANCHOR_END: matches

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Platform {
        parse(text).unwrap()
    }

    #[test]
    fn platforms_parse_and_match() {
        assert_eq!(p("linux/arm64").architecture, "arm64");
        assert_eq!(p("arm64").os, "linux");
        assert_eq!(p("linux/arm/v7").variant.as_deref(), Some("v7"));
        assert_eq!(p("linux/x86_64").architecture, "amd64");
        for bad in ["", "linux/", "a/b/c/d", "linux/arm/"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(matches(&p("linux/arm64"), &p("linux/arm64/v8")));
        assert!(matches(&p("linux/arm64/v8"), &p("linux/arm64")));
        assert!(!matches(&p("linux/arm/v7"), &p("linux/arm/v6")));
        assert!(matches(&p("linux/arm"), &p("linux/arm/v6")));
        assert!(!matches(&p("linux/amd64"), &p("linux/arm64")));
        assert!(!matches(&p("linux/amd64"), &p("windows/amd64")));
        assert!(matches(&host(), &host()));
    }
}
