//! `save` and `load`: images as one tar file, in the OCI image layout, for
//! machines without a registry between them (`minibox save app | ssh host
//! minibox load`).
//!
//! ```text
//! blobs/sha256/HEX    every manifest, config and layer, named by its digest
//! index.json          the images: one manifest descriptor per name, the name
//!                     in its annotations
//! manifest.json       the same images as Docker's own format lists them
//! oci-layout          {"imageLayoutVersion":"1.0.0"}
//! ```
//!
//! `docker save` has written both `index.json` and `manifest.json` since
//! Docker 25, so that OCI tools (skopeo, umoci, containerd) and older
//! `docker load`s both read the archive; `save` does the same. `load` reads
//! either: the OCI layout (with an index of platforms, this machine's is
//! taken, as a pull takes it), or Docker's format on its own, including the
//! older one whose layers are uncompressed `ID/layer.tar` files.
//!
//! Everything an archive holds is checked as it is read, as a registry's
//! blobs are: a file named `blobs/sha256/HEX` must hash to HEX, and each
//! layer, once uncompressed, to its config's `diff_id`. Each file of the
//! archive is kept in a temporary file in the store until the whole archive
//! has been read and every layer unpacked; only then do blobs, layers and
//! names appear, each in one rename, as a pull's do. A load that fails
//! leaves the store as it was.
//!
//! SIMPLIFICATION: `save` needs every layer's *compressed* blob, and chapter
//! 7's pull keeps only the unpacked layers (Docker's classic store
//! re-creates the exact tar from tar-split metadata; containerd keeps the
//! blobs). A layer re-made from its unpacked directory would be another
//! tar, with another `diff_id`, and so another image: `save` refuses an
//! image whose blobs the store lacks, and says so. Images that `build`
//! wrote or `load` loaded have their blobs.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use ch07_image_pull::digest::{self, HashingReader};
use ch07_image_pull::oci::{self, Descriptor, Fetched, Manifest, Platform};
use ch07_image_pull::reference::Reference;
use ch07_image_pull::store::{ImageRecord, Store};
use ch07_image_pull::{extract, platform, pull};
use serde::{Deserialize, Serialize};

use crate::layer::{BlobFile, HashingWriter};

/// The annotation of an `index.json` entry that names the image's tag
/// (`latest`), as Docker writes it; other tools put a whole reference there.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation with the image's whole name
/// (`docker.io/library/busybox:latest`), as containerd and Docker write it.
pub const IMAGE_NAME: &str = "io.containerd.image.name";
/// The layout version `oci-layout` declares.
pub const LAYOUT_VERSION: &str = "1.0.0";

/// An OCI image config's media type.
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// An uncompressed layer's media type (`+gzip`, `+zstd` for compressed ones).
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// The most a JSON document of an archive may be; a layer has no limit.
const MAX_DOCUMENT: u64 = 16 << 20;

/// An entry of `index.json`: a manifest's descriptor and its annotations.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LayoutEntry {
    #[serde(flatten)]
    descriptor: Descriptor,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

/// `index.json`: an OCI index whose entries carry names.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutIndex {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    manifests: Vec<LayoutEntry>,
}

/// `oci-layout`: which version of the layout the directory follows.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OciLayout {
    image_layout_version: String,
}

impl OciLayout {
    fn current() -> OciLayout {
        OciLayout {
            image_layout_version: LAYOUT_VERSION.to_string(),
        }
    }
}

/// An entry of Docker's `manifest.json`: paths inside the archive.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// One image to save: a manifest in the store, and the names it goes by.
struct Saved {
    names: Vec<Reference>,
    manifest: Manifest,
    descriptor: Descriptor,
}

