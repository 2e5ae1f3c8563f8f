//! Fixture images, built in Rust from what the host has, in the OCI image format
//! (image-spec v1): each layer a gzipped tar, a config naming the layers'
//! uncompressed digests (`diff_ids`), and a manifest naming the config and the
//! layers by their digests. [`crate::registry`] pushes them to a real registry.
//!
//! Layers are built deterministically (sorted entries, fixed times), so the same
//! fixture has the same digests on every machine.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
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

impl Layer {
    /// The total size of the layer's regular files, as `docker images` counts
    /// an image's SIZE (hard links and other entries count nothing). Read from
    /// the blob: gzip, or a plain tar.
    pub fn unpacked_size(&self) -> u64 {
        let bytes = &self.blob.bytes[..];
        let reader: Box<dyn std::io::Read + '_> = if bytes.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::read::GzDecoder::new(bytes))
        } else {
            Box::new(bytes)
        };
        let mut archive = tar::Archive::new(reader);
        archive
            .entries()
            .expect("a tar")
            .map(|entry| entry.expect("a tar entry"))
            .filter(|entry| entry.header().entry_type().is_file())
            .map(|entry| entry.header().size().expect("an entry size"))
            .sum()
    }
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
/// `sh` by default, like Docker Hub's. Built afresh on every call (a test
/// compares two builds); the images on top of it share [`busybox_layer`].
pub fn busybox() -> std::io::Result<Image> {
    let layer = layer_from_dir(&crate::fixtures::busybox_rootfs())?;
    Ok(image(vec![layer], &["sh"]))
}

/// busybox's layer, built once per process for the images on top of it:
/// [`Registry::push_fixtures`](crate::registry::Registry::push_fixtures)
/// pushes six of them, and each build gzips the root filesystem again
/// (a third of a second in a debug build).
fn busybox_layer() -> std::io::Result<Layer> {
    static LAYER: std::sync::OnceLock<Layer> = std::sync::OnceLock::new();
    if let Some(layer) = LAYER.get() {
        return Ok(layer.clone());
    }
    let layer = layer_from_dir(&crate::fixtures::busybox_rootfs())?;
    Ok(LAYER.get_or_init(|| layer).clone())
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

/// The OCI image index's media type (a multi-platform image).
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A layer built entry by entry, for fixtures that need exact tar contents
/// (whiteouts, hard links, hostile paths).
pub struct LayerBuilder {
    tar: tar::Builder<Vec<u8>>,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        LayerBuilder {
            tar: tar::Builder::new(Vec::new()),
        }
    }
}

