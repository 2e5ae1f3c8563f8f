//! The benchmark image: generated deterministically (see [`generate`]),
//! cached under `target/bench/` and read back with every digest checked. It
//! lives here, not in the test harness, because only this benchmark uses it:
//! the chapters' tests need not compile it.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use harness::images::{self, Blob, Image, LAYER_GZIP, Layer, sha256};

/// Where the generated image is cached. Bump the version when [`generate`]
/// changes, so that a stale image is never measured.
pub(super) const CACHE: &str = "pull-image-v1";

/// The benchmark image, generated once into `dir` and read from it afterwards.
pub(super) fn cached(dir: &Path) -> Result<Image> {
    if dir.join(".complete").exists() {
        match load_image(dir) {
            Ok(image) => return Ok(image),
            Err(err) => eprintln!("xtask: regenerating {}: {err:#}", dir.display()),
        }
    }
    eprintln!(
        "xtask: generating the benchmark image into {}",
        dir.display()
    );
    let start = Instant::now();
    let image = generate();
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for blob in std::iter::once(&image.config)
        .chain(image.layers.iter().map(|l| &l.blob))
        .chain([&image.manifest])
    {
        fs::write(dir.join(blob_file(blob)), &blob.bytes)
            .with_context(|| format!("writing {}", blob.digest))?;
    }
    fs::write(dir.join("manifest"), &image.manifest.digest).context("writing the manifest name")?;
    fs::write(dir.join(".complete"), "").context("writing the stamp")?;
    eprintln!("xtask: generated in {:.1} s", start.elapsed().as_secs_f64());
    Ok(image)
}