// ANCHOR: save
/// Writes the images `references` name, from `store`, to `out` as an OCI
/// image layout in a tar, with Docker's `manifest.json` beside it. Every
/// image is looked up, and every blob found, before the first byte is
/// written. Two names of one image share its entry in `manifest.json`, and
/// its blobs are in the archive once.
pub fn save(store: &Store, references: &[Reference], out: impl Write) -> Result<()> {
    let images = to_save(store, references)?;
    let images: Vec<&Saved> = images.values().collect();
    let mut blobs = BTreeSet::new();
    for image in &images {
        blobs.insert(&image.descriptor.digest);
        blobs.insert(&image.manifest.config.digest);
        blobs.extend(image.manifest.layers.iter().map(|l| &l.digest));
    }
    let documents = [
        ("index.json", serde_json::to_vec(&layout_index(&images))?),
        (
            "manifest.json",
            serde_json::to_vec(&docker_manifest(&images))?,
        ),
        ("oci-layout", serde_json::to_vec(&OciLayout::current())?),
    ];
    let writing = "writing the archive";
    let mut archive = tar::Builder::new(out);
    for dir in ["blobs/", "blobs/sha256/"] {
        append(&mut archive, dir, tar::EntryType::Directory, &[]).context(writing)?;
    }
    for blob in blobs {
        append_blob(&mut archive, store, blob)?;
    }
    for (name, bytes) in documents {
        append(&mut archive, name, tar::EntryType::Regular, &bytes).context(writing)?;
    }
    let mut out = archive.into_inner().context(writing)?;
    out.flush().context(writing)
}
// ANCHOR_END: save

/// The images to save, by manifest digest, each checked to be complete in
/// the store.
fn to_save(store: &Store, references: &[Reference]) -> Result<BTreeMap<String, Saved>> {
    let mut images: BTreeMap<String, Saved> = BTreeMap::new();
    for reference in references {
        let record = store
            .image(&reference.canonical())?
            .ok_or_else(|| anyhow!("No such image: {reference}"))?;
        if let Some(saved) = images.get_mut(&record.manifest) {
            if !saved.names.contains(reference) {
                saved.names.push(reference.clone());
            }
            continue;
        }
        let bytes = store.read_blob(&record.manifest)?.ok_or_else(|| {
            anyhow!(
                "{reference}: the store lacks its manifest {}",
                record.manifest
            )
        })?;
        let Fetched::Manifest(manifest) = oci::parse_manifest("", &bytes)? else {
            bail!("{reference}: {} is not an image manifest", record.manifest);
        };
        let blob_exists = |d: &str| store.blob_path(d).map(|p| p.is_file());
        if !blob_exists(&manifest.config.digest)? {
            bail!(
                "{reference}: the store lacks its config {}",
                manifest.config.digest
            );
        }
        for layer in &manifest.layers {
            if !blob_exists(&layer.digest)? {
                bail!(
                    "cannot save {reference}: the store has its layer {} unpacked but not the compressed blob {} its manifest names (a pull keeps unpacked layers only; images that build made or load loaded can be saved)",
                    digest::short(&layer.digest),
                    layer.digest
                );
            }
        }
        let descriptor = Descriptor {
            media_type: manifest
                .media_type
                .clone()
                .unwrap_or(oci::OCI_MANIFEST.into()),
            digest: record.manifest.clone(),
            size: bytes.len() as u64,
            platform: None,
        };
        let names = vec![reference.clone()];
        images.insert(
            record.manifest,
            Saved {
                names,
                manifest,
                descriptor,
            },
        );
    }
    Ok(images)
}

// ANCHOR: index_json
/// `index.json`: an entry per name, the name in the annotations as Docker
/// writes them: the tag in `org.opencontainers.image.ref.name` (what
/// `skopeo copy oci-archive:FILE:latest` asks for), the whole reference in
/// `io.containerd.image.name` (what `docker load` and `ctr import` tag).
fn layout_index(images: &[&Saved]) -> LayoutIndex {
    let mut manifests = Vec::new();
    for image in images {
        for name in &image.names {
            let mut annotations = BTreeMap::new();
            annotations.insert(IMAGE_NAME.to_string(), name.canonical());
            if let Some(tag) = &name.tag {
                annotations.insert(REF_NAME.to_string(), tag.clone());
            }
            manifests.push(LayoutEntry {
                descriptor: image.descriptor.clone(),
                annotations,
            });
        }
    }
    LayoutIndex {
        schema_version: 2,
        media_type: Some(oci::OCI_INDEX.to_string()),
        manifests,
    }
}
// ANCHOR_END: index_json