impl LayerBuilder {
    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header
    }

    /// Writes the name into the header's raw bytes, unchecked: the tar crate
    /// refuses `..` and absolute paths, which is right for it and wrong for a
    /// fixture whose whole point is a hostile path.
    fn raw_name(header: &mut tar::Header, path: &str) {
        let name = &mut header.as_old_mut().name;
        assert!(path.len() < name.len(), "fixture paths are short");
        name.fill(0);
        name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_cksum();
    }

    /// A directory.
    pub fn dir(mut self, path: &str) -> Self {
        let mut header = Self::header(tar::EntryType::Directory, 0o755, 0);
        Self::raw_name(&mut header, path);
        self.tar.append(&header, std::io::empty()).expect("tar");
        self
    }

    /// A regular file with `content`.
    pub fn file(mut self, path: &str, content: &str) -> Self {
        let mut header = Self::header(tar::EntryType::Regular, 0o644, content.len() as u64);
        Self::raw_name(&mut header, path);
        self.tar.append(&header, content.as_bytes()).expect("tar");
        self
    }

    /// A file with mode 0755.
    pub fn executable(mut self, path: &str, content: &[u8]) -> Self {
        let mut header = Self::header(tar::EntryType::Regular, 0o755, content.len() as u64);
        Self::raw_name(&mut header, path);
        self.tar.append(&header, content).expect("tar");
        self
    }

    /// An entry of `kind` (a file with `content`, or a directory) with its
    /// own owner and mode.
    pub fn owned(mut self, path: &str, content: &[u8], mode: u32, owner: (u64, u64)) -> Self {
        let kind = match path.ends_with('/') {
            true => tar::EntryType::Directory,
            false => tar::EntryType::Regular,
        };
        let mut header = Self::header(kind, mode, content.len() as u64);
        header.set_uid(owner.0);
        header.set_gid(owner.1);
        Self::raw_name(&mut header, path);
        self.tar.append(&header, content).expect("tar");
        self
    }

    /// A symbolic link `path -> target`.
    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut header = Self::header(tar::EntryType::Symlink, 0o777, 0);
        Self::raw_name(&mut header, path);
        header.set_link_name_literal(target).expect("link name");
        header.set_cksum();
        self.tar.append(&header, std::io::empty()).expect("tar");
        self
    }

    /// A hard link `path` to the earlier entry `target`.
    pub fn hardlink(mut self, path: &str, target: &str) -> Self {
        let mut header = Self::header(tar::EntryType::Link, 0o644, 0);
        Self::raw_name(&mut header, path);
        header.set_link_name_literal(target).expect("link name");
        header.set_cksum();
        self.tar.append(&header, std::io::empty()).expect("tar");
        self
    }

    /// An OCI whiteout: `.wh.NAME` deletes NAME from the layers below.
    pub fn whiteout(self, dir: &str, name: &str) -> Self {
        self.file(&format!("{dir}.wh.{name}"), "")
    }

    /// An OCI opaque marker: `DIR/.wh..wh..opq` hides everything the layers below
    /// have in DIR.
    pub fn opaque(self, dir: &str) -> Self {
        self.file(&format!("{dir}.wh..wh..opq"), "")
    }

    /// The finished, gzipped layer.
    pub fn build(self) -> Layer {
        let tar = self.tar.into_inner().expect("tar");
        let diff_id = sha256(&tar);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).expect("gzip");
        Layer {
            blob: Blob::new(LAYER_GZIP, gz.finish().expect("gzip")),
            diff_id,
        }
    }
}

/// Like [`image`], with the architecture of the config chosen.
pub fn image_for(layers: Vec<Layer>, cmd: &[&str], architecture: &str) -> Image {
    let mut image = image(layers, cmd);
    let mut config: serde_json::Value = serde_json::from_slice(&image.config.bytes).expect("JSON");
    config["architecture"] = architecture.into();
    image.config = Blob::new(CONFIG, serde_json::to_vec(&config).expect("JSON"));
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&image.manifest.bytes).expect("JSON");
    manifest["config"] = image.config.descriptor();
    image.manifest = Blob::new(MANIFEST, serde_json::to_vec(&manifest).expect("JSON"));
    image
}

/// The `hello-world` image: one layer holding one static program, `/hello`.
pub fn hello_world() -> Result<Image, String> {
    let program = crate::fixtures::static_program("hello")?;
    let bytes = fs::read(&program).map_err(|e| format!("{}: {e}", program.display()))?;
    let layer = LayerBuilder::default().executable("hello", &bytes).build();
    Ok(image(vec![layer], &["/hello"]))
}

/// The `minibox/probe` image, for chapter 12: busybox, and above it a layer
/// with one static program, `/bin/probe` (`crates/fixture-programs`), which
/// attempts privileged operations (mount, unshare, reboot, init_module, bpf,
/// ...) and prints one line for each, `NAME: ok` or the errno's name. Its
/// command runs every probe: `minibox run minibox/probe`, or `minibox run
/// minibox/probe probe caps mount` for some.
pub fn probe() -> Result<Image, String> {
    let program = crate::fixtures::static_program("probe")?;
    let bytes = fs::read(&program).map_err(|e| format!("{}: {e}", program.display()))?;
    let mut layers = vec![busybox_layer().map_err(|e| format!("busybox layer: {e}"))?];
    layers.push(
        LayerBuilder::default()
            .dir("bin/")
            .executable("bin/probe", &bytes)
            .build(),
    );
    Ok(image(layers, &["probe"]))
}

