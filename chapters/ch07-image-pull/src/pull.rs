//! A pull, start to finish: from a reference to layers unpacked in the store.
//!
//! ```text
//! GET /v2/                       → 401 + challenge    (registry::Client::ping)
//! GET token?scope=…:pull         → token              (registry::Client::authorize)
//! HEAD /v2/NAME/manifests/TAG    → its digest: stored already? then no GETs
//! GET /v2/NAME/manifests/TAG     → index or manifest  (registry::Client::manifest)
//! GET /v2/NAME/manifests/DIGEST  → this platform's manifest
//! GET /v2/NAME/blobs/CONFIG      → config: the layers' diff_ids
//! GET /v2/NAME/blobs/LAYER × n   → streamed: sha256 → gunzip → sha256 → untar
//! ```
//!
//! Layers download in parallel, three at a time as Docker does, each
//! streamed through both digests and unpacked on the fly: one pass over the
//! bytes, a fixed amount of memory however large the layer. A download that
//! breaks goes on where it stopped ([`BlobReader`]).

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};

use crate::digest::{self, HashingReader};
use crate::oci::{self, Descriptor, Fetched, ImageConfig, Manifest, Platform};
use crate::platform::WantedPlatform;
use crate::progress::{LayerLine, Output, Progress, say};
use crate::reference::Reference;
use crate::registry::{Client, Endpoint, endpoint};
use crate::store::{ImageRecord, Store};
use crate::{extract, platform, retry};

/// How many layers download at once (Docker's `max-concurrent-downloads`).
pub const CONCURRENT_DOWNLOADS: usize = 3;

/// What the pull did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Something new was stored.
    Downloaded,
    /// The store already had exactly this image.
    UpToDate,
}

// ANCHOR: pull
/// Pulls `image` for `wanted` into `store`, reporting on `output`.
pub fn pull(
    store: &Store,
    client: &Client,
    image: &Reference,
    wanted: &WantedPlatform,
    output: Output,
) -> Result<(ImageRecord, Outcome)> {
    store.clean_abandoned();
    let endpoint = endpoint(image);
    let what = image
        .tag
        .as_deref()
        .or(image.digest.as_deref())
        .unwrap_or("");
    say(
        output,
        &format!("{what}: Pulling from {}", image.repository),
    );

    // 1. The manifest the reference names; for a multi-platform image, an
    //    index, and then the manifest of the platform we want.
    let notice = |text: &str| say(output, &format!("{what}: {text}"));
    let (bytes, content_type, digest) = fetch_manifest(
        store,
        client,
        &endpoint,
        image,
        image.manifest_reference(),
        &notice,
    )?;
    let mut documents = vec![(digest.clone(), bytes.clone())];
    let (manifest, manifest_digest) = match oci::parse_manifest(&content_type, &bytes)? {
        Fetched::Manifest(manifest) => (manifest, digest.clone()),
        Fetched::Index(index) => {
            let entry = platform::choose(&index.manifests, &wanted.platform)?;
            let (bytes, content_type, digest) =
                fetch_manifest(store, client, &endpoint, image, &entry.digest, &notice)?;
            documents.push((digest.clone(), bytes.clone()));
            match oci::parse_manifest(&content_type, &bytes)? {
                Fetched::Manifest(manifest) => (manifest, digest),
                Fetched::Index(_) => bail!("the index entry {} is another index", entry.digest),
            }
        }
    };

    // 2. The config: what the layers are once uncompressed.
    let config_bytes = fetch_config(store, client, &endpoint, image, &manifest.config)?;
    let config: ImageConfig =
        serde_json::from_slice(&config_bytes).context("reading the image config")?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        bail!(
            "the manifest lists {} layers but the config {}",
            manifest.layers.len(),
            config.rootfs.diff_ids.len()
        );
    }
    let offered = Platform {
        os: config.os.clone(),
        architecture: config.architecture.clone(),
        variant: config.variant.clone(),
    };
    if !wanted.named
        && !config.architecture.is_empty()
        && !platform::matches(&wanted.platform, &offered)
    {
        say(
            output,
            &format!(
                "WARNING: The requested image's platform ({}) does not match the detected host platform ({}) and no specific platform was requested",
                platform::display(&offered),
                platform::display(&wanted.platform)
            ),
        );
    }

    // 3. The layers we lack, in parallel; then the documents that point at them.
    let downloaded = fetch_layers(store, client, &endpoint, image, &manifest, &config, output)?;
    for (digest, bytes) in &documents {
        store.write_blob(digest, bytes)?;
    }
    let record = ImageRecord {
        digest: digest.clone(),
        manifest: manifest_digest,
        config: manifest.config.digest.clone(),
        diff_ids: config.rootfs.diff_ids.clone(),
        platform: platform::display(&offered),
    };
    let canonical = image.canonical();
    let outcome = if downloaded == 0 && store.image(&canonical)?.as_ref() == Some(&record) {
        Outcome::UpToDate
    } else {
        store.tag(&canonical, record.clone())?;
        Outcome::Downloaded
    };
    say(output, &format!("Digest: {digest}"));
    match outcome {
        Outcome::UpToDate => say(output, &format!("Status: Image is up to date for {image}")),
        Outcome::Downloaded => say(
            output,
            &format!("Status: Downloaded newer image for {image}"),
        ),
    }
    Ok((record, outcome))
}
// ANCHOR_END: pull

