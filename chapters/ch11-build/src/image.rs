//! The image a build stage is making: a config (JSON, the base's with this
//! build's changes) and a stack of layers, each known by its blob's
//! descriptor (what a registry stores) and its `diff_id` (what the config
//! names). Committing it writes the config and a manifest into chapter 7's
//! store, as a pull would have left them.

use anyhow::{Context, Result, anyhow};
use ch07_image_pull::digest;
use ch07_image_pull::oci::{self, Descriptor, Manifest};
use ch07_image_pull::platform;
use ch07_image_pull::store::{ImageRecord, Store};
use ch08_command_override::config::{self, RunConfig};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The media type of the layers a build writes: a gzip-compressed tar.
pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// One layer of an image: its blob and what it is once uncompressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// The compressed blob, as a manifest lists it.
    pub blob: LayerBlob,
    /// The sha256 of the uncompressed tar.
    pub diff_id: String,
}

/// A manifest's layer entry (chapter 7's [`Descriptor`], without a platform).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerBlob {
    /// `application/vnd.oci.image.layer.v1.tar+gzip`, or Docker's name for it.
    pub media_type: String,
    /// The blob's digest.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The image a stage builds.
#[derive(Debug, Clone)]
pub struct Image {
    /// The whole config document.
    pub config: Value,
    /// Its layers, bottom first.
    pub layers: Vec<Layer>,
}

impl Image {
    /// `FROM scratch`: no layers, and a config that says only the platform.
    pub fn scratch() -> Image {
        let host = platform::host();
        let mut config = json!({
            "architecture": host.architecture,
            "os": host.os,
            "config": {},
            "rootfs": { "type": "layers", "diff_ids": [] },
            "history": [],
        });
        if let Some(variant) = host.variant {
            config["variant"] = json!(variant);
        }
        Image {
            config,
            layers: Vec::new(),
        }
    }

    /// The image `record` names in the store, as the base of a stage: its
    /// config as it is, and its layers with their blobs' descriptors from its
    /// manifest.
    pub fn from_store(store: &Store, record: &ImageRecord) -> Result<Image> {
        let read = |digest: &str, what: &str| {
            store.read_blob(digest)?.ok_or_else(|| {
                anyhow!("the {what} {digest} is missing from the store (pull the image again)")
            })
        };
        let mut config: Value = serde_json::from_slice(&read(&record.config, "image config")?)
            .context("parsing the base image's config")?;
        let layers = if record.diff_ids.is_empty() {
            Vec::new()
        } else {
            let manifest: Manifest = serde_json::from_slice(&read(&record.manifest, "manifest")?)
                .context("parsing the base image's manifest")?;
            if manifest.layers.len() != record.diff_ids.len() {
                return Err(anyhow!(
                    "the base image's manifest lists {} layers, its config {}",
                    manifest.layers.len(),
                    record.diff_ids.len()
                ));
            }
            manifest
                .layers
                .iter()
                .zip(&record.diff_ids)
                .map(|(d, diff_id)| Layer {
                    blob: LayerBlob {
                        media_type: d.media_type.clone(),
                        digest: d.digest.clone(),
                        size: d.size,
                    },
                    diff_id: diff_id.clone(),
                })
                .collect()
        };
        if !config["config"].is_object() {
            config["config"] = json!({});
        }
        if !config["history"].is_array() {
            config["history"] = json!([]);
        }
        Ok(Image { config, layers })
    }

    /// The execution parameters (`config.config`), to change.
    pub fn settings(&mut self) -> &mut Map<String, Value> {
        if !self.config["config"].is_object() {
            self.config["config"] = json!({});
        }
        self.config["config"]
            .as_object_mut()
            .expect("made an object above")
    }

    /// The execution parameters as chapter 8 reads them.
    pub fn run_config(&self) -> Result<RunConfig> {
        config::parse(&serde_json::to_vec(&self.config)?)
    }

    /// The `KEY=VALUE` environment the image sets.
    pub fn env(&self) -> Vec<String> {
        self.run_config().map(|c| c.env).unwrap_or_default()
    }

    /// Adds a layer on top, with its history entry.
    pub fn add_layer(&mut self, layer: Layer, created_by: &str, created: &str) {
        self.layers.push(layer);
        self.history(created_by, created, false);
    }