/// The links of the `evil-symlinks` images, for the runtime's own attack
/// surface (chapter 12): each path of the image that a runtime mounts on
/// (`/proc`, `/dev`, `/sys`) or that a test mounts a volume on (`/data`), with
/// the host path its link aims at. runc followed such links out of the root
/// filesystem more than once (CVE-2019-19921: a volume over a `/proc`
/// symlink; CVE-2021-30465: a symlink swapped in during a mount;
/// CVE-2023-27561: the 2019 fix regressed); a runtime must resolve them inside
/// the root (or refuse them), and mount nothing outside it.
///
/// The targets are chosen so that a runtime that gets it wrong does no harm
/// and is caught: `/tmp/minibox-escape-*` does not exist on a host (a test
/// checks that it still does not, and that nothing is mounted there), and
/// `/data` aims at the host's `/` itself, where a stray mount hides nothing
/// (a process's root is not looked up through mounts on top of it) and shows
/// in the host's mountinfo. Inside the container, where `/` is the image's
/// root, the same links name harmless paths of the image.
pub const EVIL_SYMLINKS: [(&str, &str); 4] = [
    ("proc", "/tmp/minibox-escape-proc"),
    ("dev", "/tmp/minibox-escape-dev"),
    ("sys", "/tmp/minibox-escape-sys"),
    ("data", "/"),
];

/// `minibox/evil-symlinks-abs`: busybox, and a layer that replaces `/proc`,
/// `/dev` and `/sys` with symlinks, and adds `/data` as one, each to the
/// absolute path [`EVIL_SYMLINKS`] gives. A runtime that follows them from
/// the host (`ROOTFS/proc` -> `/tmp/minibox-escape-proc`) mounts outside the
/// container.
pub fn evil_symlinks_abs() -> std::io::Result<Image> {
    evil_symlinks(|target| target.to_string())
}

/// `minibox/evil-symlinks-rel`: as [`evil_symlinks_abs`], with relative
/// links that climb out of the root ([`CLIMB`] times `..`, more than a root
/// filesystem is deep, then the target):
/// `ROOTFS/proc` -> the host's `/tmp/minibox-escape-proc` when followed
/// from the host, the image's own `/tmp/minibox-escape-proc` from inside it
/// (`..` of `/` is `/`).
pub fn evil_symlinks_rel() -> std::io::Result<Image> {
    evil_symlinks(|target| {
        let up = vec![".."; CLIMB].join("/");
        up + target.trim_end_matches('/')
    })
}

/// How many `..` the links of [`evil_symlinks_rel`] climb: more than any root
/// filesystem a test or a store makes is deep (`..` of `/` is `/`, so more
/// is no harm).
pub const CLIMB: usize = 24;

/// busybox with a layer of [`EVIL_SYMLINKS`], each aimed at `link(target)`. A
/// link replaces busybox's directory of the same name, as any entry of an
/// upper layer replaces one of another type below it.
fn evil_symlinks(link: impl Fn(&str) -> String) -> std::io::Result<Image> {
    let mut layers = vec![busybox_layer()?];
    let evil = EVIL_SYMLINKS
        .iter()
        .fold(LayerBuilder::default(), |layer, (path, target)| {
            layer.symlink(path, &link(target))
        });
    layers.push(evil.build());
    Ok(image(layers, &["sh"]))
}