/// The image the benchmark pulls: about 100 MiB uncompressed in five
/// gzip layers shaped like an application image (an OS base, shared libraries,
/// a language runtime, the application's dependencies, the application itself),
/// about 5,900 files of varied sizes (most of a few KiB, a dozen of several
/// MiB) in about 500 directories, and some symlinks. The content compresses the
/// way real files do, so gunzip and extraction cost what they cost in a real
/// pull: prose and source code well, executables and libraries less,
/// already-compressed assets (images, fonts) not at all; about 2.2:1 overall,
/// 45 MiB of gzip. Every path is unique across the layers, so the merged root
/// has as many regular files as the layers together.
///
/// Deterministic (a seeded generator, fixed times): the same bytes, and so the
/// same digests, on every machine and every run.
pub(super) fn generate() -> Image {
    use std::collections::BTreeSet;

    /// splitmix64: small, fast and good enough to make content look random.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        /// A number in `0..n`.
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        /// A number in `0.0..1.0`.
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
        /// An index in `0..n` skewed towards 0, as word frequencies are
        /// (a few words are most of any text), which is what makes text compress.
        /// Plain multiplications, which IEEE 754 makes the same everywhere.
        fn skewed(&mut self, n: usize) -> usize {
            let u = self.unit();
            ((n as f64) * u * u * u) as usize
        }
        /// A size in `min..=max`, about log-uniform: an octave of the range
        /// uniformly, then a size within it. Integers only, so the sizes (and
        /// the digests) do not depend on the platform's `pow`.
        fn size(&mut self, min: usize, max: usize) -> usize {
            let octaves = (0..).find(|&n| min << n >= max).unwrap_or(0).max(1);
            // `low` < `max`: `octaves` is the first doubling that reaches it.
            let low = min << self.below(octaves);
            low + self.below(low.min(max.saturating_sub(low) + 1))
        }
    }

    /// What a file's bytes look like, which decides how well they compress.
    #[derive(Clone, Copy)]
    enum Kind {
        /// Documentation, licences, configuration: sentences of words.
        Text,
        /// Source code: indented lines of identifiers and punctuation.
        Code,
        /// Executables and libraries: a small "instruction set" of byte
        /// sequences, mixed with addresses, zero padding and strings.
        Binary,
        /// Already-compressed data: random bytes.
        Random,
    }

    /// Files of one kind in one part of the tree: sizes drawn about
    /// log-uniformly from `min..=max` (many small files, a few big ones) until
    /// `budget` bytes are used.
    struct Group {
        dir: &'static str,
        extension: &'static str,
        kind: Kind,
        mode: u32,
        min: usize,
        max: usize,
        budget: usize,
    }

    const KIB: usize = 1 << 10;
    const MIB: usize = 1 << 20;
    const fn group(
        dir: &'static str,
        extension: &'static str,
        kind: Kind,
        mode: u32,
        (min, max): (usize, usize),
        budget: usize,
    ) -> Group {
        Group {
            dir,
            extension,
            kind,
            mode,
            min,
            max,
            budget,
        }
    }
    use Kind::*;
    // One line per group reads as a table; rustfmt would give each eight.
    #[rustfmt::skip]
    let layers: [&[Group]; 5] = [
        // An OS base, like debian:bookworm-slim's.
        &[
            group("usr/bin", "", Binary, 0o755, (8 * KIB, 1536 * KIB), 9 * MIB),
            group("usr/lib/x86_64-linux-gnu", ".so", Binary, 0o644, (16 * KIB, 3 * MIB), 10 * MIB),
            group("usr/share/doc", "", Text, 0o644, (256, 40 * KIB), 5 * MIB),
            group("usr/share/locale", ".mo", Text, 0o644, (2 * KIB, 200 * KIB), 3 * MIB),
            group("etc", ".conf", Text, 0o644, (64, 8 * KIB), MIB),
        ],
        // Shared libraries and their headers.
        &[
            group("usr/lib/x86_64-linux-gnu", ".so", Binary, 0o644, (32 * KIB, 6 * MIB), 20 * MIB),
            group("usr/include", ".h", Code, 0o644, (256, 60 * KIB), 5 * MIB),
        ],
        // A language runtime and its standard library.
        &[
            group("usr/lib/python3.11", ".py", Code, 0o644, (256, 120 * KIB), 16 * MIB),
            group("usr/lib/python3.11/lib-dynload", ".so", Binary, 0o644, (16 * KIB, 800 * KIB), 5 * MIB),
            group("usr/lib/python3.11/__pycache__", ".pyc", Binary, 0o644, (256, 60 * KIB), 4 * MIB),
        ],
        // The application's dependencies.
        &[
            group("app/node_modules", ".js", Code, 0o644, (128, 200 * KIB), 9 * MIB),
            group("app/node_modules", ".woff2", Random, 0o644, (KIB, 500 * KIB), 6 * MIB),
            group("app/node_modules", ".json", Text, 0o644, (64, 4 * KIB), 2 * MIB),
        ],
        // The application.
        &[
            group("app/src", ".js", Code, 0o644, (256, 50 * KIB), 2 * MIB),
            group("app/static", ".jpg", Random, 0o644, (10 * KIB, MIB), 5 * MIB / 2),
            group("app/config", ".yaml", Text, 0o644, (64, 4 * KIB), MIB / 2),
        ],
    ];

    let mut rng = Rng(0x6d69_6e69_626f_7821); // "minibox!"
    const SYLLABLES: &[&str] = &[
        "ka", "lo", "mi", "ne", "ru", "ta", "se", "po", "di", "an", "er", "in", "on", "ur", "bal",
        "cor", "dex", "fin", "gar", "hul", "jis", "ket", "lum", "mor", "nix", "pel", "qua", "ros",
        "sta", "tri", "vel", "wen", "xor", "yth", "zen", "str", "buf", "ptr",
    ];
    let words: Vec<String> = (0..4096)
        .map(|_| {
            (0..1 + rng.below(4))
                .map(|_| SYLLABLES[rng.below(SYLLABLES.len())])
                .collect()
        })
        .collect();
    let instructions: Vec<Vec<u8>> = (0..1024)
        .map(|_| (0..2 + rng.below(11)).map(|_| rng.next() as u8).collect())
        .collect();

    let fill = |rng: &mut Rng, kind: Kind, size: usize| -> Vec<u8> {
        let mut out = Vec::with_capacity(size + 64);
        while out.len() < size {
            match kind {
                Text => {
                    let n = 4 + rng.below(12);
                    for i in 0..n {
                        let word = words[rng.skewed(words.len())].as_bytes();
                        if i == 0 {
                            // A sentence starts with a capital (the words are ASCII).
                            out.push(word[0].to_ascii_uppercase());
                            out.extend(&word[1..]);
                        } else {
                            out.push(b' ');
                            out.extend(word);
                        }
                    }
                    out.extend(if rng.below(5) == 0 { ".\n\n" } else { ".\n" }.bytes());
                }
                Code => {
                    out.extend(std::iter::repeat_n(b' ', 4 * rng.below(4)));
                    const PUNCTUATION: &[&str] =
                        &[" = ", "(", ")", ".", ", ", ": ", " + ", "[", "]"];
                    for _ in 0..2 + rng.below(7) {
                        out.extend(words[rng.skewed(words.len())].bytes());
                        if rng.below(8) == 0 {
                            out.extend(rng.below(1000).to_string().bytes());
                        }
                        out.extend(PUNCTUATION[rng.skewed(PUNCTUATION.len())].bytes());
                    }
                    out.push(b'\n');
                }
                Binary => match rng.below(20) {
                    0..=13 => out.extend(&instructions[rng.skewed(instructions.len())]),
                    14..=17 => out.extend((0..1 + rng.below(8)).map(|_| rng.next() as u8)),
                    18 => out.extend(std::iter::repeat_n(0, 1 + rng.below(32))),
                    _ => {
                        out.extend(words[rng.below(words.len())].bytes());
                        out.push(0);
                    }
                },
                Random => out.extend(rng.next().to_le_bytes()),
            }
        }
        out.truncate(size);
        out
    };

    let mut serial = 0;
    let layers = layers
        .iter()
        .enumerate()
        .map(|(index, groups)| {
            let mut tar = tar::Builder::new(Vec::new());
            let mut made = BTreeSet::new();
            let header = |kind: tar::EntryType, mode: u32, size: usize| {
                let mut header = tar::Header::new_gnu();
                header.set_entry_type(kind);
                header.set_mode(mode);
                header.set_size(size as u64);
                header.set_uid(0);
                header.set_gid(0);
                header.set_mtime(1_700_000_000);
                header
            };
            // A directory entry for `dir` and each of its parents not yet in the
            // tar, parents first, as tar(1) writes them.
            let mut mkdir = |tar: &mut tar::Builder<Vec<u8>>, dir: &str| {
                for (end, _) in dir.match_indices('/').chain([(dir.len(), "")]) {
                    let parent = &dir[..end];
                    if made.insert(parent.to_string()) {
                        let mut h = header(tar::EntryType::Directory, 0o755, 0);
                        tar.append_data(&mut h, format!("{parent}/"), std::io::empty())
                            .expect("tar");
                    }
                }
            };
            if index == 0 {
                // Debian's merged /usr: the top-level directories are symlinks.
                for name in ["bin", "lib", "sbin"] {
                    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                    tar.append_link(&mut h, name, format!("usr/{name}"))
                        .expect("tar");
                }
            }
            for group in groups.iter() {
                let mut left = group.budget;
                let mut dir = String::new();
                let mut in_dir = 0;
                while left > 0 {
                    // Files come in directories of a few to a few dozen, some
                    // nested one level deeper, like packages' files do.
                    if in_dir == 0 {
                        dir = format!("{}/{}", group.dir, words[rng.below(words.len())]);
                        if rng.below(3) == 0 {
                            dir = format!("{dir}/{}", words[rng.below(words.len())]);
                        }
                        in_dir = 3 + rng.below(30);
                        mkdir(&mut tar, &dir);
                    }
                    in_dir -= 1;
                    let size = rng.size(group.min, group.max).min(left);
                    left -= size;
                    serial += 1;
                    let name = format!(
                        "{dir}/{}{serial}{}",
                        words[rng.skewed(words.len())],
                        group.extension
                    );
                    let content = fill(&mut rng, group.kind, size);
                    let mut h = header(tar::EntryType::Regular, group.mode, size);
                    tar.append_data(&mut h, &name, &content[..]).expect("tar");
                    // Libraries come with a symlink to them now and then, as
                    // `libfoo.so.1 -> libfoo.so.1.2.3` do.
                    if group.extension == ".so" && rng.below(4) == 0 {
                        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                        let target = name.rsplit('/').next().expect("a file name");
                        tar.append_link(&mut h, format!("{name}.link"), target)
                            .expect("tar");
                    }
                }
            }
            let tar = tar.into_inner().expect("tar");
            let diff_id = sha256(&tar);
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(&tar).expect("gzip");
            Layer {
                blob: Blob::new(LAYER_GZIP, gz.finish().expect("gzip")),
                diff_id,
            }
        })
        .collect();
    images::image(layers, &["/app/src/start"])
}

