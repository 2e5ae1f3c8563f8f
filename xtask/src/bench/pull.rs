//! `cargo xtask bench pull` (chapter 7): how fast minibox pulls an image into an
//! empty store, against what other tools take for the same image in the same run.
//!
//! The image is [`harness::images::pull_benchmark`]: about 100 MiB in five gzip
//! layers of realistic content, generated once and cached under
//! `target/bench/`. It is pushed to a registry of our own on 127.0.0.1, and then,
//! in rounds (one warm-up round, then [`RUNS`] measured ones, each tool once per
//! round so that a change in background load hits them all alike), into a fresh,
//! empty store each time:
//!
//! - **minibox**: `ch07-image-pull pull REFERENCE` (a release build, since the
//!   peers are optimized builds too), with its peak RSS from wait4(2).
//! - **minibox, store on tmpfs**: the same pull with `MINIBOX_ROOT` below
//!   /dev/shm: what the client itself costs apart from the disk, which is the
//!   fair comparison with the floor (it writes nothing either). On these VMs the
//!   disk's writeback, not the client, is most of a pull's time.
//! - **skopeo copy + umoci unpack**: download the blobs into an OCI layout, then
//!   unpack it into a runtime bundle; the two commands are timed together.
//! - **podman pull**, with storage, state and configuration of its own.
//! - **the floor**: what any client must do at least with the same bytes, in this
//!   process with the crates chapter 7 uses: sha256 of each compressed layer,
//!   gunzip it, sha256 of the result, in one streaming pass over the layer files
//!   (in the page cache by then). It writes nothing, so it is the floor of the
//!   CPU work on one thread; a client that gunzips two layers at once on two
//!   cores could beat it, and every real pull also pays for creating the files.
//! - for reference: `gzip -dc | sha256sum` (the floor with the usual tools), and
//!   `tar -xzf` of each layer (what creating the files costs here, no digests).
//!
//! Each pull is checked afterwards (not timed): minibox's store, umoci's bundle
//! and tar's directory must hold the image's regular files and bytes, so a no-op
//! cannot look fast. A failed pull fails the benchmark; the targets (minibox ≤
//! 0.5× podman, ≤ 1.5× the floor, peak RSS < 64 MiB) are only reported.
//!
//! Page caches are not dropped between runs (that needs a privilege these
//! machines do not give); every tool reads a registry whose blobs are warm after
//! the warm-up round, which is consistent, if kinder than a cold network. What a
//! run wrote is removed and synced to disk (untimed) before the next run starts.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use harness::images::{self, Blob, Image, Layer};
use sha2::{Digest, Sha256};

use crate::{prereqs, shell};

/// Measured rounds; the median is reported.
const RUNS: usize = 5;

/// Where the generated image is cached. Bump the version when
/// [`images::pull_benchmark`] changes, so that a stale image is never measured.
const IMAGE_CACHE: &str = "pull-image-v1";

/// The repository and tag the image is pushed as.
const REPOSITORY: &str = "bench/app";
const TAG: &str = "latest";

/// The peak-RSS target for minibox, in bytes.
const RSS_TARGET: u64 = 64 << 20;

/// One measured run of one tool.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// From starting the first command to the last one's exit.
    time: Duration,
    /// The largest peak RSS of the commands, when they ran as child processes.
    rss: Option<u64>,
}

/// Pulls once, with the directory given (fresh and empty) for everything it
/// writes.
type PullOnce<'a> = Box<dyn Fn(&Path) -> Result<Sample> + 'a>;

/// A tool being measured: how to pull once into a fresh directory, and what it
/// measured so far.
struct Peer<'a> {
    name: &'static str,
    pull: PullOnce<'a>,
    /// Whether a failure is a finding (minibox) or only means this peer cannot
    /// run on this machine (podman, say), in which case it is left out.
    required: bool,
    samples: Vec<Sample>,
}