/// Docker's `manifest.json`: an entry per image, with its tags as Docker
/// shows them (`busybox:latest`) and its config and layers as paths.
fn docker_manifest(images: &[&Saved]) -> Vec<DockerEntry> {
    let path = |d: &str| format!("blobs/sha256/{}", digest::hex_part(d).unwrap_or_default());
    images
        .iter()
        .map(|image| DockerEntry {
            config: path(&image.manifest.config.digest),
            repo_tags: Some(
                image
                    .names
                    .iter()
                    .filter_map(|n| Some(format!("{}:{}", n.familiar_name(), n.tag.as_ref()?)))
                    .collect(),
            ),
            layers: image
                .manifest
                .layers
                .iter()
                .map(|l| path(&l.digest))
                .collect(),
        })
        .collect()
}

/// One blob from the store, checked against its digest on the way out: an
/// archive never carries bytes that the loader would refuse.
fn append_blob(archive: &mut tar::Builder<impl Write>, store: &Store, digest: &str) -> Result<()> {
    let path = store.blob_path(digest)?;
    let file = fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let size = file.metadata()?.len();
    let mut reader = HashingReader::new(file.take(size));
    let name = format!("blobs/sha256/{}", digest::hex_part(digest)?);
    let header = archive_header(&name, tar::EntryType::Regular, size)?;
    archive
        .append(&header, &mut reader)
        .with_context(|| format!("writing {name} to the archive"))?;
    if reader.count != size {
        bail!("{} shrank while it was saved", path.display());
    }
    digest::verify(
        &format!("the store's blob {}", path.display()),
        digest,
        &reader.digest(),
    )
}

/// One entry of a saved archive. Nothing about the machine or the moment
/// goes in (owner root, time 0), so the same images save to the same bytes.
fn append(
    archive: &mut tar::Builder<impl Write>,
    name: &str,
    kind: tar::EntryType,
    data: &[u8],
) -> io::Result<()> {
    let header = archive_header(name, kind, data.len() as u64)?;
    archive.append(&header, data)
}

/// The header of an entry of a saved archive (see [`append`]).
fn archive_header(name: &str, kind: tar::EntryType, size: u64) -> io::Result<tar::Header> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_path(name)?;
    header.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(size);
    header.set_cksum();
    Ok(header)
}

/// A file of the archive being loaded, kept as a temporary blob in the
/// store until the load commits.
struct Staged {
    blob: BlobFile,
    digest: String,
    size: u64,
}

/// An archive, read: its files, staged, and its links.
struct Archive {
    files: BTreeMap<PathBuf, Staged>,
    /// Symlinks and hard links, to the path they lead to. An older
    /// `docker save` wrote a layer two images share once, and the second
    /// image's `ID/layer.tar` as a symlink `../ID/layer.tar`.
    links: BTreeMap<PathBuf, PathBuf>,
}

/// JSON documents (manifests, indexes, configs), each with its digest.
type Documents = Vec<(String, Vec<u8>)>;

/// An image of the archive, checked, ready to be stored.
struct Loading {
    /// Canonical references.
    names: Vec<Reference>,
    record: ImageRecord,
    /// The manifests (an index too, for a multi-platform image) and the
    /// config.
    documents: Documents,
    /// Each layer: the archive's file, its descriptor, its diff_id.
    layers: Vec<(PathBuf, Descriptor, String)>,
}

// ANCHOR: load
/// Loads the images of the archive `input` (an OCI layout, Docker's format,
/// or both; plain or gzipped) into `store`, and returns their names as
/// Docker shows them (`busybox:latest`). Nothing is stored unless all of
/// it checks out.
pub fn load(store: &Store, input: impl Read) -> Result<Vec<String>> {
    store.clean_abandoned();
    let archive = read_archive(store, input)?;
    let docker: Option<Vec<DockerEntry>> = archive.json("manifest.json")?;
    if let Some(layout) = archive.json::<OciLayout>("oci-layout")?
        && layout.image_layout_version != LAYOUT_VERSION
    {
        let version = layout.image_layout_version;
        bail!("unsupported OCI image layout version {version:?}");
    }
    let images = match (archive.json::<LayoutIndex>("index.json")?, &docker) {
        (Some(index), _) => oci_images(&archive, index, docker.as_deref())?,
        (None, Some(entries)) => docker_images(&archive, entries)?,
        (None, None) => bail!("not an image archive: it has neither index.json nor manifest.json"),
    };
    let layers = unpack_layers(store, &archive, &images)?;
    commit(store, archive, images, layers)
}
// ANCHOR_END: load

