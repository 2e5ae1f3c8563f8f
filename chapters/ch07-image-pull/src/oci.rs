//! The image format, written out by hand: the OCI image spec's descriptor,
//! manifest, index and config, and the Docker media types that mean the same.
//!
//! An image is a tree of content-addressed JSON documents and blobs:
//!
//! ```text
//! index (optional: one entry per platform)
//!   └─ manifest (one platform)
//!        ├─ config  (architecture, os, rootfs.diff_ids, the startup command...)
//!        └─ layers  (tar archives, usually gzipped, bottom first)
//! ```
//!
//! Each arrow is a [`Descriptor`]: a media type, a digest and a size. The
//! registry serves every document and blob by its digest, and a digest is a
//! promise: we check it.
//!
//! The types serialize as well as parse: chapter 11 (`build`, `push`) writes
//! them.

use serde::{Deserialize, Serialize};

// ANCHOR: media_types
/// An OCI image manifest: one image for one platform.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// An OCI image index: a list of manifests, one per platform.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker's manifest, schema 2: the same shape as OCI's.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker's manifest list: the same shape as OCI's index.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker's schema 1 manifests (signed and not), long deprecated.
pub const DOCKER_SCHEMA1: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

/// The `Accept` header of a manifest request. A registry answers with the
/// best type it has that we list, and some answer 404 for a type we don't:
/// distribution 2.8 will not serve an OCI manifest to a client that does not
/// name it, and turns a Docker schema 2 manifest into schema 1 for a client
/// that names nothing.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";
// ANCHOR_END: media_types

/// A pointer to content: what it is, its digest, its size.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// What the content is (one of the media types above, or a layer type).
    #[serde(default)]
    pub media_type: String,
    /// `sha256:…` of the content's bytes.
    pub digest: String,
    /// The content's length in bytes; a registry that sends more is lying.
    pub size: u64,
    /// In an index: which platform the manifest is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// The platform an image runs on, as an index entry or a config names it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Platform {
    /// `linux`, `windows`, ... (`unknown` for attestations).
    #[serde(default)]
    pub os: String,
    /// `amd64`, `arm64`, `arm`, ...
    #[serde(default)]
    pub architecture: String,
    /// `v7` for 32-bit ARM, `v8` for arm64, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An image manifest: a config and the layers, bottom first.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// 2 for OCI and Docker schema 2.
    pub schema_version: u32,
    /// The manifest's own media type ([`OCI_MANIFEST`] or
    /// [`DOCKER_MANIFEST`]); optional in OCI, where the `Content-Type` says it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The image config.
    pub config: Descriptor,
    /// The layers, bottom first.
    pub layers: Vec<Descriptor>,
}

/// An index (or Docker manifest list): one manifest per platform.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// 2.
    #[serde(default = "schema_version_2")]
    pub schema_version: u32,
    /// The index's own media type ([`OCI_INDEX`] or [`DOCKER_MANIFEST_LIST`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The platform manifests.
    pub manifests: Vec<Descriptor>,
}

fn schema_version_2() -> u32 {
    2
}

/// An image config: the platform, the layers' identities and the execution
/// parameters. This chapter uses the first two; chapter 8 reads `config`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ImageConfig {
    /// The CPU architecture the image's programs are built for.
    #[serde(default)]
    pub architecture: String,
    /// The operating system.
    #[serde(default)]
    pub os: String,
    /// The architecture's variant, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// When the image was built (RFC 3339), shown by `minibox images`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The execution parameters (`Entrypoint`, `Cmd`, `Env`, `WorkingDir`,
    /// `User`...), kept as the document has them: chapter 8 reads them.
    /// Missing and `null` both mean the image says nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
    /// The layers' digests once *uncompressed*. (Missing reads as none, which
    /// a pull refuses: the manifest's layers must match them.)
    #[serde(default)]
    pub rootfs: RootFs,
}