/// Runs the benchmark and prints the table.
pub fn pull(root: &Path) -> Result<()> {
    // The floor is measured in this very process, and a debug build of flate2
    // and sha2 is many times slower than an optimized one: it would make every
    // tool look close to the floor. So the benchmark runs in an optimized xtask
    // (generating the image is faster there too).
    if cfg!(debug_assertions) {
        shell::cargo(root, &["build", "--release", "--quiet", "-p", "xtask"])?;
        let xtask = target_dir().join("release/xtask");
        return shell::run(Command::new(xtask).args(["bench", "pull"]));
    }
    prereqs::ensure()?;
    let bench = root.join("target/bench");
    let minibox = build_minibox(root)?;

    let cache = bench.join(IMAGE_CACHE);
    let image = cached_image(&cache)?;
    let registry = harness::registry::Registry::start();
    registry.push(REPOSITORY, TAG, &image);
    let reference = format!("{}/{REPOSITORY}:{TAG}", registry.host());
    // From here on the layers are read from their files: this process must stay
    // small for the children's peak RSS to be their own (see `run_measured`).
    let layers: Vec<LayerFile> = image
        .layers
        .iter()
        .map(|l| LayerFile {
            path: cache.join(blob_file(&l.blob)),
            digest: l.blob.digest.clone(),
            diff_id: l.diff_id.clone(),
        })
        .collect();
    drop(image);
    // SAFETY: malloc_trim only returns free memory to the kernel.
    unsafe { libc::malloc_trim(0) };
    let contents = contents(&layers)?;
    let compressed = layers
        .iter()
        .map(|l| fs::metadata(&l.path).map(|m| m.len()))
        .sum::<std::io::Result<u64>>()
        .context("reading the layers' sizes")?;
    let summary = format!(
        "{} gzip layers, {} compressed, {} in {} files",
        layers.len(),
        mib(compressed),
        mib(contents.bytes),
        contents.files
    );
    eprintln!("xtask: pushed {reference}: {summary}");

    let work = WorkDir::create(bench.join("pull-run"))?;
    let inherited = run_measured(&mut Command::new("true"), &work.path, "true")?.rss;
    let mut peers = Vec::new();
    match &minibox {
        Some(bin) => {
            peers.push(Peer {
                name: "minibox",
                pull: Box::new(|dir| pull_minibox(bin, &reference, &contents, dir)),
                required: true,
                samples: Vec::new(),
            });
            // The same pull with the store in memory: what the client itself
            // costs, apart from the disk (the floor writes nothing either).
            if Path::new(TMPFS).is_dir() {
                peers.push(Peer {
                    name: TMPFS_PEER,
                    pull: Box::new(|dir| pull_minibox_tmpfs(bin, &reference, &contents, dir)),
                    required: false,
                    samples: Vec::new(),
                });
            }
        }
        None => println!(
            "minibox: skipped, chapter 7 does not exist yet (no chapters/ch07-image-pull/Cargo.toml)"
        ),
    }
    if installed(&["skopeo", "umoci"]) {
        peers.push(Peer {
            name: "skopeo copy + umoci unpack",
            pull: Box::new(|dir| pull_skopeo_umoci(&reference, &contents, dir)),
            required: false,
            samples: Vec::new(),
        });
    }
    if installed(&["podman"]) {
        peers.push(Peer {
            name: "podman pull",
            pull: Box::new(|dir| pull_podman(&reference, dir)),
            required: false,
            samples: Vec::new(),
        });
    }
    peers.push(Peer {
        name: "floor: sha256 + gunzip + sha256",
        pull: Box::new(|_| floor(&layers)),
        required: true,
        samples: Vec::new(),
    });
    if installed(&["bash", "gzip", "sha256sum"]) {
        peers.push(Peer {
            name: "gzip -dc | sha256sum",
            pull: Box::new(|dir| shell_floor(&layers, dir)),
            required: false,
            samples: Vec::new(),
        });
    }
    if installed(&["tar", "gzip"]) {
        peers.push(Peer {
            name: "tar -xzf (no digests)",
            pull: Box::new(|dir| tar_extract(&layers, &contents, dir)),
            required: false,
            samples: Vec::new(),
        });
    }

    measure(&mut peers, &work)?;
    drop(registry);
    drop(work);

    report(&reference, &summary, &peers, inherited);
    Ok(())
}