/// Once everything has checked out: the blobs get their names, then the
/// layers, then the images. (A failure here, a full disk say, leaves blobs
/// that nothing names, which `image prune` removes, and no partial layer.)
fn commit(
    store: &Store,
    mut archive: Archive,
    images: Vec<Loading>,
    layers: Vec<PartialLayer>,
) -> Result<Vec<String>> {
    let mut blobs = || -> Result<()> {
        for image in &images {
            for (path, descriptor, _) in &image.layers {
                if let Some(staged) = archive.take(path) {
                    staged.blob.commit(store, &descriptor.digest)?;
                }
            }
            for (digest, bytes) in &image.documents {
                store.write_blob(digest, bytes)?;
            }
        }
        Ok(())
    };
    if let Err(error) = blobs() {
        remove_partials(&layers);
        return Err(error);
    }
    for layer in layers {
        store.commit_layer(&layer.dir, &layer.diff_id, layer.size)?;
    }
    let mut loaded = Vec::new();
    for image in images {
        for name in image.names {
            store.tag(&name.canonical(), image.record.clone())?;
            loaded.push(name.to_string());
        }
    }
    Ok(loaded)
}

/// Reads the whole archive, staging each file in the store (a file named by
/// its digest checked against it on the way) and noting each link.
fn read_archive(store: &Store, input: impl Read) -> Result<Archive> {
    let mut input = BufReader::new(input);
    let gzipped = input
        .fill_buf()
        .context("reading the archive")?
        .starts_with(&[0x1f, 0x8b]);
    let input: Box<dyn Read> = match gzipped {
        true => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        false => Box::new(input),
    };
    let mut archive = Archive {
        files: BTreeMap::new(),
        links: BTreeMap::new(),
    };
    let mut tar = tar::Archive::new(input);
    for entry in tar.entries().context("reading the archive")? {
        let mut entry = entry.context("reading the archive")?;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let path =
            extract::relative_path(&raw).with_context(|| format!("archive entry {shown:?}"))?;
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let staged = stage(store, &path, &mut entry)?;
                archive.links.remove(&path);
                archive.files.insert(path, staged);
            }
            kind @ (tar::EntryType::Symlink | tar::EntryType::Link) => {
                let target = entry.link_name_bytes().unwrap_or_default();
                // A symlink's target is relative to its directory, a hard
                // link's to the archive's root.
                let from = match kind {
                    tar::EntryType::Symlink => path.parent().unwrap_or(Path::new("")),
                    _ => Path::new(""),
                };
                let target = inside_archive(from, &target)
                    .with_context(|| format!("archive entry {shown:?}"))?;
                archive.files.remove(&path);
                archive.links.insert(path, target);
            }
            _ => {} // directories, and what a loader does not need
        }
    }
    Ok(archive)
}

/// Copies one file of the archive into a temporary blob, hashing it. A file
/// whose name is a digest (`blobs/sha256/HEX`) must be what it says.
fn stage(store: &Store, path: &Path, reader: &mut impl Read) -> Result<Staged> {
    let mut blob = HashingWriter::new(BlobFile::create(store)?);
    io::copy(reader, &mut blob)
        .with_context(|| format!("reading {} from the archive", path.display()))?;
    let (digest, size) = (blob.digest(), blob.count);
    if let Ok(hex) = path.strip_prefix("blobs/sha256") {
        let named = format!("sha256:{}", hex.display());
        digest::verify(
            &format!("the archive's {}", path.display()),
            &named,
            &digest,
        )?;
    }
    Ok(Staged {
        blob: blob.into_inner(),
        digest,
        size,
    })
}

/// Where a link's `target`, met in the directory `from`, leads: a path
/// inside the archive (never above its root).
fn inside_archive(from: &Path, target: &[u8]) -> Result<PathBuf> {
    let target = Path::new(std::ffi::OsStr::from_bytes(target));
    let mut path = if target.is_absolute() {
        PathBuf::new()
    } else {
        from.to_path_buf()
    };
    for component in target.components() {
        match component {
            Component::Normal(name) => path.push(name),
            Component::ParentDir if !path.pop() => {
                bail!("refused: a link leads outside the archive")
            }
            _ => {}
        }
    }
    Ok(path)
}

