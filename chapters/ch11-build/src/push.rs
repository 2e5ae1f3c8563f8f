//! `minibox push`: chapter 7's pull, run backwards. A registry is told
//! about an image bottom up: first every blob the manifest names (its
//! layers, then its config), then the manifest itself, which the registry
//! accepts only once every blob it names is there.
//!
//! For each blob:
//!
//! 1. **`HEAD /v2/NAME/blobs/DIGEST`**: a 200 means the registry has it
//!    already (`Layer already exists`): nothing to send.
//! 2. **Cross-repository mount**: when another image of ours came from
//!    another repository of the same registry with this very blob (a base
//!    image's layer, typically), `POST /v2/NAME/blobs/uploads/?mount=DIGEST&from=REPO`
//!    asks the registry to link it: a 201 means done (`Mounted from REPO`),
//!    without a byte sent. A 202 means it will not (no permission to read
//!    `REPO`, say), and opens an upload instead.
//! 3. **Upload**: `POST /v2/NAME/blobs/uploads/` opens an upload session and
//!    answers with its `Location`; a small blob goes in one `PUT
//!    LOCATION?digest=DIGEST` (monolithic); a large one in `PATCH`es of
//!    [`CHUNK`] bytes, each with its `Content-Range`, each answered with the
//!    next `Location`, and a final empty `PUT ...?digest=`. The registry
//!    checks the digest: a blob that is not what it says is refused.
//!
//! Then `PUT /v2/NAME/manifests/TAG` with the manifest's bytes, exactly as
//! stored (its digest is over those bytes), and its media type.
//!
//! Tokens are asked for with the scope `repository:NAME:pull,push` (and
//! `repository:REPO:pull` for a mount's source), with the credentials
//! `minibox login` kept.

use std::fs::File;
use std::io::Read;

use anyhow::{Context, Result, anyhow, bail};
use ch01_fork_exec::narrate;
use ch07_image_pull::digest;
use ch07_image_pull::oci::{Descriptor, Manifest, OCI_MANIFEST};
use ch07_image_pull::reference::Reference;
use ch07_image_pull::registry::{self, Client, Endpoint};
use ch07_image_pull::store::{ImageRecord, Store};
use ureq::http::Response;

/// Blobs larger than this go in `PATCH`es of this size.
pub const CHUNK: u64 = 8 << 20;

/// What was pushed: the manifest's digest and size.
pub struct Pushed {
    /// `sha256:...` of the manifest.
    pub digest: String,
    /// Its size in bytes.
    pub size: usize,
}

/// One push: the client, the registry, the repository and its scope.
struct Target<'a> {
    client: &'a Client,
    endpoint: Endpoint,
    reference: Reference,
    scope: String,
    quiet: bool,
}

// ANCHOR: push
/// Pushes the image `name` names in `store`; prints Docker's lines (unless
/// `quiet`) and returns the manifest's digest and size.
pub fn push(store: &Store, name: &str, quiet: bool) -> Result<Pushed> {
    let reference = Reference::parse(name)?;
    let record = store.image(&reference.canonical())?.ok_or_else(|| {
        anyhow!(
            "An image does not exist locally with the tag: {}",
            reference.familiar_name()
        )
    })?;
    let manifest_bytes = read_blob(store, &record.manifest, "manifest")?;
    let manifest: Manifest =
        serde_json::from_slice(&manifest_bytes).context("parsing the image's manifest")?;
    let client = Client::new(None);
    let target = Target {
        client: &client,
        endpoint: registry::endpoint(&reference),
        scope: format!("repository:{}:pull,push", reference.repository),
        reference,
        quiet,
    };
    if !quiet {
        narrate::print(format_args!(
            "The push refers to repository [{}]",
            target.name()
        ))?;
    }
    for layer in manifest.layers.iter().rev() {
        let how = target.blob(store, layer)?;
        if !quiet {
            narrate::print(format_args!("{}: {how}", short(&layer.digest)))?;
        }
    }
    target.blob(store, &manifest.config)?;
    target.manifest(&manifest_bytes, &manifest, &record)
}
// ANCHOR_END: push

/// The blob `digest` from the store, which must have it.
fn read_blob(store: &Store, digest: &str, what: &str) -> Result<Vec<u8>> {
    store
        .read_blob(digest)?
        .ok_or_else(|| anyhow!("the {what} {digest} is missing from the store"))
}

/// The 12 hex digits Docker shows of a layer's digest.
fn short(digest: &str) -> &str {
    digest::short(digest)
}