/// The warm-up round and the measured ones: each peer once per round, each in a
/// fresh directory below `work`. Peers that cannot run here are dropped after
/// the warm-up, saying why.
fn measure(peers: &mut Vec<Peer>, work: &WorkDir) -> Result<()> {
    for round in 0..=RUNS {
        let warm_up = round == 0;
        eprintln!(
            "xtask: {}",
            if warm_up {
                "warm-up round".to_string()
            } else {
                format!("round {round} of {RUNS}")
            }
        );
        let mut failed = Vec::new();
        for (index, peer) in peers.iter_mut().enumerate() {
            let dir = work.path.join(format!("{index}-{round}"));
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let result = (peer.pull)(&dir);
            work.remove(&dir)?;
            // What the run wrote and what removing it freed (blocks to discard,
            // on a filesystem mounted with `discard`) goes to disk now, untimed,
            // so the next tool does not pay for this one's leftovers.
            sync_filesystem(&work.path)?;
            match result {
                Ok(sample) if !warm_up => peer.samples.push(sample),
                Ok(_) => {}
                // A peer that cannot run here at all says why once and is left
                // out; one that worked before and fails now is a real failure.
                Err(err) if warm_up && !peer.required => {
                    println!("{}: cannot run here, left out: {err:#}", peer.name);
                    failed.push(index);
                }
                Err(err) => return Err(err.context(format!("{} failed", peer.name))),
            }
        }
        for index in failed.into_iter().rev() {
            peers.remove(index);
        }
    }
    Ok(())
}

/// Builds chapter 7's binary in release mode; `None` while the chapter does not
/// exist yet.
fn build_minibox(root: &Path) -> Result<Option<PathBuf>> {
    if !root.join("chapters/ch07-image-pull/Cargo.toml").exists() {
        return Ok(None);
    }
    shell::cargo(
        root,
        &[
            "build",
            "--release",
            "--quiet",
            "-p",
            "ch07-image-pull",
            "--bin",
            "ch07-image-pull",
        ],
    )?;
    Ok(Some(target_dir().join("release/ch07-image-pull")))
}

/// The target directory this xtask was built in (and builds into): the parent
/// of `debug/` or `release/`.
fn target_dir() -> PathBuf {
    let bin = harness::transcript::bin_dir();
    bin.parent().map(Path::to_path_buf).unwrap_or(bin)
}

/// Whether every program is on `PATH`; says which is not, if one is not.
fn installed(programs: &[&str]) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut all = true;
    for program in programs {
        if !std::env::split_paths(&path).any(|dir| dir.join(program).is_file()) {
            println!("{program}: not installed");
            all = false;
        }
    }
    all
}

/// `ch07-image-pull pull REFERENCE` into an empty store, then a check that the
/// store holds the image's files.
fn pull_minibox(bin: &Path, reference: &str, contents: &Contents, dir: &Path) -> Result<Sample> {
    let store = dir.join("store");
    let sample = run_measured(
        Command::new(bin)
            .args(["pull", reference])
            .env("MINIBOX_ROOT", &store),
        dir,
        "minibox",
    )?;
    let found = Contents::on_disk(&store.join("layers"))?;
    contents.check(&found, "minibox's store (MINIBOX_ROOT/layers)")?;
    Ok(sample)
}

/// Where the tmpfs variant keeps its store.
const TMPFS: &str = "/dev/shm";
/// Its name in the table.
const TMPFS_PEER: &str = "minibox, store on tmpfs";