impl Archive {
    /// The real path `path` names, links followed.
    fn resolve(&self, path: &Path) -> Result<PathBuf> {
        let mut path = path.to_path_buf();
        for _ in 0..40 {
            match self.links.get(&path) {
                Some(target) => path = target.clone(),
                None => return Ok(path),
            }
        }
        bail!("too many levels of links at {}", path.display())
    }

    /// The staged file at `path`.
    fn file(&self, path: &Path) -> Result<&Staged> {
        let real = self.resolve(path)?;
        self.files
            .get(&real)
            .ok_or_else(|| anyhow!("the archive lacks {}", path.display()))
    }

    /// The staged file at `path`, taken out to be committed (once: a file two
    /// images share is there for the first).
    fn take(&mut self, path: &Path) -> Option<Staged> {
        let real = self.resolve(path).ok()?;
        self.files.remove(&real)
    }

    /// A small file of the archive, whole.
    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        let staged = self.file(path)?;
        if staged.size > MAX_DOCUMENT {
            bail!("{} is too large for a JSON document", path.display());
        }
        fs::read(staged.blob.path()).with_context(|| format!("reading {}", path.display()))
    }

    /// The JSON document at `path`, if the archive has one.
    fn json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<Option<T>> {
        if self
            .resolve(Path::new(path))
            .is_ok_and(|p| !self.files.contains_key(&p))
        {
            return Ok(None);
        }
        let bytes = self.read(Path::new(path))?;
        let parsed = serde_json::from_slice(&bytes).with_context(|| format!("reading {path}"))?;
        Ok(Some(parsed))
    }

    /// The blob `descriptor` points at, whole (a manifest, an index, a
    /// config), checked to be its size. Its digest was checked as it was read.
    fn blob(&self, descriptor: &Descriptor) -> Result<Vec<u8>> {
        let path = blob_path(&descriptor.digest)?;
        let bytes = self.read(&path)?;
        if bytes.len() as u64 != descriptor.size {
            bail!(
                "{}: {} bytes, but its descriptor says {}",
                path.display(),
                bytes.len(),
                descriptor.size
            );
        }
        Ok(bytes)
    }
}

/// Where the OCI layout keeps the blob `digest`.
fn blob_path(digest: &str) -> Result<PathBuf> {
    Ok(Path::new("blobs/sha256").join(digest::hex_part(digest)?))
}

/// The images of an OCI layout: each entry of `index.json` for this
/// machine's platform, resolved to its manifest, config and layers.
fn oci_images(
    archive: &Archive,
    index: LayoutIndex,
    docker: Option<&[DockerEntry]>,
) -> Result<Vec<Loading>> {
    let host = platform::host();
    let mut images = Vec::new();
    for entry in &index.manifests {
        if let Some(offered) = &entry.descriptor.platform
            && !platform::matches(&host, offered)
        {
            continue; // another platform's image of a multi-platform layout
        }
        let (documents, manifest_digest, manifest) =
            resolve_manifest(archive, &entry.descriptor, &host)?;
        let names = names_of(archive, entry, docker, &manifest.config.digest)?;
        let mut layers = Vec::new();
        for layer in &manifest.layers {
            let path = blob_path(&layer.digest)?;
            let size = archive.file(&path)?.size;
            if size != layer.size {
                bail!(
                    "{}: {size} bytes, but the manifest says {}",
                    path.display(),
                    layer.size
                );
            }
            layers.push((path, layer.clone()));
        }
        let config = archive.blob(&manifest.config)?;
        let mut image = checked(
            names,
            &manifest_digest,
            &config,
            &manifest.config.digest,
            layers,
        )?;
        image.record.digest = entry.descriptor.digest.clone();
        image.documents.extend(documents);
        images.push(image);
    }
    if images.is_empty() {
        bail!("the archive has no image for {}", platform::display(&host));
    }
    Ok(images)
}