impl Target<'_> {
    /// `registry/repository` as Docker shows it.
    fn name(&self) -> String {
        format!("{}/{}", self.reference.registry, self.reference.repository)
    }

    /// A request to the registry, for our repository.
    fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Option<&[u8]>,
    ) -> Result<Response<ureq::Body>> {
        let scope = &self.scope;
        self.client
            .send_scoped(method, &self.endpoint, scope, path, headers, body, &|_| {})
    }

    // ANCHOR: blob
    /// Makes sure the registry has the blob `blob`; says how.
    fn blob(&self, store: &Store, blob: &Descriptor) -> Result<String> {
        let repository = &self.reference.repository;
        let path = format!("/v2/{repository}/blobs/{}", blob.digest);
        let head = self.send("HEAD", &path, &[], None)?;
        match head.status().as_u16() {
            200 => return Ok("Layer already exists".into()),
            404 => {}
            status => return Err(refused(head, status, "checking for a blob")),
        }
        let local = store.blob_path(&blob.digest)?;
        if let Some(from) = self.mount_source(store, &blob.digest)? {
            let path = format!(
                "/v2/{repository}/blobs/uploads/?mount={}&from={from}",
                blob.digest
            );
            let scope = format!("{} repository:{from}:pull", self.scope);
            let response = self.client.send_scoped(
                "POST",
                &self.endpoint,
                &scope,
                &path,
                &[("Content-Length", "0".into())],
                Some(&[]),
                &|_| {},
            )?;
            if response.status().as_u16() == 201 {
                return Ok(format!("Mounted from {from}"));
            }
        }
        if !local.is_file() {
            bail!(
                "the blob {} is not in the store (pulled by a minibox older than chapter 11, which kept only unpacked layers) and the registry does not have it: remove the image and pull it again, then push",
                blob.digest
            );
        }
        self.upload(&local, blob)?;
        Ok("Pushed".into())
    }
    // ANCHOR_END: blob

    /// A repository of the same registry that has `digest`, by what our
    /// store knows: another image of ours, from there (or through it, as a
    /// mirror), whose manifest names it.
    fn mount_source(&self, store: &Store, digest: &str) -> Result<Option<String>> {
        for (name, record) in store.images()? {
            let Ok(other) = Reference::parse(&name) else {
                continue;
            };
            // The same server: by its address, so that an image pulled
            // through a mirror counts as the mirror's.
            if registry::endpoint(&other).host != self.endpoint.host
                || other.repository == self.reference.repository
            {
                continue;
            }
            let Some(bytes) = store.read_blob(&record.manifest)? else {
                continue;
            };
            let Ok(manifest) = serde_json::from_slice::<Manifest>(&bytes) else {
                continue;
            };
            if manifest.layers.iter().any(|l| l.digest == digest) {
                return Ok(Some(other.repository));
            }
        }
        Ok(None)
    }

    // ANCHOR: upload
    /// `POST` an upload session, then the blob in one `PUT` or in `PATCH`es.
    fn upload(&self, local: &std::path::Path, blob: &Descriptor) -> Result<()> {
        let repository = &self.reference.repository;
        let started = self.send(
            "POST",
            &format!("/v2/{repository}/blobs/uploads/"),
            &[("Content-Length", "0".into())],
            Some(&[]),
        )?;
        let mut location = location(started, 202, "starting an upload")?;
        let mut file = File::open(local).with_context(|| format!("opening {}", local.display()))?;
        let mut sent = 0;
        let mut last = Vec::new();
        if blob.size > CHUNK {
            while sent < blob.size {
                let mut chunk = Vec::new();
                (&mut file).take(CHUNK).read_to_end(&mut chunk)?;
                let range = format!("{sent}-{}", sent + chunk.len() as u64 - 1);
                let headers = [
                    ("Content-Type", "application/octet-stream".to_string()),
                    ("Content-Range", range),
                ];
                let response = self.send("PATCH", &location, &headers, Some(&chunk))?;
                location = self::location(response, 202, "sending a chunk")?;
                sent += chunk.len() as u64;
            }
        } else {
            file.read_to_end(&mut last)?;
        }
        let separator = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{separator}digest={}", blob.digest);
        let headers = [("Content-Type", "application/octet-stream".to_string())];
        let done = self.send("PUT", &url, &headers, Some(&last))?;
        match done.status().as_u16() {
            201 => Ok(()),
            status => Err(refused(done, status, "finishing an upload")),
        }
    }
    // ANCHOR_END: upload

    /// `PUT` the manifest under the tag; prints Docker's last line.
    fn manifest(&self, bytes: &[u8], manifest: &Manifest, record: &ImageRecord) -> Result<Pushed> {
        let tag = self.reference.manifest_reference().to_string();
        let media_type = manifest
            .media_type
            .clone()
            .unwrap_or_else(|| OCI_MANIFEST.to_string());
        let path = format!("/v2/{}/manifests/{tag}", self.reference.repository);
        let response = self.send("PUT", &path, &[("Content-Type", media_type)], Some(bytes))?;
        match response.status().as_u16() {
            201 => {}
            status => return Err(refused(response, status, "putting the manifest")),
        }
        let digest = record.manifest.clone();
        if !self.quiet {
            narrate::print(format_args!(
                "{tag}: digest: {digest} size: {}",
                bytes.len()
            ))?;
        } else {
            narrate::print(format_args!("{}@{digest}", self.name()))?;
        }
        Ok(Pushed {
            digest,
            size: bytes.len(),
        })
    }
}

/// The `Location` of an answer with status `want`, or why not.
fn location(response: Response<ureq::Body>, want: u16, doing: &str) -> Result<String> {
    let status = response.status().as_u16();
    if status != want {
        return Err(refused(response, status, doing));
    }
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .ok_or_else(|| anyhow!("{doing}: the registry gave no Location"))
}

/// The registry's refusal as one line: Docker's `denied: ...` for 401 and
/// 403, else the status and the registry's own message.
fn refused(mut response: Response<ureq::Body>, status: u16, doing: &str) -> anyhow::Error {
    let body = registry::read_limited(response.body_mut(), 64 << 10).unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["errors"][0]["message"].as_str().map(String::from));
    match status {
        401 | 403 => anyhow!(
            "denied: {}",
            message.unwrap_or_else(|| "requested access to the resource is denied".into())
        ),
        _ => anyhow!(
            "{doing}: the registry answered {status}{}",
            message.map(|m| format!(": {m}")).unwrap_or_default()
        ),
    }
}
