//! A directory of changes becomes an OCI layer: chapter 7's extractor run
//! backwards.
//!
//! After a `RUN` step, everything the command changed is in its overlay's
//! upper directory (chapter 6), written in overlayfs's own vocabulary. A layer
//! says the same things in OCI's, so the writer translates each marker back:
//!
//! | overlayfs (upper directory) | OCI layer (tar entry) |
//! |---|---|
//! | `NAME`, a character device 0/0 (or an empty file with the `overlay.whiteout` attribute) | `.wh.NAME`, an empty regular file |
//! | `DIR` with `trusted.overlay.opaque` = `y` | `DIR/` and `DIR/.wh..wh..opq` |
//! | `trusted.overlay.*` bookkeeping (origin, impure...) | nothing |
//! | any other extended attribute (`security.capability`, `user.*`...) but `security.selinux` | a PAX record `SCHILY.xattr.NAME` |
//!
//! overlayfs writes whiteouts as 0/0 devices; the empty-file form (kernel
//! 6.7 on, in a directory whose `overlay.opaque` is `x`, which is not
//! opaque) is what tools write for nested overlays, and is read too. An
//! overlay mounted with `userxattr` (unprivileged, chapter 13) keeps its
//! attributes as `user.overlay.*`: [`OverlayXattrs`] says which. An upper
//! directory made with `metacopy` or `redirect_dir` (off by default) holds
//! files whose data, or directories whose contents, are still below it, and
//! is refused.
//!
//! The tar is written the way Docker's `pkg/archive` writes one: names
//! relative to the layer's root with no `./` (`etc/`, `etc/hosts`),
//! directories with a trailing slash, the root itself left out, a directory
//! before its contents and the names of a directory in byte order; ustar
//! headers with numeric owners and empty user and group names, PAX records only
//! where ustar has no room (long names, extended attributes); two names for one
//! inode become a file and a hard link to it; sockets are left out.
//!
//! Nothing in the archive depends on when or where it was written: no access
//! or change times, no host user names, gzip with a fixed level and neither a
//! name nor a time in its header. The same tree gives the same `diff_id`, and,
//! compressed by the same build of minibox, the same blob. With
//! [`LayerOptions::source_date_epoch`] the modification times stop depending on
//! when the build ran too.
//!
//! Both digests are computed while the bytes stream out, in one pass: the
//! `diff_id` over the tar as it goes into the compressor, the blob's digest
//! over what comes out of it.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use ch06_rootfs_snapshot::snapshot;
use ch07_image_pull::digest;
use ch07_image_pull::extract::{OPAQUE_MARKER, WHITEOUT_PREFIX};
use ch07_image_pull::store::Store;
use sha2::{Digest as _, Sha256};

/// The gzip level: zlib's default, which Docker and BuildKit use too. Fixed,
/// because the blob's digest depends on it.
pub const GZIP_LEVEL: u32 = 6;

/// How to write a layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerOptions {
    /// `SOURCE_DATE_EPOCH`, when the build was given one: every modification
    /// time later than it becomes it, and earlier ones stay (BuildKit's
    /// `rewrite-timestamp=true`). Files a build step wrote then carry the
    /// epoch rather than the moment the step ran, so building the same
    /// sources twice gives the same layer. The caller reads the variable (or
    /// `--build-arg`); this module never looks at the environment.
    pub source_date_epoch: Option<u64>,
    /// Which overlayfs attributes mark whiteouts and opaque directories in
    /// the upper directory: those of the mount that made it.
    pub overlay_xattrs: OverlayXattrs,
}

/// The namespace of overlayfs's own extended attributes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OverlayXattrs {
    /// `trusted.overlay.*`: an overlay mounted by root (this chapter).
    #[default]
    Trusted,
    /// `user.overlay.*`: an overlay mounted with `userxattr`, as an
    /// unprivileged user must (chapter 13).
    User,
}

impl OverlayXattrs {
    fn prefix(self) -> &'static [u8] {
        match self {
            OverlayXattrs::Trusted => b"trusted.overlay.",
            OverlayXattrs::User => b"user.overlay.",
        }
    }
}