/// [`pull_minibox`] with `MINIBOX_ROOT` on a tmpfs of our own name below
/// /dev/shm, removed after the check (untimed).
fn pull_minibox_tmpfs(
    bin: &Path,
    reference: &str,
    contents: &Contents,
    dir: &Path,
) -> Result<Sample> {
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    let store = Path::new(TMPFS).join(format!("minibox-bench-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&store);
    let sample = run_measured(
        Command::new(bin)
            .args(["pull", reference])
            .env("MINIBOX_ROOT", &store),
        dir,
        TMPFS_PEER,
    );
    let found = sample
        .as_ref()
        .ok()
        .map(|_| Contents::on_disk(&store.join("layers")));
    let removed = fs::remove_dir_all(&store);
    let sample = sample?;
    contents.check(&found.expect("measured")?, "minibox's store on tmpfs")?;
    removed.with_context(|| format!("removing {}", store.display()))?;
    Ok(sample)
}

/// `skopeo copy` into an OCI layout, then `umoci unpack` into a bundle, then a
/// check that the bundle's root holds the image's files.
fn pull_skopeo_umoci(reference: &str, contents: &Contents, dir: &Path) -> Result<Sample> {
    // Our own policy, so the run does not depend on the host's policy.json.
    let policy = dir.join("policy.json");
    fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .context("writing the signature policy")?;
    let layout = dir.join("oci");
    let bundle = dir.join("bundle");
    let copy = run_measured(
        Command::new("skopeo")
            .arg("--policy")
            .arg(&policy)
            .args(["copy", "--src-tls-verify=false"])
            .arg(format!("docker://{reference}"))
            .arg(format!("oci:{}:{TAG}", layout.display()))
            .env("TMPDIR", dir),
        dir,
        "skopeo",
    )?;
    let unpack = run_measured(
        Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:{TAG}", layout.display()))
            .arg(&bundle)
            .env("TMPDIR", dir),
        dir,
        "umoci",
    )?;
    let found = Contents::on_disk(&bundle.join("rootfs"))?;
    contents.check(&found, "umoci's bundle")?;
    Ok(Sample {
        time: copy.time + unpack.time,
        rss: copy.rss.max(unpack.rss),
    })
}

/// `podman pull` with storage, state and configuration of its own in `dir`.
fn pull_podman(reference: &str, dir: &Path) -> Result<Sample> {
    // Everything podman would otherwise keep in /run/libpod, /dev/shm,
    // /etc/cni/net.d or /var/tmp goes below `dir`, so a run leaves nothing on
    // the host. Pulling needs no cgroups, so the hybrid layout does not matter,
    // and no container runs, so neither do the ulimits.
    for sub in ["tmp", "networks", "copy"] {
        fs::create_dir_all(dir.join(sub)).context("creating podman's directories")?;
    }
    let d = dir.display();
    let conf = format!(
        "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"none\"\n\
         lock_type = \"file\"\ntmp_dir = \"{d}/tmp\"\nimage_copy_tmp_dir = \"{d}/copy\"\n\
         [network]\nnetwork_config_dir = \"{d}/networks\"\n"
    );
    fs::write(dir.join("containers.conf"), conf).context("writing containers.conf")?;
    fs::write(
        dir.join("registries.conf"),
        "unqualified-search-registries = []\n",
    )
    .context("writing registries.conf")?;
    fs::write(
        dir.join("storage.conf"),
        format!(
            "[storage]\ndriver = \"overlay\"\ngraphroot = \"{d}/root\"\nrunroot = \"{d}/run\"\n"
        ),
    )
    .context("writing storage.conf")?;
    fs::write(
        dir.join("policy.json"),
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .context("writing the signature policy")?;
    run_measured(
        Command::new("podman")
            .arg("--root")
            .arg(dir.join("root"))
            .arg("--runroot")
            .arg(dir.join("run"))
            .args(["--storage-driver", "overlay", "pull", "--tls-verify=false"])
            .arg("--signature-policy")
            .arg(dir.join("policy.json"))
            .arg(reference)
            .env("CONTAINERS_CONF", dir.join("containers.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", dir.join("registries.conf"))
            .env("CONTAINERS_STORAGE_CONF", dir.join("storage.conf"))
            .env("TMPDIR", dir.join("copy")),
        dir,
        "podman",
    )
}

/// A layer blob in the image cache, and the digests it must match.
struct LayerFile {
    path: PathBuf,
    /// Of the compressed bytes.
    digest: String,
    /// Of the uncompressed tar.
    diff_id: String,
}

/// The floor: for each layer, sha256 of the compressed bytes, gunzip, sha256 of
/// the tar, both checked against the image's digests, on one thread, in one
/// pass over the bytes as a streaming client does. The blobs are read from
/// their files, which are in the page cache by then, much as a client reads
/// them from a socket.
fn floor(layers: &[LayerFile]) -> Result<Sample> {
    let start = Instant::now();
    let mut buffer = vec![0; 256 << 10];
    for layer in layers {
        let file =
            File::open(&layer.path).with_context(|| format!("opening {}", layer.path.display()))?;
        let blob = HashingReader {
            inner: file,
            hasher: Sha256::new(),
        };
        let mut gunzip =
            flate2::bufread::GzDecoder::new(std::io::BufReader::with_capacity(256 << 10, blob));
        let mut tar = Sha256::new();
        loop {
            let n = gunzip.read(&mut buffer).context("gunzip")?;
            if n == 0 {
                break;
            }
            tar.update(&buffer[..n]);
        }
        // Whatever follows the gzip stream is part of the blob, and its digest.
        let mut blob = gunzip.into_inner();
        std::io::copy(&mut blob, &mut std::io::sink()).context("reading the layer")?;
        let digest = format!("sha256:{}", hex(&blob.into_inner().hasher.finalize()));
        ensure!(
            digest == layer.digest,
            "{}: digest mismatch",
            layer.path.display()
        );
        let diff_id = format!("sha256:{}", hex(&tar.finalize()));
        ensure!(
            diff_id == layer.diff_id,
            "{}: diff_id mismatch",
            layer.path.display()
        );
    }
    Ok(Sample {
        time: start.elapsed(),
        rss: None,
    })
}

/// A reader that hashes what passes through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// The same work with the usual command-line tools, for reference.
fn shell_floor(layers: &[LayerFile], dir: &Path) -> Result<Sample> {
    run_measured(
        Command::new("bash")
            .args([
                "-o",
                "pipefail",
                "-ec",
                r#"for f in "$@"; do sha256sum "$f"; gzip -dc "$f" | sha256sum; done >/dev/null"#,
                "floor",
            ])
            .args(layers.iter().map(|l| &l.path)),
        dir,
        "shell",
    )
}

/// Extracting the layers with tar(1), for reference: what creating the image's
/// files costs on this machine, which the floor leaves out (and no digests).
fn tar_extract(layers: &[LayerFile], contents: &Contents, dir: &Path) -> Result<Sample> {
    let rootfs = dir.join("rootfs");
    fs::create_dir(&rootfs).context("creating the rootfs")?;
    let sample = run_measured(
        Command::new("bash")
            .args([
                "-ec",
                r#"cd "$1"; shift; for f in "$@"; do tar -xzf "$f"; done"#,
                "extract",
            ])
            .arg(&rootfs)
            .args(layers.iter().map(|l| &l.path)),
        dir,
        "tar",
    )?;
    contents.check(&Contents::on_disk(&rootfs)?, "tar's rootfs")?;
    Ok(sample)
}

/// syncfs(2) on the filesystem that holds `dir`.
fn sync_filesystem(dir: &Path) -> Result<()> {
    let handle = File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    // SAFETY: the descriptor is open for the duration of the call.
    if unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&handle)) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("syncing the filesystem of {}", dir.display()));
    }
    Ok(())
}