/// Reads back what [`cached`] wrote, checking every digest.
fn load_image(dir: &Path) -> Result<Image> {
    let read_blob = |media_type: &str, digest: &str| -> Result<Blob> {
        let path = dir.join(digest.replace(':', "-"));
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let blob = Blob::new(media_type, bytes);
        ensure!(
            blob.digest == digest,
            "{} does not match its digest",
            path.display()
        );
        Ok(blob)
    };
    let name = fs::read_to_string(dir.join("manifest")).context("reading the manifest name")?;
    let manifest = read_blob(images::MANIFEST, name.trim())?;
    let parsed: serde_json::Value =
        serde_json::from_slice(&manifest.bytes).context("parsing the manifest")?;
    let digest = |descriptor: &serde_json::Value| -> Result<String> {
        Ok(descriptor["digest"]
            .as_str()
            .context("a descriptor without a digest")?
            .to_string())
    };
    let config = read_blob(images::CONFIG, &digest(&parsed["config"])?)?;
    let config_json: serde_json::Value =
        serde_json::from_slice(&config.bytes).context("parsing the config")?;
    let diff_ids = config_json["rootfs"]["diff_ids"]
        .as_array()
        .context("a config without diff_ids")?;
    let descriptors = parsed["layers"]
        .as_array()
        .context("a manifest without layers")?;
    ensure!(
        descriptors.len() == diff_ids.len(),
        "layers and diff_ids differ in number"
    );
    let layers = descriptors
        .iter()
        .zip(diff_ids)
        .map(|(descriptor, diff_id)| {
            Ok(Layer {
                blob: read_blob(images::LAYER_GZIP, &digest(descriptor)?)?,
                diff_id: diff_id
                    .as_str()
                    .context("a diff_id that is not a string")?
                    .into(),
            })
        })
        .collect::<Result<_>>()?;
    Ok(Image {
        config,
        layers,
        manifest,
    })
}

/// The file a blob is cached in: its digest, with `-` for `:`.
pub(super) fn blob_file(blob: &Blob) -> String {
    blob.digest.replace(':', "-")
}