/// A manifest or an index: from the store when it has the digest `reference`
/// names (a digest, or what a `HEAD` of the tag says it points at now), else
/// from the registry. A pull of an image that has not changed thus makes no
/// `GET` of a manifest, which is what Docker Hub's pull limit counts. The
/// store's blobs were verified when they were written.
fn fetch_manifest(
    store: &Store,
    client: &Client,
    endpoint: &Endpoint,
    image: &Reference,
    reference: &str,
    notice: &dyn Fn(&str),
) -> Result<(Vec<u8>, String, String)> {
    let current = if reference.starts_with("sha256:") {
        Some(reference.to_string())
    } else {
        client.manifest_digest(endpoint, image, reference, notice)
    };
    if let Some(digest) = current
        && let Some(bytes) = store.read_blob(&digest)?
    {
        // No Content-Type: the document says what it is.
        return Ok((bytes, String::new(), digest));
    }
    client.manifest(endpoint, image, reference, notice)
}

/// The config blob, from the store if it has it, else from the registry
/// (verified before it is stored).
fn fetch_config(
    store: &Store,
    client: &Client,
    endpoint: &Endpoint,
    image: &Reference,
    descriptor: &Descriptor,
) -> Result<Vec<u8>> {
    if let Some(bytes) = store.read_blob(&descriptor.digest)? {
        return Ok(bytes);
    }
    let mut response = client.blob(endpoint, image, &descriptor.digest, 0, &|_| {})?;
    let bytes = crate::registry::read_limited(response.body_mut(), 16 << 20)?;
    store
        .write_blob(&descriptor.digest, &bytes)
        .context("the image config")?;
    Ok(bytes)
}

// ANCHOR: fetch_layers
/// Downloads and unpacks every layer the store lacks, [`CONCURRENT_DOWNLOADS`]
/// at a time. Returns how many it fetched. The first failure stops the others
/// from starting new layers and is the error returned.
fn fetch_layers(
    store: &Store,
    client: &Client,
    endpoint: &Endpoint,
    image: &Reference,
    manifest: &Manifest,
    config: &ImageConfig,
    output: Output,
) -> Result<usize> {
    let layers: Vec<(&Descriptor, &String)> = manifest
        .layers
        .iter()
        .zip(&config.rootfs.diff_ids)
        .collect();
    let mut listing = Vec::new();
    for (descriptor, diff_id) in &layers {
        digest::hex_part(&descriptor.digest).context("a layer in the manifest")?;
        let have = store.has_layer(diff_id)?;
        listing.push(LayerLine {
            short_id: digest::short(&descriptor.digest).to_string(),
            size: descriptor.size,
            present: have,
        });
    }
    let progress = Progress::start(output, &listing);
    let todo: Vec<usize> = (0..layers.len()).filter(|&i| !listing[i].present).collect();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let errors = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..CONCURRENT_DOWNLOADS.min(todo.len()) {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let Some(&i) = todo.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    match fetch_layer(store, client, endpoint, image, layers[i], &progress, i) {
                        Ok(()) => progress.complete(i),
                        Err(error) => {
                            progress.fail(i);
                            failed.store(true, Ordering::Relaxed);
                            errors.lock().expect("lock").push((i, error));
                        }
                    }
                }
            });
        }
    });
    let mut errors = errors.into_inner().expect("lock");
    errors.sort_by_key(|(i, _)| *i);
    match errors.into_iter().next() {
        Some((i, error)) => Err(error.context(format!("layer {}", listing[i].short_id))),
        None => Ok(todo.len()),
    }
}
// ANCHOR_END: fetch_layers

