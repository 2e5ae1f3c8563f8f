//! The image config's runtime defaults: what an image says about the process
//! a container of it starts.
//!
//! Chapter 7 read the config blob for its `rootfs.diff_ids`. The same document
//! has a `config` object, written by `docker build` from the Dockerfile's
//! `ENTRYPOINT`, `CMD`, `ENV`, `WORKDIR`, `USER`, `STOPSIGNAL`, `EXPOSE` and
//! `LABEL`:
//!
//! ```json
//! {
//!   "architecture": "amd64", "os": "linux",
//!   "config": {
//!     "Entrypoint": ["docker-entrypoint.sh"], "Cmd": ["redis-server"],
//!     "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
//!     "WorkingDir": "/data",
//!     "ExposedPorts": {"6379/tcp": {}}, "StopSignal": "SIGTERM",
//!     "Labels": {"maintainer": "..."}
//!   },
//!   "rootfs": {"type": "layers", "diff_ids": ["sha256:..."]}
//! }
//! ```
//!
//! Every field may be missing or `null` (Docker writes `"Entrypoint": null`):
//! both mean "the image says nothing".

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow};
use ch07_image_pull::oci;
use ch07_image_pull::store::{ImageRecord, Store};
use serde::{Deserialize, Deserializer};

// ANCHOR: run_config
/// The `config` object of an image config: the image's defaults for the
/// container's process. The OCI image spec calls it the "execution
/// parameters"; Docker's names are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    /// The program (and its first arguments) every container of the image
    /// starts with; arguments on the command line are appended to it.
    #[serde(default, deserialize_with = "null_as_default")]
    pub entrypoint: Vec<String>,
    /// The default arguments (or, without an entrypoint, the default command):
    /// replaced by the command line's, when it has some.
    #[serde(default, deserialize_with = "null_as_default")]
    pub cmd: Vec<String>,
    /// `KEY=VALUE` entries the process starts with.
    #[serde(default, deserialize_with = "null_as_default")]
    pub env: Vec<String>,
    /// The process's working directory (absolute); empty means `/`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub working_dir: String,
    /// `USER[:GROUP]` (names or numbers) the process runs as; empty means root.
    #[serde(default, deserialize_with = "null_as_default")]
    pub user: String,
    /// The signal `docker stop` sends first (chapter 10 uses it).
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// `PORT/PROTO` keys (`"6379/tcp": {}`): documentation of what the image
    /// listens on; publishing is chapter 9's.
    #[serde(default, deserialize_with = "null_as_default")]
    pub exposed_ports: BTreeMap<String, serde_json::Value>,
    /// Free-form metadata.
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
}
// ANCHOR_END: run_config

/// `null` reads as the type's default, like a missing field.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Reads the runtime defaults from an image config document: its `config`
/// object, which chapter 7's [`oci::ImageConfig`] keeps as it is.
pub fn parse(bytes: &[u8]) -> Result<RunConfig> {
    let document = oci::parse_config(bytes)?;
    match document.config {
        None => Ok(RunConfig::default()),
        Some(object) => Ok(Option::<RunConfig>::deserialize(object)
            .context("reading the image config's execution parameters")?
            .unwrap_or_default()),
    }
}

// ANCHOR: load
/// The runtime defaults of a pulled image, from its config blob in the store
/// (chapter 7's pull keeps it there, named by its digest: the image ID).
pub fn load(store: &Store, image: &ImageRecord) -> Result<RunConfig> {
    let bytes = store.read_blob(&image.config)?.ok_or_else(|| {
        anyhow!(
            "the image config {} is missing from the store (pull the image again)",
            image.config
        )
    })?;
    parse(&bytes)
}
// ANCHOR_END: load

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_read_and_null_means_unset() {
        let full = br#"{"architecture":"amd64","config":{
            "Entrypoint":["echo","hello"],"Cmd":["world"],"Env":["A=1"],
            "WorkingDir":"/srv","User":"app:staff","StopSignal":"SIGQUIT",
            "ExposedPorts":{"80/tcp":{}},"Labels":{"k":"v"}},
            "rootfs":{"type":"layers","diff_ids":[]}}"#;
        let config = parse(full).unwrap();
        assert_eq!(config.entrypoint, ["echo", "hello"]);
        assert_eq!(config.cmd, ["world"]);
        assert_eq!(config.env, ["A=1"]);
        assert_eq!(config.working_dir, "/srv");
        assert_eq!(config.user, "app:staff");
        assert_eq!(config.stop_signal.as_deref(), Some("SIGQUIT"));
        assert!(config.exposed_ports.contains_key("80/tcp"));
        assert_eq!(config.labels["k"], "v");

        let nulls = br#"{"config":{"Entrypoint":null,"Cmd":null,"Env":null,"Labels":null}}"#;
        assert_eq!(parse(nulls).unwrap(), RunConfig::default());
        assert_eq!(parse(br#"{"config":null}"#).unwrap(), RunConfig::default());
        assert_eq!(parse(br#"{"os":"linux"}"#).unwrap(), RunConfig::default());
        assert!(parse(b"not json").is_err());
    }
}