/// `image` with `set`'s keys written into its config's `config` object
/// (`Entrypoint`, `Cmd`, `User`...), and the manifest recomputed to name the
/// new config.
pub fn with_config(image: Image, set: serde_json::Value) -> Image {
    let mut config: serde_json::Value = serde_json::from_slice(&image.config.bytes).expect("JSON");
    for (key, value) in set.as_object().expect("an object") {
        config["config"][key] = value.clone();
    }
    let config = Blob::new(CONFIG, serde_json::to_vec(&config).expect("JSON"));
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&image.manifest.bytes).expect("JSON");
    manifest["config"] = config.descriptor();
    let manifest = Blob::new(MANIFEST, serde_json::to_vec(&manifest).expect("JSON"));
    Image {
        config,
        manifest,
        ..image
    }
}

/// busybox with Entrypoint `["echo", "hello"]` and Cmd `["world"]`: the image
/// that shows Docker's override rules (`run minibox/echo` says `hello world`,
/// `run minibox/echo there` says `hello there`).
pub fn echo() -> std::io::Result<Image> {
    Ok(with_config(
        image(vec![busybox_layer()?], &["sh"]),
        serde_json::json!({ "Entrypoint": ["echo", "hello"], "Cmd": ["world"] }),
    ))
}

/// Where Debian's `redis-server` package puts the server: a symlink to
/// `redis-check-rdb`, the one binary that is both (it looks at the name it was
/// started by).
pub const HOST_REDIS_SERVER: &str = "/usr/bin/redis-server";

/// Where Debian's `redis-tools` package puts the client.
pub const HOST_REDIS_CLI: &str = "/usr/bin/redis-cli";

/// The port redis listens on, and the one its image exposes.
pub const REDIS_PORT: u16 = 6379;

/// Bump when [`redis`]'s layer recipe changes, so a cached layer is rebuilt.
const REDIS_LAYER_VERSION: &str = "redis-layer 1";

/// The `redis` image, for chapter 9's `minibox run -p 6379:6379 redis`: like
/// Docker Hub's, it runs `redis-server` in `/data` and exposes 6379/tcp. Two
/// layers, as a real image has: busybox below (a shell, for `sh -c` and for
/// looking around), and above it the host's `redis-server` and `redis-cli`
/// (a regular file each, in `/usr/bin`), the dynamic loader and the libraries
/// they need (see [`crate::dynamic`]), a `redis` user (999, as Docker Hub's)
/// and `/data`.
///
/// `--protected-mode no`: redis without a password otherwise answers only
/// connections from the loopback interface, and a published port's
/// connections reach the container from the outside. (Docker Hub's image
/// turns it off the same way, in its config file.)
///
/// SIMPLIFICATION: the container runs redis as root; Docker Hub's entrypoint
/// script changes to the `redis` user first.
pub fn redis() -> Result<Image, String> {
    let mut layers = vec![busybox_layer().map_err(|e| format!("busybox layer: {e}"))?];
    layers.push(redis_layer()?);
    Ok(with_config(
        image(layers, &["redis-server", "--protected-mode", "no"]),
        serde_json::json!({
            "ExposedPorts": { format!("{REDIS_PORT}/tcp"): {} },
            "WorkingDir": "/data",
        }),
    ))
}

/// The host programs in the redis image, with the Debian package of each.
const REDIS_PROGRAMS: [(&str, &str); 2] = [
    (HOST_REDIS_SERVER, "redis-server"),
    (HOST_REDIS_CLI, "redis-tools"),
];

/// The redis layer of [`redis`], from the cache when the host's files are the
/// ones it was built from.
fn redis_layer() -> Result<Layer, String> {
    let (passwd, group) = redis_etc()?;
    let key = redis_layer_key()? + &passwd + &group;
    cached_layer("redis-layer", &key, || build_redis_layer(&passwd, &group))
}

/// The redis layer's `/etc/passwd` and `/etc/group`: busybox's, and a `redis`
/// user and group.
fn redis_etc() -> Result<(String, String), String> {
    let busybox_etc = crate::fixtures::busybox_rootfs().join("etc");
    let etc = |file: &str| {
        fs::read_to_string(busybox_etc.join(file))
            .map_err(|e| format!("busybox's /etc/{file}: {e}"))
    };
    Ok((
        etc("passwd")? + "redis:x:999:999:redis:/data:/bin/false\n",
        etc("group")? + "redis:x:999:\n",
    ))
}