/// Runs `command` to completion with stdin from /dev/null and its output in
/// files in `dir`; returns the time from spawn to exit and the peak RSS
/// (`ru_maxrss` of the rusage wait4(2) reports for the child). Fails, showing
/// the output, unless it exits 0.
///
/// std starts children with posix_spawn(3), whose child shares this process's
/// memory until it execs; at exec the kernel records this process's peak RSS as
/// the child's starting peak. So our own peak is first reset to what we use now
/// (small: the image is on disk, not in memory), and the benchmark reports that
/// inherited amount, measured with `true`, beside the table.
fn run_measured(command: &mut Command, dir: &Path, name: &str) -> Result<Sample> {
    fs::write("/proc/self/clear_refs", "5").context("resetting our own peak RSS")?;
    let stdout_path = dir.join(format!("{name}.stdout"));
    let stderr_path = dir.join(format!("{name}.stderr"));
    let stdout = File::create(&stdout_path).context("creating the stdout file")?;
    let stderr = File::create(&stderr_path).context("creating the stderr file")?;
    command.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
    let shown = shell::show(command);
    let start = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("cannot start `{shown}`"))?;
    let pid = libc::pid_t::try_from(child.id()).context("pid out of range")?;
    let mut raw_status = 0;
    // SAFETY: rusage is a plain C struct of integers, for which all zeroes is a
    // valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are to live locals of the right types, and `pid`
        // is our own child, which nothing else waits for (std's Child does not
        // wait on drop).
        let ret = unsafe { libc::wait4(pid, &mut raw_status, 0, &mut usage) };
        if ret == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).with_context(|| format!("waiting for `{shown}`"));
        }
    }
    let time = start.elapsed();
    let status = ExitStatus::from_raw(raw_status);
    if !status.success() {
        let out = fs::read_to_string(&stdout_path).unwrap_or_default();
        let err = fs::read_to_string(&stderr_path).unwrap_or_default();
        bail!("`{shown}` failed ({status})\n--- stdout\n{out}--- stderr\n{err}");
    }
    // Linux reports ru_maxrss in KiB.
    let rss = u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024;
    Ok(Sample {
        time,
        rss: Some(rss),
    })
}