/// What a written layer is, as a manifest and a config name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDigests {
    /// The sha256 of the gzip blob: the manifest's layer descriptor, the name
    /// a registry stores it under.
    pub digest: String,
    /// The sha256 of the uncompressed tar: the config's `rootfs.diff_ids`
    /// entry, what the layer *is* whatever compressed it.
    pub diff_id: String,
    /// The blob's size in bytes.
    pub size: u64,
}

// ANCHOR: write_layer
/// Writes the directory `changes` as a gzip-compressed layer to `out`, and
/// returns its two digests, computed on the way: the tar is hashed as it goes
/// into gzip, the blob as it comes out.
///
/// ```text
/// walk → tar → [sha256: diff_id] → gzip → [sha256: digest, size] → out
/// ```
pub fn write_layer(
    changes: &Path,
    options: &LayerOptions,
    out: impl Write,
) -> Result<LayerDigests> {
    let meta = fs::metadata(changes).with_context(|| format!("reading {}", changes.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", changes.display());
    }
    let blob = HashingWriter::new(out);
    let gzip = flate2::GzBuilder::new()
        .mtime(0)
        .write(blob, flate2::Compression::new(GZIP_LEVEL));
    let mut walk = Walk {
        builder: tar::Builder::new(HashingWriter::new(gzip)),
        options,
        linked: HashMap::new(),
    };
    walk.directory_contents(changes, b"")?;
    let writing = || format!("writing the layer of {}", changes.display());
    let tar = walk.builder.into_inner().with_context(writing)?; // the end blocks
    let diff_id = tar.digest();
    let mut blob = tar.into_inner().finish().with_context(writing)?;
    blob.flush().with_context(writing)?;
    Ok(LayerDigests {
        digest: blob.digest(),
        diff_id,
        size: blob.count,
    })
}
// ANCHOR_END: write_layer

/// [`write_layer`] into `store`: the blob is written to a temporary file in
/// the store's blob directory and named by its digest once complete.
pub fn write_layer_blob(
    store: &Store,
    changes: &Path,
    options: &LayerOptions,
) -> Result<LayerDigests> {
    let mut blob = BlobFile::create(store)?;
    let digests = write_layer(changes, options, &mut blob)?;
    blob.commit(store, &digests.digest)?;
    Ok(digests)
}

/// A writer that hashes and counts what passes through it: chapter 7's
/// `HashingReader`, for the other direction.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    /// Bytes written so far.
    pub(crate) count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// `sha256:…` of everything written.
    pub(crate) fn digest(&self) -> String {
        format!("sha256:{}", digest::hex(&self.hasher.clone().finalize()))
    }

    /// The wrapped writer.
    pub(crate) fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A blob being written into the store as a stream, too large to hold in
/// memory as chapter 7's `write_blob` does: a temporary file in the blob
/// directory, named after this process (so that `Store::clean_abandoned` can
/// tell one a dead process left), that gets its final name in one rename
/// once complete, or is removed when dropped.
pub struct BlobFile {
    file: fs::File,
    path: PathBuf,
    committed: bool,
}

impl BlobFile {
    /// A new, empty temporary blob in `store`.
    pub fn create(store: &Store) -> Result<BlobFile> {
        static TEMPS: AtomicUsize = AtomicUsize::new(0);
        let n = TEMPS.fetch_add(1, Ordering::Relaxed);
        let path = store
            .blob_dir()
            .join(format!(".blob.tmp-{}-{n}", std::process::id()));
        let file =
            fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(BlobFile {
            file,
            path,
            committed: false,
        })
    }

    /// The temporary file, to read back what was written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes the blob to disk and names it `digest`, which the caller has
    /// checked it is.
    pub fn commit(mut self, store: &Store, digest: &str) -> Result<()> {
        let path = store.blob_path(digest)?;
        self.file
            .sync_all()
            .and_then(|()| fs::rename(&self.path, &path))
            .with_context(|| format!("writing {}", path.display()))?;
        self.committed = true;
        Ok(())
    }
}

impl Write for BlobFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for BlobFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// One walk over a directory of changes, writing tar entries as it goes.
struct Walk<'a, W: Write> {
    builder: tar::Builder<W>,
    options: &'a LayerOptions,
    /// Inodes with more than one name, by (device, inode): the name the
    /// first one got in the archive. Later names become hard links to it.
    linked: HashMap<(u64, u64), Vec<u8>>,
}