/// `program`, when the host has it; otherwise the one line that says which
/// package to install.
fn host_program<'a>(program: &'a str, package: &str) -> Result<&'a Path, String> {
    let path = Path::new(program);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{program} is missing: install {package} (cargo xtask test does)"
        ))
    }
}

/// What the redis layer is built from, as text: the recipe's version, then
/// each host file it copies (the programs, their loader and libraries), with
/// the file it resolves to, its size and its modification time. A package
/// upgrade changes it. Fails with what to install when a program is missing.
fn redis_layer_key() -> Result<String, String> {
    let mut key = format!("{REDIS_LAYER_VERSION}\n");
    for (program, package) in REDIS_PROGRAMS {
        let program = host_program(program, package)?;
        let needed = crate::dynamic::needed_files(program)?;
        for file in std::iter::once(program.to_path_buf()).chain(needed) {
            let error = |e: std::io::Error| format!("{}: {e}", file.display());
            let meta = fs::metadata(&file).map_err(error)?;
            let real = fs::canonicalize(&file).map_err(error)?;
            key += &format!(
                "{} {} {} {}.{:09}\n",
                file.display(),
                real.display(),
                meta.len(),
                meta.mtime(),
                meta.mtime_nsec()
            );
        }
    }
    Ok(key)
}

/// Builds the redis layer: the programs with what their loader needs, the
/// `/etc/passwd` and `/etc/group` given (busybox's, and redis), and `/data`.
fn build_redis_layer(passwd: &str, group: &str) -> Result<Layer, String> {
    let io = |e: std::io::Error| format!("the redis layer: {e}");
    let dir = tempfile::tempdir().map_err(io)?;
    let root = dir.path();
    for (program, _) in REDIS_PROGRAMS {
        crate::dynamic::install(root, Path::new(program), Path::new(program))?;
    }
    fs::create_dir_all(root.join("etc")).map_err(io)?;
    fs::create_dir_all(root.join("data")).map_err(io)?;
    fs::write(root.join("etc/passwd"), passwd).map_err(io)?;
    fs::write(root.join("etc/group"), group).map_err(io)?;
    layer_from_dir(root).map_err(io)
}