/// The manifest an `index.json` entry points at, through an index of
/// platforms when it is one; with the documents on the way, by digest.
fn resolve_manifest(
    archive: &Archive,
    descriptor: &Descriptor,
    host: &Platform,
) -> Result<(Documents, String, Manifest)> {
    let bytes = archive.blob(descriptor)?;
    let mut documents = vec![(descriptor.digest.clone(), bytes.clone())];
    match oci::parse_manifest(&descriptor.media_type, &bytes)? {
        Fetched::Manifest(manifest) => Ok((documents, descriptor.digest.clone(), manifest)),
        Fetched::Index(index) => {
            let entry = platform::choose(&index.manifests, host)?;
            let bytes = archive.blob(entry)?;
            documents.push((entry.digest.clone(), bytes.clone()));
            match oci::parse_manifest(&entry.media_type, &bytes)? {
                Fetched::Manifest(manifest) => Ok((documents, entry.digest.clone(), manifest)),
                Fetched::Index(_) => bail!("the index entry {} is another index", entry.digest),
            }
        }
    }
}

/// The names of an `index.json` entry: its whole reference
/// (`io.containerd.image.name`), else a whole reference in `ref.name`
/// (skopeo writes `busybox:latest` there; Docker only the tag), else the
/// `RepoTags` that `manifest.json` gives the same config.
fn names_of(
    archive: &Archive,
    entry: &LayoutEntry,
    docker: Option<&[DockerEntry]>,
    config: &str,
) -> Result<Vec<Reference>> {
    let annotation = |key| entry.annotations.get(key).map(String::as_str);
    let whole =
        annotation(IMAGE_NAME).or(annotation(REF_NAME).filter(|n| n.contains([':', '/', '@'])));
    if let Some(name) = whole {
        return Ok(vec![parse_name(name)?]);
    }
    for docker_entry in docker.unwrap_or_default() {
        if archive
            .file(Path::new(&docker_entry.config))
            .is_ok_and(|f| f.digest == config)
        {
            return repo_tags(docker_entry, config);
        }
    }
    bail!("{}", unnamed(config))
}

fn parse_name(name: &str) -> Result<Reference> {
    Reference::parse(name).with_context(|| format!("the archive's image name {name:?}"))
}

fn unnamed(config: &str) -> String {
    format!(
        "the archive's image {} has no name (minibox keeps images by name: save it with one)",
        digest::short(config)
    )
}

/// The images of Docker's `manifest.json`: config and layers by their paths
/// in the archive, and an OCI manifest made for them (none is in the
/// archive; a plain `ID/layer.tar` becomes an uncompressed layer, as Docker
/// 25's own `save` describes it).
fn docker_images(archive: &Archive, entries: &[DockerEntry]) -> Result<Vec<Loading>> {
    let mut images = Vec::new();
    for entry in entries {
        let config_file = archive.file(Path::new(&entry.config))?;
        let config_digest = config_file.digest.clone();
        let config_size = config_file.size;
        let config = archive.read(Path::new(&entry.config))?;
        let mut layers = Vec::new();
        for path in &entry.layers {
            let path = PathBuf::from(path);
            let staged = archive.file(&path)?;
            let mut magic = [0u8; 4];
            let n = fs::File::open(staged.blob.path())?.read(&mut magic)?;
            let media_type = match &magic[..n] {
                [0x1f, 0x8b, ..] => format!("{OCI_LAYER}+gzip"),
                [0x28, 0xb5, 0x2f, 0xfd] => format!("{OCI_LAYER}+zstd"),
                _ => OCI_LAYER.to_string(),
            };
            let descriptor = Descriptor {
                media_type,
                digest: staged.digest.clone(),
                size: staged.size,
                platform: None,
            };
            layers.push((path, descriptor));
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(oci::OCI_MANIFEST.to_string()),
            config: Descriptor {
                media_type: OCI_CONFIG.to_string(),
                digest: config_digest.clone(),
                size: config_size,
                platform: None,
            },
            layers: layers.iter().map(|(_, d)| d.clone()).collect(),
        };
        let bytes = serde_json::to_vec(&manifest)?;
        let manifest_digest = digest::sha256(&bytes);
        let names = repo_tags(entry, &config_digest)?;
        let mut image = checked(names, &manifest_digest, &config, &config_digest, layers)?;
        image.documents.push((manifest_digest, bytes));
        images.push(image);
    }
    Ok(images)
}

/// A `manifest.json` entry's names.
fn repo_tags(entry: &DockerEntry, config: &str) -> Result<Vec<Reference>> {
    let tags = entry.repo_tags.as_deref().unwrap_or_default();
    if tags.is_empty() {
        bail!("{}", unnamed(config));
    }
    tags.iter().map(|t| parse_name(t)).collect()
}