// ANCHOR: fetch_layer
/// One layer (its descriptor and diff_id): download, verify both digests
/// while unpacking into a `.partial` directory, and only then give it its
/// final name. Its line is `progress`'s `i`th.
fn fetch_layer(
    store: &Store,
    client: &Client,
    endpoint: &Endpoint,
    image: &Reference,
    (descriptor, diff_id): (&Descriptor, &String),
    progress: &Progress,
    i: usize,
) -> Result<()> {
    let on_bytes = |n| progress.advance(i, n);
    let notice = |text: &str| progress.retrying(i, text);
    let partial = store.begin_layer()?;
    let result = (|| {
        let body = BlobReader::open(client, endpoint, image, descriptor, &notice)?;
        // Never more than the manifest promised: one byte over is enough to
        // know the registry is wrong.
        let body = Counting {
            inner: body.take(descriptor.size + 1),
            on_bytes: &on_bytes,
        };
        // The compressed bytes are kept too, as the blob a push or a save
        // sends on unchanged (chapter 11): unpacking cannot be undone into
        // the same bytes.
        let kept = partial.join("blob");
        let copy = File::create(&kept).with_context(|| format!("creating {}", kept.display()))?;
        let mut compressed = HashingReader::new(Tee { inner: body, copy });
        let unpacked = unpack_stream(&mut compressed, &partial.join("fs"));
        // Whatever happened, read to the end: if the bytes were not what the
        // digest promises, that is the error to report, not the gzip or tar
        // error that corrupted bytes caused on the way.
        io::copy(&mut compressed, &mut io::sink()).context("downloading")?;
        if compressed.count != descriptor.size {
            bail!(
                "the registry sent {} bytes, the manifest says {}",
                compressed.count,
                descriptor.size
            );
        }
        digest::verify(
            "the layer's download",
            &descriptor.digest,
            &compressed.digest(),
        )?;
        let (unpacked, tar_digest) = unpacked?;
        digest::verify(
            "the layer's uncompressed content (its diff_id)",
            diff_id,
            &tar_digest,
        )?;
        for warning in &unpacked.warnings {
            progress.line(&format!("WARNING: {warning}"));
        }
        let blob = store.blob_path(&descriptor.digest)?;
        fs::rename(&kept, &blob).with_context(|| format!("storing {}", blob.display()))?;
        store.commit_layer(&partial, diff_id, unpacked.size)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    result
}

/// Decompresses (gzip, zstd, or none: told by the first bytes, as Docker does,
/// rather than trusting the media type) and unpacks; returns the unpacked size
/// and the digest of the uncompressed tar. (Chapter 11's `load` unpacks the
/// layers of an archive with it.)
pub fn unpack_stream(
    compressed: &mut impl Read,
    dest: &std::path::Path,
) -> Result<(extract::Unpacked, String)> {
    let mut buffered = BufReader::with_capacity(256 << 10, compressed);
    let magic = buffered.fill_buf().context("downloading")?.to_vec();
    let decoder: Box<dyn Read + '_> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
    } else if magic.starts_with(&ZSTD_MAGIC)
        || magic
            .get(..4)
            .is_some_and(|m| is_skippable(m.try_into().expect("4 bytes")))
    {
        Box::new(Zstd {
            state: Some(ZstdState::Between(buffered)),
        })
    } else {
        Box::new(buffered)
    };
    let mut tar = HashingReader::new(decoder);
    let unpacked = extract::unpack(&mut tar, dest).context("unpacking")?;
    // The tar format ends with zero blocks the reader may not have needed:
    // they are part of the digest.
    io::copy(&mut tar, &mut io::sink()).context("unpacking")?;
    Ok((unpacked, tar.digest()))
}
// ANCHOR_END: fetch_layer

/// The first bytes of a zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Whether `magic` (4 bytes, little-endian) starts a zstd *skippable* frame:
/// 0x184D2A50 to 0x184D2A5F. A decoder skips such a frame's bytes; zstd:chunked
/// layers (podman and buildah's `--compression-format zstd:chunked`) keep their
/// table of contents in them, at the end.
fn is_skippable(magic: [u8; 4]) -> bool {
    u32::from_le_bytes(magic) & 0xffff_fff0 == 0x184d_2a50
}

/// A zstd stream of one or more frames (a compressor may write several, one
/// after another, and skippable frames among them), decoded as one.
struct Zstd<R: BufRead> {
    /// Between frames, the input; inside one, the frame's decoder, which owns
    /// the input until the frame ends. `None` only after an error.
    state: Option<ZstdState<R>>,
}

/// A frame's input: its magic number, read to tell the kind of frame, put
/// back in front of the rest.
type FrameInput<R> = io::Chain<io::Cursor<[u8; 4]>, R>;

enum ZstdState<R: BufRead> {
    Between(R),
    // Boxed: a frame decoder is large, the input small.
    InFrame(Box<ruzstd::decoding::StreamingDecoder<FrameInput<R>, ruzstd::decoding::FrameDecoder>>),
}

impl<R: BufRead> Read for Zstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.state.take() {
                None => return Err(io::Error::other("the zstd stream failed earlier")),
                Some(ZstdState::InFrame(mut frame)) => {
                    let n = frame.read(buf)?;
                    if n > 0 || buf.is_empty() {
                        self.state = Some(ZstdState::InFrame(frame));
                        return Ok(n);
                    }
                    // This frame is done: the input goes on to the next one, if any.
                    let (_magic, input) = frame.into_inner().into_inner();
                    self.state = Some(ZstdState::Between(input));
                }
                Some(ZstdState::Between(mut input)) => {
                    if input.fill_buf()?.is_empty() {
                        self.state = Some(ZstdState::Between(input));
                        return Ok(0);
                    }
                    let mut magic = [0; 4];
                    input.read_exact(&mut magic)?;
                    if is_skippable(magic) {
                        // A little-endian length, then that many bytes to skip.
                        let mut length = [0; 4];
                        input.read_exact(&mut length)?;
                        let length = u64::from(u32::from_le_bytes(length));
                        let skipped = io::copy(&mut (&mut input).take(length), &mut io::sink())?;
                        if skipped != length {
                            return Err(io::ErrorKind::UnexpectedEof.into());
                        }
                        self.state = Some(ZstdState::Between(input));
                        continue;
                    }
                    let input = io::Cursor::new(magic).chain(input);
                    let frame = ruzstd::decoding::StreamingDecoder::new(input).map_err(|e| {
                        io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}"))
                    })?;
                    self.state = Some(ZstdState::InFrame(Box::new(frame)));
                }
            }
        }
    }
}