/// A layer kept between runs in `target/fixtures` (`NAME.tar.gz`, and
/// `NAME.json` with the `key` it was built for and its digests), so that a
/// large layer is built once instead of once a test: gzip in a debug build
/// takes seconds for the redis layer's 17 MB, and every test that pushes the
/// fixtures would wait for it. Built by `build` when the key differs or the
/// bytes do not match their digest (another process wrote in between);
/// written to temporary files first and renamed into place. Tests of one
/// process that ask at once wait for one build.
fn cached_layer(
    name: &str,
    key: &str,
    build: impl FnOnce() -> Result<Layer, String>,
) -> Result<Layer, String> {
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let dir = crate::fixtures::fixtures_dir();
    let (blob_path, meta_path) = (
        dir.join(format!("{name}.tar.gz")),
        dir.join(format!("{name}.json")),
    );
    let meta: Option<serde_json::Value> = fs::read(&meta_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    if let Some(meta) = meta.filter(|m| m["key"] == key)
        && let Ok(bytes) = fs::read(&blob_path)
    {
        let blob = Blob::new(LAYER_GZIP, bytes);
        if meta["digest"] == blob.digest.as_str()
            && let Some(diff_id) = meta["diff_id"].as_str()
        {
            return Ok(Layer {
                blob,
                diff_id: diff_id.to_string(),
            });
        }
    }
    let layer = build()?;
    let meta =
        serde_json::json!({ "key": key, "digest": layer.blob.digest, "diff_id": layer.diff_id });
    let io = |e: std::io::Error| format!("caching {name} in {}: {e}", dir.display());
    fs::create_dir_all(&dir).map_err(io)?;
    let meta = serde_json::to_vec(&meta).expect("JSON");
    for (path, bytes) in [(&blob_path, &layer.blob.bytes), (&meta_path, &meta)] {
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        fs::write(&tmp, bytes).map_err(io)?;
        fs::rename(&tmp, path).map_err(io)?;
    }
    Ok(layer)
}

/// A two-layer image whose upper layer deletes a file (`/etc/deleted`) with a
/// whiteout and replaces a directory (`/opaque`) with an opaque marker.
pub fn layered() -> Image {
    let lower = LayerBuilder::default()
        .dir("etc/")
        .file("etc/kept", "kept\n")
        .file("etc/deleted", "deleted\n")
        .dir("opaque/")
        .file("opaque/old", "hidden by the upper layer\n")
        .build();
    let upper = LayerBuilder::default()
        .dir("etc/")
        .whiteout("etc/", "deleted")
        .dir("opaque/")
        .opaque("opaque/")
        .file("opaque/new", "from the upper layer\n")
        .build();
    image(vec![lower, upper], &["sh"])
}

/// [`layered`] on top of busybox: three layers, so a container from it has a
/// shell to look at the whiteout and the opaque directory with.
pub fn layered_on_busybox() -> std::io::Result<Image> {
    let mut layers = vec![busybox_layer()?];
    layers.extend(layered().layers);
    Ok(image(layers, &["sh"]))
}

/// busybox with files of three owners (0, 1000 and 65534) and a set-user-ID
/// program of user 1000: what a multi-user image keeps through a user
/// namespace's ID map (chapter 13).
pub fn multi_user() -> std::io::Result<Image> {
    let busybox = std::fs::read(crate::fixtures::busybox_rootfs().join("bin/busybox"))?;
    let owners = LayerBuilder::default()
        .owned("home/app/", b"", 0o750, (1000, 1000))
        .owned("home/app/notes", b"app's\n", 0o640, (1000, 1000))
        .owned("srv/", b"", 0o755, (0, 0))
        .owned("srv/nobody", b"nobody's\n", 0o644, (65534, 65534))
        .owned("usr/local/bin/", b"", 0o755, (0, 0))
        .owned("usr/local/bin/as-app", &busybox, 0o4755, (1000, 1000))
        .build();
    Ok(image(vec![busybox_layer()?, owners], &["sh"]))
}

/// A multi-platform image: an OCI index with an entry for this machine's
/// architecture and one for another, each a one-layer image whose only file,
/// `/platform`, names it. Returns the index and the two images.
pub fn multi_platform() -> (Blob, Vec<Image>) {
    let other = if host_architecture() == "arm64" {
        "amd64"
    } else {
        "arm64"
    };
    let images: Vec<Image> = [host_architecture(), other]
        .iter()
        .map(|arch| {
            let layer = LayerBuilder::default()
                .file("platform", &format!("linux/{arch}\n"))
                .build();
            image_for(vec![layer], &["/platform"], arch)
        })
        .collect();
    let manifests: Vec<serde_json::Value> = images
        .iter()
        .zip([host_architecture(), other])
        .map(|(image, arch)| {
            let mut descriptor = image.manifest.descriptor();
            descriptor["platform"] = serde_json::json!({ "os": "linux", "architecture": arch });
            descriptor
        })
        .collect();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": manifests,
    });
    (
        Blob::new(INDEX, serde_json::to_vec(&index).expect("JSON")),
        images,
    )
}