    /// Adds a history entry: the instruction that made the step, and whether
    /// it made no layer (`empty_layer`), as Docker records them.
    pub fn history(&mut self, created_by: &str, created: &str, empty_layer: bool) {
        let mut entry = json!({ "created": created, "created_by": created_by });
        if empty_layer {
            entry["empty_layer"] = json!(true);
        }
        if !self.config["history"].is_array() {
            self.config["history"] = json!([]);
        }
        self.config["history"]
            .as_array_mut()
            .expect("made an array above")
            .push(entry);
    }

    // ANCHOR: commit
    /// Writes the config and a manifest into the store, and returns the
    /// record a tag points at. The config's `diff_ids` are the layers', its
    /// `created` the given time; the manifest is OCI's.
    pub fn commit(&mut self, store: &Store, created: &str) -> Result<ImageRecord> {
        let diff_ids: Vec<&String> = self.layers.iter().map(|l| &l.diff_id).collect();
        self.config["rootfs"] = json!({ "type": "layers", "diff_ids": diff_ids });
        self.config["created"] = json!(created);
        let config = serde_json::to_vec(&self.config).context("encoding the image config")?;
        let config_digest = digest::sha256(&config);
        store.write_blob(&config_digest, &config)?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(oci::OCI_MANIFEST.to_string()),
            config: Descriptor {
                media_type: "application/vnd.oci.image.config.v1+json".to_string(),
                digest: config_digest.clone(),
                size: config.len() as u64,
                platform: None,
            },
            layers: self.layers.iter().map(|l| l.blob.descriptor()).collect(),
        };
        let manifest = serde_json::to_vec(&manifest).context("encoding the manifest")?;
        let manifest_digest = digest::sha256(&manifest);
        store.write_blob(&manifest_digest, &manifest)?;
        Ok(ImageRecord {
            digest: manifest_digest.clone(),
            manifest: manifest_digest,
            config: config_digest,
            diff_ids: self.layers.iter().map(|l| l.diff_id.clone()).collect(),
            platform: self.platform(),
        })
    }
    // ANCHOR_END: commit

    /// `os/arch[/variant]`, as chapter 7's records name a platform.
    fn platform(&self) -> String {
        let text = |key: &str| self.config[key].as_str().unwrap_or_default().to_string();
        let mut platform = format!("{}/{}", text("os"), text("architecture"));
        if let Some(variant) = self.config["variant"].as_str() {
            platform.push('/');
            platform.push_str(variant);
        }
        platform
    }
}

impl LayerBlob {
    /// As a manifest lists it.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.size,
            platform: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_names_the_layers_in_the_config_and_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut image = Image::scratch();
        image.settings().insert("Cmd".into(), json!(["/app"]));
        let layer = Layer {
            blob: LayerBlob {
                media_type: LAYER_GZIP.into(),
                digest: format!("sha256:{}", "a".repeat(64)),
                size: 42,
            },
            diff_id: format!("sha256:{}", "b".repeat(64)),
        };
        image.add_layer(layer.clone(), "COPY app /app", "2026-01-01T00:00:00Z");
        let record = image.commit(&store, "2026-01-01T00:00:00Z").unwrap();
        assert_eq!(record.diff_ids, vec![layer.diff_id.clone()]);
        let config: Value =
            serde_json::from_slice(&store.read_blob(&record.config).unwrap().unwrap()).unwrap();
        assert_eq!(config["rootfs"]["diff_ids"][0], json!(layer.diff_id));
        assert_eq!(config["history"][0]["created_by"], json!("COPY app /app"));
        assert_eq!(config["config"]["Cmd"], json!(["/app"]));
        let manifest: Manifest =
            serde_json::from_slice(&store.read_blob(&record.manifest).unwrap().unwrap()).unwrap();
        assert_eq!(manifest.layers[0].digest, layer.blob.digest);
        assert_eq!(manifest.config.digest, record.config);
        // The same image committed again is the same image, byte for byte.
        let again = image.commit(&store, "2026-01-01T00:00:00Z").unwrap();
        assert_eq!(again, record);
        // And read back as a base, it is the same stack.
        let base = Image::from_store(&store, &record).unwrap();
        assert_eq!(base.layers, vec![layer]);
    }
}