/// How many regular files an image or a directory tree holds, and their bytes.
#[derive(Debug, Clone, Copy, Default)]
struct Contents {
    files: u64,
    bytes: u64,
}

impl Contents {
    /// The regular files in `dir` and below, symlinks not followed.
    fn on_disk(dir: &Path) -> Result<Contents> {
        let mut total = Contents::default();
        let mut dirs = vec![dir.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            let entries =
                fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?;
            for entry in entries {
                let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
                let kind = entry.file_type().context("file type")?;
                if kind.is_dir() {
                    dirs.push(entry.path());
                } else if kind.is_file() {
                    total.files += 1;
                    total.bytes += entry.metadata().context("metadata")?.len();
                }
            }
        }
        Ok(total)
    }

    /// Fails unless `found` has at least these files and bytes. At least, not
    /// exactly: a store may keep files of its own beside the layers' (markers,
    /// metadata), but a pull that did not extract everything has fewer.
    fn check(&self, found: &Contents, what: &str) -> Result<()> {
        // Said once per place checked, not once per run.
        static NOTED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        let mut noted = NOTED.lock().unwrap_or_else(|e| e.into_inner());
        if (found.files != self.files || found.bytes != self.bytes)
            && !noted.iter().any(|w| w == what)
        {
            noted.push(what.to_string());
            eprintln!(
                "xtask: note: {what} holds {} regular files of {} bytes, the image {} of {}",
                found.files, found.bytes, self.files, self.bytes
            );
        }
        ensure!(
            found.files >= self.files && found.bytes >= self.bytes,
            "{what} holds {} regular files of {} bytes, the image {} of {} bytes: \
             the pull did not extract the image",
            found.files,
            found.bytes,
            self.files,
            self.bytes
        );
        Ok(())
    }
}

/// The regular files the image's layers hold, read from the layers themselves.
fn contents(layers: &[LayerFile]) -> Result<Contents> {
    let mut total = Contents::default();
    for layer in layers {
        let file =
            File::open(&layer.path).with_context(|| format!("opening {}", layer.path.display()))?;
        let mut tar = tar::Archive::new(flate2::bufread::GzDecoder::new(std::io::BufReader::new(
            file,
        )));
        for entry in tar.entries().context("reading a layer")? {
            let entry = entry.context("reading a layer entry")?;
            if entry.header().entry_type().is_file() {
                total.files += 1;
                total.bytes += entry.size();
            }
        }
    }
    Ok(total)
}

/// The benchmark image, generated once into `dir` and read from it afterwards.
fn cached_image(dir: &Path) -> Result<Image> {
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
    let image = images::pull_benchmark();
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

/// Reads back what [`cached_image`] wrote, checking every digest.
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
fn blob_file(blob: &Blob) -> String {
    blob.digest.replace(':', "-")
}

/// The benchmark's working directory, emptied when created and removed when
/// dropped, whatever happened in between.
struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    fn create(path: PathBuf) -> Result<WorkDir> {
        let work = WorkDir { path };
        work.remove(&work.path)?;
        fs::create_dir_all(&work.path)
            .with_context(|| format!("creating {}", work.path.display()))?;
        Ok(work)
    }

    /// Removes `dir` (inside the working directory), unmounting first whatever
    /// is mounted below it: only mounts a tool we started made there (podman's
    /// overlay driver may leave its storage directory bind-mounted), never any
    /// other.
    fn remove(&self, dir: &Path) -> Result<()> {
        assert!(dir.starts_with(&self.path), "only our own directories");
        for mount in mounts_below(dir)? {
            let path = std::ffi::CString::new(mount.as_os_str().as_encoded_bytes())
                .context("a mount point with a NUL byte")?;
            // SAFETY: `path` is a valid NUL-terminated string for the call's
            // duration. MNT_DETACH, because a busy mount must still go.
            if unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } != 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("unmounting {}", mount.display()));
            }
        }
        match fs::remove_dir_all(dir) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                Err(err).with_context(|| format!("removing {}", dir.display()))
            }
            _ => Ok(()),
        }
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(err) = self.remove(&self.path) {
            eprintln!("xtask: cleaning up: {err:#}");
        }
    }
}