/// Layers that try to write outside the directory they are unpacked into, each
/// with a name: a `..` path and a symlink pointing out then written through,
/// both aimed at the absolute path `escaped` (a file that must not come to
/// exist: make it unique per run, so a leftover cannot hide an escape); a hard
/// link aimed at `outside` (an existing file). An extractor must reject every
/// one and touch nothing outside. (An absolute entry name is no escape:
/// Docker, containerd and minibox read it below the layer's root, and chapter
/// 7's `real_registries` test checks that it lands there.)
pub fn malicious_layers(outside: &str, escaped: &str) -> Vec<(&'static str, Layer)> {
    let outside = outside.trim_start_matches('/');
    let escaped = std::path::Path::new(escaped);
    let escaped_dir = escaped
        .parent()
        .expect("an absolute path")
        .to_string_lossy();
    let escaped_name = escaped.file_name().expect("a file name").to_string_lossy();
    let relative = escaped.to_string_lossy();
    vec![
        (
            "dot-dot",
            LayerBuilder::default()
                .file(&format!("../../../../../../../..{relative}"), "x\n")
                .build(),
        ),
        (
            "symlink-then-write",
            LayerBuilder::default()
                .symlink("escape", &escaped_dir)
                .file(&format!("escape/{escaped_name}"), "x\n")
                .build(),
        ),
        (
            "hardlink-outside",
            LayerBuilder::default()
                .hardlink("passwd", &format!("/{outside}"))
                .build(),
        ),
    ]
}

/// Docker's media types for the same things: what `docker push` (and
/// `skopeo --format v2s2`) writes.
pub mod docker {
    /// Docker's manifest, schema 2.
    pub const MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker's manifest list: a multi-platform image.
    pub const MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker's image config.
    pub const CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Docker's gzipped layer.
    pub const LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
}

/// `image` in Docker's format: the same config and layer bytes (so the same
/// digests), described by Docker's media types in a Docker schema 2 manifest.
pub fn as_docker(image: &Image) -> Image {
    let config = Blob::new(docker::CONFIG, image.config.bytes.clone());
    let layers: Vec<Layer> = image
        .layers
        .iter()
        .map(|l| Layer {
            blob: Blob::new(docker::LAYER_GZIP, l.blob.bytes.clone()),
            diff_id: l.diff_id.clone(),
        })
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": docker::MANIFEST,
        "config": config.descriptor(),
        "layers": layers.iter().map(|l| l.blob.descriptor()).collect::<Vec<_>>(),
    });
    Image {
        manifest: Blob::new(
            docker::MANIFEST,
            serde_json::to_vec(&manifest).expect("JSON"),
        ),
        config,
        layers,
    }
}

/// [`multi_platform`] in Docker's format: a manifest list of Docker schema 2
/// manifests. Returns the list and the two images.
pub fn docker_multi_platform() -> (Blob, Vec<Image>) {
    let (index, images) = multi_platform();
    let images: Vec<Image> = images.iter().map(as_docker).collect();
    let index: serde_json::Value = serde_json::from_slice(&index.bytes).expect("JSON");
    let manifests: Vec<serde_json::Value> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .zip(&images)
        .map(|(entry, image)| {
            let mut descriptor = image.manifest.descriptor();
            descriptor["platform"] = entry["platform"].clone();
            descriptor
        })
        .collect();
    let list = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": docker::MANIFEST_LIST,
        "manifests": manifests,
    });
    (
        Blob::new(
            docker::MANIFEST_LIST,
            serde_json::to_vec(&list).expect("JSON"),
        ),
        images,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_redis_says_which_package_to_install() {
        assert_eq!(
            host_program("/nonexistent/redis-server", "redis-server").unwrap_err(),
            "/nonexistent/redis-server is missing: install redis-server (cargo xtask test does)"
        );
    }

    #[test]
    fn the_redis_layer_built_again_is_the_cached_one() {
        // From the cache if an earlier run built it, so this compares two builds
        // (perhaps on two days); the digests prove the build deterministic.
        let cached = redis_layer().unwrap();
        let (passwd, group) = redis_etc().unwrap();
        let fresh = build_redis_layer(&passwd, &group).unwrap();
        assert_eq!(fresh.diff_id, cached.diff_id);
        assert_eq!(fresh.blob.digest, cached.blob.digest);
    }
}