/// `rootfs` in an image config.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct RootFs {
    /// `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The sha256 of each layer's uncompressed tar, bottom first: what a layer
    /// *is*, whatever compression carried it.
    pub diff_ids: Vec<String>,
}

/// What a manifest request returned.
#[derive(Debug, Clone)]
pub enum Fetched {
    /// An image for one platform.
    Manifest(Manifest),
    /// A list of platforms to choose from.
    Index(Index),
}

// ANCHOR: classify
/// Reads a manifest document, deciding what it is from its media type (the
/// `Content-Type` header, else the document's own `mediaType`, else its shape).
pub fn parse_manifest(content_type: &str, bytes: &[u8]) -> anyhow::Result<Fetched> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Peek {
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        schema_version: Option<u32>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
    }
    let peek: Peek = serde_json::from_slice(bytes)
        .map_err(|e| anyhow::anyhow!("the registry sent a manifest that is not JSON: {e}"))?;
    let header = content_type.split(';').next().unwrap_or("").trim();
    let media_type = match (header, &peek.media_type) {
        (h, _) if h.starts_with("application/vnd.") => h.to_string(),
        (_, Some(own)) => own.clone(),
        _ if peek.manifests.is_some() => OCI_INDEX.to_string(),
        _ => OCI_MANIFEST.to_string(),
    };
    if DOCKER_SCHEMA1.contains(&media_type.as_str()) || peek.schema_version == Some(1) {
        anyhow::bail!(
            "the registry only has a Docker schema 1 manifest for this image, a format Docker itself no longer pulls: push it again with a current tool"
        );
    }
    let bad = |e: serde_json::Error| anyhow::anyhow!("malformed {media_type}: {e}");
    match media_type.as_str() {
        OCI_INDEX | DOCKER_MANIFEST_LIST => {
            Ok(Fetched::Index(serde_json::from_slice(bytes).map_err(bad)?))
        }
        OCI_MANIFEST | DOCKER_MANIFEST => Ok(Fetched::Manifest(
            serde_json::from_slice(bytes).map_err(bad)?,
        )),
        other => anyhow::bail!("unsupported manifest type {other:?}"),
    }
}
// ANCHOR_END: classify

/// Reads an image config document.
pub fn parse_config(bytes: &[u8]) -> anyhow::Result<ImageConfig> {
    serde_json::from_slice(bytes).map_err(|e| anyhow::anyhow!("the image config is malformed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_told_apart_by_type_or_shape() {
        let index = br#"{"schemaVersion":2,"manifests":[{"mediaType":"x","digest":"sha256:00","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]}"#;
        let Fetched::Index(i) = parse_manifest("", index).unwrap() else {
            panic!("an index")
        };
        assert_eq!(
            i.manifests[0].platform.as_ref().unwrap().variant.as_deref(),
            Some("v8")
        );
        let manifest =
            br#"{"schemaVersion":2,"config":{"digest":"sha256:00","size":1},"layers":[]}"#;
        assert!(matches!(
            parse_manifest(DOCKER_MANIFEST, manifest).unwrap(),
            Fetched::Manifest(_)
        ));
        let schema1 = br#"{"schemaVersion":1,"fsLayers":[]}"#;
        let error = parse_manifest(DOCKER_SCHEMA1[1], schema1)
            .unwrap_err()
            .to_string();
        assert!(error.contains("schema 1"), "{error}");
        assert!(parse_manifest("application/json", b"not json").is_err());
    }

    #[test]
    fn documents_serialize_back_to_what_was_read() {
        let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:00","size":1},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:11","size":2}]}"#;
        let Fetched::Manifest(parsed) = parse_manifest("", manifest).unwrap() else {
            panic!("a manifest")
        };
        assert_eq!(serde_json::to_vec(&parsed).unwrap(), manifest);
        let config = br#"{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:22"]}}"#;
        let parsed = parse_config(config).unwrap();
        assert_eq!(serde_json::to_vec(&parsed).unwrap(), config);
    }
}