/// The mount points at or below `dir`, deepest first (the order to unmount
/// them in), from /proc/self/mountinfo.
fn mounts_below(dir: &Path) -> Result<Vec<PathBuf>> {
    let info = fs::read_to_string("/proc/self/mountinfo").context("reading mountinfo")?;
    let mut mounts: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .filter(|mount| mount.starts_with(dir))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
    Ok(mounts)
}

/// mountinfo writes space, tab, newline and backslash in paths as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .and_then(|digits| u8::from_str_radix(std::str::from_utf8(digits).ok()?, 8).ok());
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Prints the table and the targets.
fn report(reference: &str, summary: &str, peers: &[Peer], inherited: Option<u64>) {
    let median = |peer: &Peer| -> Duration {
        let mut times: Vec<Duration> = peer.samples.iter().map(|s| s.time).collect();
        times.sort();
        times[times.len() / 2]
    };
    let find = |prefix: &str| {
        peers
            .iter()
            .find(|p| p.name.starts_with(prefix))
            .map(median)
    };
    let (podman, floor) = (find("podman"), find("floor"));
    println!();
    println!("pull {reference} into an empty store: {summary}");
    println!(
        "median of {RUNS} runs after a warm-up round; peak RSS is the largest of the runs, \
         and no less than the {} a child inherits here",
        inherited.map(mib).unwrap_or_default()
    );
    println!(
        "{:<32} {:>10} {:>19} {:>9} {:>8} {:>10}",
        "", "median", "min – max", "× podman", "× floor", "peak RSS"
    );
    let ratio = |a: Duration, b: Option<Duration>| match b {
        Some(b) => format!("{:.2}", a.as_secs_f64() / b.as_secs_f64()),
        None => "-".to_string(),
    };
    for peer in peers {
        let time = median(peer);
        let min = peer
            .samples
            .iter()
            .map(|s| s.time)
            .min()
            .unwrap_or_default();
        let max = peer
            .samples
            .iter()
            .map(|s| s.time)
            .max()
            .unwrap_or_default();
        let rss = peer
            .samples
            .iter()
            .filter_map(|s| s.rss)
            .max()
            .map(mib)
            .unwrap_or_else(|| "-".to_string());
        println!(
            "{:<32} {:>10} {:>19} {:>9} {:>8} {:>10}",
            peer.name,
            ms(time),
            format!("{} – {}", ms(min), ms(max)),
            ratio(time, podman),
            ratio(time, floor),
            rss
        );
    }
    println!();
    let minibox = peers.iter().find(|p| p.name == "minibox");
    let verdict = |met: Option<bool>, value: String| match met {
        Some(true) => format!("met ({value})"),
        Some(false) => format!("MISSED ({value})"),
        None => "not measured".to_string(),
    };
    let time = minibox.map(median);
    let vs = |other: Option<Duration>, target: f64| {
        let r = time
            .zip(other)
            .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64());
        verdict(r.map(|r| r <= target), format!("{:.2}×", r.unwrap_or(0.0)))
    };
    println!("minibox ≤ 0.5× podman: {}", vs(podman, 0.5));
    println!("minibox ≤ 1.5× floor: {}", vs(floor, 1.5));
    if let Some(tmpfs) = peers.iter().find(|p| p.name == TMPFS_PEER)
        && !tmpfs.samples.is_empty()
    {
        let r = floor.map(|f| median(tmpfs).as_secs_f64() / f.as_secs_f64());
        println!(
            "minibox, store on tmpfs, ≤ 1.5× floor: {}",
            verdict(r.map(|r| r <= 1.5), format!("{:.2}×", r.unwrap_or(0.0)))
        );
    }
    let rss = minibox.and_then(|p| p.samples.iter().filter_map(|s| s.rss).max());
    println!(
        "peak RSS < 64 MiB: {}",
        verdict(
            rss.map(|r| r < RSS_TARGET),
            rss.map(mib).unwrap_or_default()
        )
    );
}

fn ms(time: Duration) -> String {
    format!("{:.0} ms", time.as_secs_f64() * 1000.0)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