/// An image whose config and layers agree: as many layers as `diff_ids`,
/// and an uncompressed layer (its blob is its tar) that is its `diff_id`.
fn checked(
    names: Vec<Reference>,
    manifest: &str,
    config_bytes: &[u8],
    config: &str,
    layers: Vec<(PathBuf, Descriptor)>,
) -> Result<Loading> {
    let parsed = oci::parse_config(config_bytes)?;
    let diff_ids = parsed.rootfs.diff_ids.clone();
    if diff_ids.len() != layers.len() {
        bail!(
            "the image {} lists {} layers but its config {}",
            digest::short(config),
            layers.len(),
            diff_ids.len()
        );
    }
    for ((path, descriptor), diff_id) in layers.iter().zip(&diff_ids) {
        if descriptor.media_type == OCI_LAYER {
            let what = format!("{}: the layer's content (its diff_id)", path.display());
            digest::verify(&what, diff_id, &descriptor.digest)?;
        }
    }
    let offered = Platform {
        os: parsed.os.clone(),
        architecture: parsed.architecture.clone(),
        variant: parsed.variant.clone(),
    };
    Ok(Loading {
        names,
        record: ImageRecord {
            digest: manifest.to_string(),
            manifest: manifest.to_string(),
            config: config.to_string(),
            diff_ids: diff_ids.clone(),
            platform: platform::display(&offered),
        },
        documents: vec![(config.to_string(), config_bytes.to_vec())],
        layers: layers
            .into_iter()
            .zip(diff_ids)
            .map(|((path, descriptor), diff_id)| (path, descriptor, diff_id))
            .collect(),
    })
}

/// A layer unpacked and checked, waiting for its final name.
struct PartialLayer {
    dir: PathBuf,
    diff_id: String,
    size: u64,
}

/// Unpacks every layer the store lacks into a `.partial` directory, checking
/// each against its `diff_id`; returns them to commit. On failure, none is
/// left.
fn unpack_layers(
    store: &Store,
    archive: &Archive,
    images: &[Loading],
) -> Result<Vec<PartialLayer>> {
    let mut partials: Vec<PartialLayer> = Vec::new();
    let result = (|| {
        for (path, _, diff_id) in images.iter().flat_map(|i| &i.layers) {
            let done = partials.iter().any(|p| &p.diff_id == diff_id);
            if done || store.has_layer(diff_id)? {
                continue;
            }
            let dir = store.begin_layer()?;
            partials.push(PartialLayer {
                dir: dir.clone(),
                diff_id: diff_id.clone(),
                size: 0,
            });
            let mut file = fs::File::open(archive.file(path)?.blob.path())?;
            let what = || format!("layer {} ({})", digest::short(diff_id), path.display());
            let (unpacked, tar_digest) =
                pull::unpack_stream(&mut file, &dir.join("fs")).with_context(what)?;
            let content = format!("{}: its uncompressed content (its diff_id)", what());
            digest::verify(&content, diff_id, &tar_digest)?;
            partials.last_mut().expect("pushed above").size = unpacked.size;
        }
        Ok(())
    })();
    if let Err(error) = result {
        remove_partials(&partials);
        return Err(error);
    }
    Ok(partials)
}

fn remove_partials(partials: &[PartialLayer]) {
    for partial in partials {
        let _ = fs::remove_dir_all(&partial.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_stay_inside_the_archive() {
        let from = Path::new("abc");
        assert_eq!(
            inside_archive(from, b"../def/layer.tar").unwrap(),
            Path::new("def/layer.tar")
        );
        assert_eq!(inside_archive(from, b"/x/./y").unwrap(), Path::new("x/y"));
        assert!(inside_archive(from, b"../../etc/passwd").is_err());
    }

    #[test]
    fn index_json_entries_read_back_with_their_annotations() {
        let text = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:00","size":1,"annotations":{"io.containerd.image.name":"docker.io/library/busybox:latest","org.opencontainers.image.ref.name":"latest"}}]}"#;
        let index: LayoutIndex = serde_json::from_str(text).unwrap();
        assert_eq!(index.manifests[0].annotations[REF_NAME], "latest");
        assert_eq!(
            serde_json::to_string(&index).unwrap(),
            text,
            "and write back the same"
        );
    }
}