/// A blob's bytes as one stream, whatever happens to the connections under
/// it. When a read fails, or the connection ends before the descriptor's
/// `size` (a dropped connection, a stall past the read timeout), it waits,
/// asks the registry for the rest (`Range: bytes=RECEIVED-`) and goes on, up
/// to [`retry::ATTEMPTS`] times. Those reading it (the digest, gunzip, tar)
/// never notice, and nothing is downloaded twice when the registry does
/// ranges (Docker resumes from its partial file the same way).
struct BlobReader<'a> {
    client: &'a Client,
    endpoint: &'a Endpoint,
    image: &'a Reference,
    descriptor: &'a Descriptor,
    /// The current connection's body.
    body: ureq::BodyReader<'static>,
    /// Bytes passed on so far.
    received: u64,
    /// Broken connections so far.
    failures: u32,
    /// Where "Retrying in N seconds" goes.
    notice: &'a dyn Fn(&str),
}

impl<'a> BlobReader<'a> {
    fn open(
        client: &'a Client,
        endpoint: &'a Endpoint,
        image: &'a Reference,
        descriptor: &'a Descriptor,
        notice: &'a dyn Fn(&str),
    ) -> Result<BlobReader<'a>> {
        let response = client.blob(endpoint, image, &descriptor.digest, 0, notice)?;
        Ok(BlobReader {
            client,
            endpoint,
            image,
            descriptor,
            body: response.into_body().into_reader(),
            received: 0,
            failures: 0,
            notice,
        })
    }

    /// A new connection that starts at byte `self.received`.
    fn resume(&mut self) -> Result<()> {
        let from = self.received;
        let response = self.client.blob(
            self.endpoint,
            self.image,
            &self.descriptor.digest,
            from,
            self.notice,
        )?;
        let whole = response.status() == 200; // no ranges here: skip what we have
        self.body = response.into_body().into_reader();
        if whole {
            let skipped = io::copy(&mut (&mut self.body).take(from), &mut io::sink())?;
            if skipped != from {
                bail!("the registry sent {skipped} bytes, fewer than before");
            }
        }
        Ok(())
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let complete = self.received >= self.descriptor.size;
            let error = match self.body.read(buf) {
                Ok(0) if !complete && !buf.is_empty() => {
                    io::Error::new(io::ErrorKind::UnexpectedEof, "the connection closed early")
                }
                Ok(n) => {
                    self.received += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Everything is in: the end of this connection is no concern.
                Err(_) if complete => return Ok(0),
                Err(e) => e,
            };
            self.failures += 1;
            if self.failures >= retry::ATTEMPTS {
                return Err(error);
            }
            let delay = retry::backoff(self.failures);
            (self.notice)(&format!(
                "{} ({error} after {} of {} bytes)",
                retry::message(delay),
                self.received,
                self.descriptor.size
            ));
            std::thread::sleep(delay);
            self.resume()
                .map_err(|e| io::Error::other(format!("{e:#}")))?;
        }
    }
}

/// Counts bytes as they pass, for the progress bars.
/// A reader that writes a copy of what it reads into `copy`.
struct Tee<R> {
    inner: R,
    copy: File,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

struct Counting<'a, R, F> {
    inner: R,
    on_bytes: &'a F,
}

impl<R: Read, F: Fn(u64)> Read for Counting<'_, R, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.on_bytes)(n as u64);
        Ok(n)
    }
}
