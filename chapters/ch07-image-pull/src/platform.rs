//! Choosing one image from a multi-platform index: this machine's os,
//! architecture and variant, or the one `--platform os/arch[/variant]` asks for.

use anyhow::{Result, bail};

use crate::oci::{Descriptor, Platform};

/// The platform to pull: the one `--platform` names, or this machine's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedPlatform {
    /// The platform.
    pub platform: Platform,
    /// Whether the user named it (`--platform`): then an image in the store
    /// for another platform does not do; without it, a single-platform image
    /// for another platform is pulled with Docker's warning.
    pub named: bool,
}

/// `--platform`, or this machine's.
pub fn wanted(text: Option<&str>) -> Result<WantedPlatform> {
    Ok(match text {
        Some(text) => WantedPlatform {
            platform: parse(text)?,
            named: true,
        },
        None => WantedPlatform {
            platform: host(),
            named: false,
        },
    })
}

/// This machine's platform, in OCI's names.
pub fn host() -> Platform {
    let arm = || {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        arm_variant(&cpuinfo).unwrap_or("v7")
    };
    let (architecture, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "aarch64" => ("arm64", Some("v8")),
        "arm" => ("arm", Some(arm())),
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

/// A 32-bit ARM CPU's variant, from `/proc/cpuinfo`'s `CPU architecture`
/// line, as containerd reads it: a Raspberry Pi Zero is `v6`, a Pi 2 `v7`. An
/// ARMv6 CPU that the kernel reports as 7 says so in its model name.
pub fn arm_variant(cpuinfo: &str) -> Option<&'static str> {
    let field = |name: &str| {
        cpuinfo.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_lowercase())
        })
    };
    let architecture = field("CPU architecture")?;
    let model = field("model name").unwrap_or_default();
    Some(match architecture.as_str() {
        "7" if model.starts_with("armv6-compatible") => "v6",
        "8" | "aarch64" => "v8",
        "7" | "7m" => "v7",
        "6" | "6tej" => "v6",
        "5" | "5t" | "5te" | "5tej" => "v5",
        _ => return None,
    })
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
/// How well an image for `offered` fits where `wanted` is asked for: `None`
/// when it cannot run there, else a rank, 0 for a perfect fit. The os and
/// architecture must be equal. A variant left out on either side matches (arm64
/// images are v8 whether they say so or not). A 32-bit ARM CPU also runs the
/// older variants' images, down to v5, as containerd allows: v7 takes v6 (rank
/// 1), then v5 (rank 2).
pub fn rank(wanted: &Platform, offered: &Platform) -> Option<u32> {
    let default_variant = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
        ("arm64", None) => Some("v8".to_string()),
        _ => p.variant.clone(),
    };
    if wanted.os != offered.os || wanted.architecture != offered.architecture {
        return None;
    }
    match (default_variant(wanted), default_variant(offered)) {
        (Some(a), Some(b)) if a == b => Some(0),
        (Some(a), Some(b)) if wanted.architecture == "arm" => {
            let version = |v: &str| v.strip_prefix('v')?.parse::<u32>().ok();
            let (a, b) = (version(&a)?, version(&b)?);
            (5 <= b && b < a).then(|| a - b)
        }
        (Some(_), Some(_)) => None,
        _ => Some(0),
    }
}

/// Whether an image for `offered` can run where `wanted` is asked for.
pub fn matches(wanted: &Platform, offered: &Platform) -> bool {
    rank(wanted, offered).is_some()
}

/// The index entry for `wanted` (the best fit, the first of equals), or
/// Docker's error when there is none.
pub fn choose<'a>(entries: &'a [Descriptor], wanted: &Platform) -> Result<&'a Descriptor> {
    entries
        .iter()
        .filter_map(|entry| Some((rank(wanted, entry.platform.as_ref()?)?, entry)))
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, entry)| entry)
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
        assert!(matches(&p("linux/arm/v7"), &p("linux/arm/v6")));
        assert!(matches(&p("linux/arm/v7"), &p("linux/arm/v5")));
        assert!(!matches(&p("linux/arm/v6"), &p("linux/arm/v7")));
        assert!(!matches(&p("linux/arm/v7"), &p("linux/arm/v4")));
        assert!(matches(&p("linux/arm"), &p("linux/arm/v6")));
        assert!(!matches(&p("linux/amd64"), &p("linux/arm64")));
        assert!(!matches(&p("linux/amd64"), &p("windows/amd64")));
        assert!(matches(&host(), &host()));
    }

    #[test]
    fn arm_variants_come_from_the_cpu_and_older_ones_fit() {
        let pi2 =
            "processor\t: 0\nmodel name\t: ARMv7 Processor rev 5 (v7l)\nCPU architecture: 7\n";
        let pi_zero = "model name\t: ARMv6-compatible processor rev 7 (v6l)\nCPU architecture: 7\n";
        let pi4_32 = "model name\t: ARMv7 Processor rev 3 (v7l)\nCPU architecture: 8\n";
        assert_eq!(arm_variant(pi2), Some("v7"));
        assert_eq!(arm_variant(pi_zero), Some("v6"));
        assert_eq!(arm_variant(pi4_32), Some("v8"));
        assert_eq!(arm_variant("processor: 0\n"), None);
        let entry = |platform: &str| Descriptor {
            platform: Some(p(platform)),
            ..serde_json::from_str(r#"{"mediaType":"m","digest":"sha256:0","size":1}"#).unwrap()
        };
        let index = [
            entry("linux/arm/v5"),
            entry("linux/arm/v6"),
            entry("linux/arm64"),
        ];
        let chosen = choose(&index, &p("linux/arm/v7")).unwrap();
        assert_eq!(
            chosen.platform.as_ref().unwrap().variant.as_deref(),
            Some("v6"),
            "the closest"
        );
        assert!(choose(&index[..1], &p("linux/arm/v7")).is_ok(), "v5 on v7");
        assert!(choose(&index[2..], &p("linux/arm/v7")).is_err());
    }
}