impl<W: Write> Walk<'_, W> {
    /// Writes the entries of `dir`, whose name in the archive is `prefix`
    /// (empty for the root, else ending in `/`), in byte order of their
    /// names, each directory followed by its contents (as Go's `WalkDir`
    /// goes, and so Docker).
    fn directory_contents(&mut self, dir: &Path, prefix: &[u8]) -> Result<()> {
        let mut names: Vec<OsString> = fs::read_dir(dir)
            .and_then(|entries| entries.map(|e| e.map(|e| e.file_name())).collect())
            .with_context(|| format!("reading {}", dir.display()))?;
        names.sort(); // bytewise: an OsStr compares as its bytes
        for name in names {
            let path = dir.join(&name);
            let inside = [prefix, name.as_bytes()].concat();
            let meta = fs::symlink_metadata(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            if meta.is_dir() {
                let inside = [&inside[..], b"/"].concat();
                self.directory(&path, &meta, &inside)?;
                self.directory_contents(&path, &inside)?;
            } else {
                self.non_directory(&path, &meta, &inside)?;
            }
        }
        Ok(())
    }

    // ANCHOR: markers
    /// A directory, named `inside` (with its slash): its entry, and after it
    /// the opaque marker when overlayfs made the directory opaque (the
    /// container removed the directory and made it again: nothing below it
    /// shows through).
    fn directory(&mut self, path: &Path, meta: &fs::Metadata, inside: &[u8]) -> Result<()> {
        let attrs = Xattrs::read(path, self.options.overlay_xattrs)?;
        refuse_whiteout_name(inside)?;
        let header = self.header(meta, tar::EntryType::Directory);
        self.append(header, inside, None, &attrs.kept, io::empty())?;
        if attrs.overlay(b"opaque").as_deref() == Some(b"y") {
            // Docker's: a regular file with the directory's owner and mode.
            let mut marker = self.header(meta, tar::EntryType::Regular);
            marker.set_mode(meta.mode() & 0o777);
            let name = [inside, OPAQUE_MARKER.as_bytes()].concat();
            self.append(marker, &name, None, &[], io::empty())?;
        }
        Ok(())
    }

    /// Anything but a directory, named `inside`.
    fn non_directory(&mut self, path: &Path, meta: &fs::Metadata, inside: &[u8]) -> Result<()> {
        let attrs = Xattrs::read(path, self.options.overlay_xattrs)?;
        let kind = meta.file_type();
        // A deleted path: overlayfs's whiteout becomes OCI's `.wh.NAME`, an
        // empty file with the whiteout's owner and time (and Docker's mode).
        // overlayfs makes every whiteout a link to one shared inode, so this
        // comes before the hard link check.
        let xattr_whiteout =
            kind.is_file() && meta.len() == 0 && attrs.overlay(b"whiteout").is_some();
        if snapshot::is_whiteout(meta) || xattr_whiteout {
            let (dir, name) = split_name(inside);
            let mut header = self.header(meta, tar::EntryType::Regular);
            header.set_mode(0o600);
            let name = [dir, WHITEOUT_PREFIX.as_bytes(), name].concat();
            return self.append(header, &name, None, &[], io::empty());
        }
        refuse_whiteout_name(inside)?;
        if kind.is_socket() {
            return Ok(()); // a socket is a live process's, not a file's (Docker skips them too)
        }
        if meta.nlink() > 1 {
            match self.linked.get(&(meta.dev(), meta.ino())) {
                Some(first) => {
                    let first = first.clone();
                    let header = self.header(meta, tar::EntryType::Link);
                    return self.append(header, inside, Some(&first), &[], io::empty());
                }
                None => {
                    self.linked
                        .insert((meta.dev(), meta.ino()), inside.to_vec());
                }
            }
        }
        self.content(path, meta, inside, &attrs.kept)
    }
    // ANCHOR_END: markers

    /// A regular file, a symlink, a device or a FIFO, with what it holds.
    fn content(
        &mut self,
        path: &Path,
        meta: &fs::Metadata,
        inside: &[u8],
        xattrs: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<()> {
        let kind = meta.file_type();
        if kind.is_file() {
            let mut header = self.header(meta, tar::EntryType::Regular);
            header.set_size(meta.len());
            let file = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?;
            // The header promised `len` bytes: never more, and fewer is an error.
            let mut data = file.take(meta.len());
            self.append(header, inside, None, xattrs, &mut data)?;
            if data.limit() != 0 {
                bail!("{} shrank while its layer was written", path.display());
            }
            return Ok(());
        }
        let (entry_type, link) = if kind.is_symlink() {
            let target = fs::read_link(path)
                .with_context(|| format!("reading the symlink {}", path.display()))?;
            let target = target.as_os_str().as_bytes().to_vec();
            (tar::EntryType::Symlink, Some(target))
        } else if kind.is_char_device() {
            (tar::EntryType::Char, None)
        } else if kind.is_block_device() {
            (tar::EntryType::Block, None)
        } else if kind.is_fifo() {
            (tar::EntryType::Fifo, None)
        } else {
            bail!("{}: a file of unknown type", path.display());
        };
        let mut header = self.header(meta, entry_type);
        if kind.is_char_device() || kind.is_block_device() {
            let rdev = meta.rdev();
            let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
            header.set_device_major(major as u32)?;
            header.set_device_minor(minor as u32)?;
        }
        self.append(header, inside, link.as_deref(), xattrs, io::empty())
    }

    // ANCHOR: header
    /// An entry's header, from what lstat(2) says, without what would make
    /// two archives of the same tree differ: numeric owners only (no user or
    /// group names: they are the build host's), no access or change time,
    /// the modification time in whole seconds and clamped to
    /// `SOURCE_DATE_EPOCH` when there is one. The mode keeps the permission
    /// bits and setuid, setgid and sticky.
    ///
    /// (The tar crate's `HeaderMode::Deterministic` is not this: it sets
    /// every time to 2006-07-23, every owner to root and every mode to 644 or
    /// 755, which would change what the layer holds.)
    fn header(&self, meta: &fs::Metadata, entry_type: tar::EntryType) -> tar::Header {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(entry_type);
        header.set_mode(meta.mode() & 0o7777);
        header.set_uid(meta.uid().into());
        header.set_gid(meta.gid().into());
        let mtime = u64::try_from(meta.mtime()).unwrap_or(0); // before 1970: 1970
        let mtime = match self.options.source_date_epoch {
            Some(epoch) => mtime.min(epoch),
            None => mtime,
        };
        header.set_mtime(mtime);
        header.set_size(0);
        header
    }
    // ANCHOR_END: header

    /// Appends one entry: `header` under `name`, a link target if it is a
    /// link, the extended attributes `xattrs`, and `data`. What the ustar
    /// header has no room for (a name longer than its fields, a long link
    /// target, the attributes) goes first in a PAX extended header, sorted
    /// by key as Go's archive/tar writes it.
    fn append(
        &mut self,
        mut header: tar::Header,
        name: &[u8],
        link: Option<&[u8]>,
        xattrs: &[(Vec<u8>, Vec<u8>)],
        data: impl Read,
    ) -> Result<()> {
        let mut records: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        if !set_ustar_name(&mut header, name) {
            records.push((b"path".to_vec(), name.to_vec()));
        }
        if let Some(link) = link {
            let field = &mut header.as_old_mut().linkname;
            let shown = &link[..link.len().min(field.len())];
            field[..shown.len()].copy_from_slice(shown);
            if link.len() > field.len() {
                records.push((b"linkpath".to_vec(), link.to_vec()));
            }
        }
        for (key, value) in xattrs {
            records.push(([b"SCHILY.xattr.", &key[..]].concat(), value.clone()));
        }
        records.sort();
        let context = || format!("writing {:?} to the layer", String::from_utf8_lossy(name));
        if !records.is_empty() {
            let pax = pax_records(&records);
            let mut pax_header = tar::Header::new_ustar();
            pax_header.set_entry_type(tar::EntryType::XHeader);
            let (dir, file) = split_name(name);
            let pax_name = [dir, b"PaxHeaders.0/", file].concat();
            let field = &mut pax_header.as_old_mut().name;
            let shown = &pax_name[..pax_name.len().min(field.len())];
            field[..shown.len()].copy_from_slice(shown);
            pax_header.set_mode(0);
            pax_header.set_uid(0);
            pax_header.set_gid(0);
            pax_header.set_mtime(0);
            pax_header.set_size(pax.len() as u64);
            pax_header.set_cksum();
            self.builder
                .append(&pax_header, &pax[..])
                .with_context(context)?;
        }
        header.set_cksum();
        self.builder.append(&header, data).with_context(context)
    }
}

/// Puts `name` in a ustar header: in the 100-byte name field, or split at a
/// `/` into the 155-byte prefix and the name (as Go's `splitUSTARPath`
/// does). False when it fits neither way: then the field keeps its first 100
/// bytes, and a PAX `path` record has the whole name.
fn set_ustar_name(header: &mut tar::Header, name: &[u8]) -> bool {
    let ustar = header.as_ustar_mut().expect("a ustar header");
    let (name_field, prefix_field) = (ustar.name.len(), ustar.prefix.len());
    if name.len() <= name_field {
        ustar.name[..name.len()].copy_from_slice(name);
        return true;
    }
    // The last `/` that leaves at most 155 bytes before it, but not a
    // directory's trailing one.
    let end = (name.len() - 1).min(prefix_field + 1);
    let split = name[..end].iter().rposition(|&b| b == b'/');
    match split {
        Some(i) if i > 0 && name.len() - i - 1 <= name_field => {
            ustar.prefix[..i].copy_from_slice(&name[..i]);
            ustar.name[..name.len() - i - 1].copy_from_slice(&name[i + 1..]);
            true
        }
        _ => {
            ustar.name.copy_from_slice(&name[..name_field]);
            false
        }
    }
}

/// PAX records, `LENGTH KEY=VALUE\n` each, where LENGTH counts the whole
/// record, its own digits included.
fn pax_records(records: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        let rest = key.len() + value.len() + 3; // ' ', '=' and '\n'
        let mut length = rest + rest.to_string().len();
        if length.to_string().len() != rest.to_string().len() {
            length = rest + length.to_string().len(); // 98 + 2 digits is 100: 3 digits
        }
        out.extend_from_slice(format!("{length} ").as_bytes());
        out.extend_from_slice(key);
        out.push(b'=');
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

/// An archive name split into its directory (with the slash) and its last
/// component (a directory's trailing slash stays with it).
fn split_name(name: &[u8]) -> (&[u8], &[u8]) {
    let trimmed = name.strip_suffix(b"/").unwrap_or(name);
    match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => (&name[..=i], &name[i + 1..]),
        None => (&name[..0], name),
    }
}

/// A path whose own name starts with `.wh.` would read as a deletion once in
/// a layer: the OCI format cannot hold one.
fn refuse_whiteout_name(inside: &[u8]) -> Result<()> {
    let (_, name) = split_name(inside);
    if name.starts_with(WHITEOUT_PREFIX.as_bytes()) {
        bail!(
            "refused: {:?}: a name starting with {WHITEOUT_PREFIX} cannot be stored in a layer (it reads as a deletion)",
            String::from_utf8_lossy(inside)
        );
    }
    Ok(())
}

/// The extended attributes of one path, sorted apart.
struct Xattrs {
    /// Those that go into the layer, by name, sorted.
    kept: Vec<(Vec<u8>, Vec<u8>)>,
    /// overlayfs's own, in the namespace of the mount, without the prefix.
    overlay: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Xattrs {
    /// Reads the attributes of `path` (not following a symlink). overlayfs's
    /// own never go into a layer, in either namespace: a layer says the same
    /// with OCI's markers. `security.selinux` does not either: it is the
    /// build host's label for the file, not part of the image (Docker and
    /// containerd leave it out as well).
    ///
    /// Two of overlayfs's attributes mean the upper directory is not a
    /// complete record of the changes, and are refused: `metacopy` (a file
    /// whose data is still in a lower layer) and `redirect` (a directory
    /// renamed from a lower one). Both are off unless the mount asks for them.
    fn read(path: &Path, namespace: OverlayXattrs) -> Result<Xattrs> {
        let context = || format!("reading the extended attributes of {}", path.display());
        let mut names: Vec<OsString> = xattr::list(path).with_context(context)?.collect();
        names.sort();
        let mut found = Xattrs {
            kept: Vec::new(),
            overlay: Vec::new(),
        };
        for name in names {
            let name = name.as_bytes().to_vec();
            let Some(value) =
                xattr::get(path, std::ffi::OsStr::from_bytes(&name)).with_context(context)?
            else {
                continue; // removed since it was listed
            };
            if let Some(own) = name.strip_prefix(namespace.prefix()) {
                if own == b"metacopy" || own == b"redirect" {
                    bail!(
                        "{} has overlayfs's {:?} attribute: the upper directory of an overlay mounted with metacopy or redirect_dir does not hold every change, and cannot become a layer",
                        path.display(),
                        String::from_utf8_lossy(&name)
                    );
                }
                found.overlay.push((own.to_vec(), value));
            } else if !is_overlay_xattr(&name) && name != b"security.selinux" {
                let value = match &name[..] {
                    b"security.capability" => capability_v2(value),
                    _ => value,
                };
                found.kept.push((name, value));
            }
        }
        Ok(found)
    }

    /// The value of overlayfs's attribute `own` (`opaque`, `whiteout`).
    fn overlay(&self, own: &[u8]) -> Option<Vec<u8>> {
        self.overlay
            .iter()
            .find(|(name, _)| name == own)
            .map(|(_, value)| value.clone())
    }
}

fn is_overlay_xattr(name: &[u8]) -> bool {
    [OverlayXattrs::Trusted, OverlayXattrs::User]
        .iter()
        .any(|ns| name.starts_with(ns.prefix()))
}

/// File capabilities as Docker stores them: a version 3 value (written in a
/// user namespace, it names that namespace's root) becomes version 2, which
/// means the same in whatever user namespace the image runs.
fn capability_v2(mut value: Vec<u8>) -> Vec<u8> {
    // `struct vfs_ns_cap_data`: a little-endian u32 whose top byte is the
    // revision (2 or 3), two u32 pairs of capability sets, then (3) rootid.
    const REVISION_BYTE: usize = 3;
    const V2_SIZE: usize = 20;
    if value.len() > V2_SIZE && value[REVISION_BYTE] == 3 {
        value[REVISION_BYTE] = 2;
        value.truncate(V2_SIZE);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        let one = pax_records(&[(b"path".to_vec(), b"a".to_vec())]);
        assert_eq!(one, b"9 path=a\n");
        // 95 bytes of key and value: 98 with the separators, 100 with "98", so
        // the length has three digits: 101.
        let value = vec![b'x'; 91];
        let record = pax_records(&[(b"path".to_vec(), value)]);
        assert_eq!(record.len(), 101);
        assert!(record.starts_with(b"101 path="));
    }

    #[test]
    fn names_split_like_ustar_or_not_at_all() {
        let mut header = tar::Header::new_ustar();
        let long = [&[b'd'; 120][..], b"/", &[b'f'; 50]].concat();
        assert!(set_ustar_name(&mut header, &long));
        assert_eq!(&*header.path_bytes(), &long[..]);
        let dir = [&[b'd'; 120][..], b"/"].concat();
        let mut header = tar::Header::new_ustar();
        assert!(
            !set_ustar_name(&mut header, &dir),
            "a trailing slash is no split point"
        );
        assert_eq!(split_name(b"a/b/"), (&b"a/"[..], &b"b/"[..]));
        assert_eq!(split_name(b"a/b"), (&b"a/"[..], &b"b"[..]));
        assert_eq!(split_name(b"b"), (&b""[..], &b"b"[..]));
    }

    #[test]
    fn version_3_capabilities_become_version_2() {
        let mut v3 = vec![0u8; 24];
        v3[3] = 3;
        v3[4] = 0x20; // CAP_NET_RAW's bit... in the permitted set
        let v2 = capability_v2(v3);
        assert_eq!(v2.len(), 20);
        assert_eq!((v2[3], v2[4]), (2, 0x20));
    }
}
