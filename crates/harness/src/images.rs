//! Fixture images, built in Rust from what the host has, in the OCI image format
//! (image-spec v1): each layer a gzipped tar, a config naming the layers'
//! uncompressed digests (`diff_ids`), and a manifest naming the config and the
//! layers by their digests. [`crate::registry`] pushes them to a real registry.
//!
//! Layers are built deterministically (sorted entries, fixed times), so the same
//! fixture has the same digests on every machine.

use std::fs;
use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

/// OCI media types.
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The OCI image config's media type.
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// A gzip-compressed tar layer.
pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Content and its digest, as a registry stores it.
#[derive(Debug, Clone)]
pub struct Blob {
    /// What the bytes are.
    pub media_type: String,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// `sha256:<64 hex digits>` of the bytes.
    pub digest: String,
}

impl Blob {
    /// A blob of `bytes`, with its digest computed.
    pub fn new(media_type: &str, bytes: Vec<u8>) -> Blob {
        Blob {
            media_type: media_type.to_string(),
            digest: sha256(&bytes),
            bytes,
        }
    }

    /// The OCI descriptor that points at this blob.
    pub fn descriptor(&self) -> serde_json::Value {
        serde_json::json!({
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.bytes.len(),
        })
    }
}

/// A layer: the compressed blob, and the digest of the uncompressed tar.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The `tar+gzip` blob.
    pub blob: Blob,
    /// `sha256:` of the uncompressed tar: the config's `diff_id`.
    pub diff_id: String,
}

/// A whole image: config, layers and the manifest that ties them together.
#[derive(Debug, Clone)]
pub struct Image {
    /// The image config.
    pub config: Blob,
    /// The layers, bottom first.
    pub layers: Vec<Layer>,
    /// The manifest.
    pub manifest: Blob,
}

/// `sha256:` and the hex digest of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A layer with the contents of `dir` (paths relative to it), ownership and
/// modes as they are on disk, times set to zero.
pub fn layer_from_dir(dir: &Path) -> std::io::Result<Layer> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Deterministic);
    append_dir(&mut builder, dir, Path::new(""))?;
    let tar = builder.into_inner()?;
    let diff_id = sha256(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar)?;
    Ok(Layer {
        blob: Blob::new(LAYER_GZIP, gz.finish()?),
        diff_id,
    })
}

fn append_dir(builder: &mut tar::Builder<Vec<u8>>, root: &Path, rel: &Path) -> std::io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(root.join(rel))?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = rel.join(entry.file_name());
        builder.append_path_with_name(root.join(&path), &path)?;
        if entry.file_type()?.is_dir() {
            append_dir(builder, root, &path)?;
        }
    }
    Ok(())
}

/// An image of `layers` with an OCI config that runs `cmd`.
pub fn image(layers: Vec<Layer>, cmd: &[&str]) -> Image {
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
    let config = serde_json::json!({
        "architecture": host_architecture(),
        "os": "linux",
        "config": {
            "Cmd": cmd,
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    let config = Blob::new(CONFIG, serde_json::to_vec(&config).expect("JSON"));
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": config.descriptor(),
        "layers": layers.iter().map(|l| l.blob.descriptor()).collect::<Vec<_>>(),
    });
    let manifest = Blob::new(MANIFEST, serde_json::to_vec(&manifest).expect("JSON"));
    Image {
        config,
        layers,
        manifest,
    }
}

/// The busybox image: the busybox root filesystem fixture as one layer, running
/// `sh` by default, like Docker Hub's.
pub fn busybox() -> std::io::Result<Image> {
    let layer = layer_from_dir(&crate::fixtures::busybox_rootfs())?;
    Ok(image(vec![layer], &["sh"]))
}

/// The OCI name of this machine's architecture (`amd64`, `arm64`, ...).
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        other => other,
    }
}
