//! What the steps that make a layer do: a `RUN` is a container of chapter
//! 10's, made from the image so far, whose writable layer becomes the next
//! layer; a `COPY`, an `ADD` or a `WORKDIR` changes the files through an
//! overlay of the image so far ([`crate::filesystem`]). Either way the
//! changes are an overlayfs upper directory, which [`store_layer`] turns
//! into a layer in the store, as if it had been pulled.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::Result;
use ch01_fork_exec::exit::Exit;
use ch03_uts_namespace::id;
use ch06_rootfs_snapshot::snapshot;
use ch07_image_pull::extract;
use ch07_image_pull::image::{Found, layer_dirs};
use ch07_image_pull::store::Store as ImageStore;
use ch10_runtime::attach::Attach;
use ch10_runtime::create;
use ch10_runtime::start::{self, Follow};
use ch10_runtime::state::{self, Store};
use ch10_runtime::terminal::DetachKeys;

use crate::filesystem::{self, Workspace};
use crate::image::{Image, LAYER_GZIP, Layer, LayerBlob};
use crate::layer::{self, LayerOptions, OverlayXattrs};

/// What every step needs to know of the build.
pub struct Build<'a> {
    /// `MINIBOX_ROOT`: images, layers, containers.
    pub root: &'a Path,
    /// Chapter 7's store in it.
    pub images: &'a ImageStore,
    /// The time every image and history entry is said to be created at.
    pub created: String,
    /// `SOURCE_DATE_EPOCH`: no file time in a layer is later than it.
    pub epoch: Option<i64>,
    /// The network of `RUN`'s containers (`--network`).
    pub network: String,
    /// `-q`: the steps' output is not shown.
    pub quiet: bool,
}

/// A `RUN`: `command` (already the whole argv: the shell's words for the
/// shell form) in a container of the image so far, with `env` added to the
/// image's environment.
pub struct Run<'a> {
    /// The argv.
    pub command: &'a [String],
    /// `KEY=VALUE`: the build arguments the step sees.
    pub env: &'a [String],
}

// ANCHOR: run
/// Runs a `RUN` step as a container of chapter 10's, made from `image`,
/// its output on our terminal; returns the layer of what it changed (none
/// when it changed nothing). A failure is Docker's line with the code.
pub fn run(build: &Build, image: &Image, step: &Run) -> Result<Option<Layer>> {
    let mut image = image.clone();
    let record = image.commit(build.images, &build.created)?;
    let found = Found {
        layers: layer_dirs(build.images, &record)?,
        record,
    };
    let defaults = image.run_config()?;
    let config =
        crate::cli::run_step(&found.record.config, &build.network, step.env, step.command)?;
    let containers = Store::new(build.root, &state::run_dir());
    let container = create::from_image(&containers, &config, &found, &defaults)?;
    let keys = DetachKeys::default();
    let how = Attach {
        interactive: false,
        tty: false,
        keys: &keys,
    };
    let ended = if build.quiet {
        let _silenced = Silenced::new()?;
        start::launch(&containers, build.root, &container, Follow::Attached(how))
    } else {
        let short = id::short(&container.id);
        ch01_fork_exec::narrate::print(format_args!(" ---> Running in {short}"))?;
        start::launch(&containers, build.root, &container, Follow::Attached(how))
    };
    let upper = containers.container_dir(&container.id).join("upper");
    let layer = match ended {
        Ok(Some(Exit::Code(0))) => store_layer(build, &upper),
        Ok(exit) => Err(failed(step.command, exit)),
        Err(error) => Err(error),
    };
    containers.remove(&container.id)?;
    layer
}
// ANCHOR_END: run

/// Docker's words for a `RUN` that failed.
fn failed(command: &[String], exit: Option<Exit>) -> anyhow::Error {
    let code = match exit {
        Some(Exit::Code(code)) => code,
        Some(Exit::Signal(signal)) => 128 + signal as i32,
        None => -1,
    };
    anyhow::anyhow!(
        "The command '{}' returned a non-zero code: {code}",
        command.join(" ")
    )
}

/// A `COPY`, an `ADD` or a `WORKDIR`: `change` on the image's files (see
/// [`filesystem::change`]), with `sources` (other images' layers) mounted
/// read-only beside them; the layer of what it changed, if anything.
pub fn change_files(
    build: &Build,
    image: &Image,
    sources: &[filesystem::ReadOnly],
    change: impl FnOnce(&Path, &[PathBuf]) -> Result<()>,
) -> Result<Option<Layer>> {
    let workspace = Workspace::new(build.root)?;
    let record_layers: Vec<PathBuf> = image
        .layers
        .iter()
        .map(|l| build.images.layer_dir(&l.diff_id))
        .collect::<Result<_>>()?;
    let upper = filesystem::change(&workspace, &record_layers, sources, change)?;
    store_layer(build, &upper)
}

// ANCHOR: store_layer
/// Turns the overlayfs upper directory `changes` into a layer: the
/// compressed tar written as a blob, then unpacked into the store's layers
/// exactly as a pull unpacks one, so that the next step's overlay finds it
/// where it finds every other layer. Nothing changed, no layer.
pub fn store_layer(build: &Build, changes: &Path) -> Result<Option<Layer>> {
    if filesystem::is_empty(changes)? {
        return Ok(None);
    }
    let images = build.images;
    let options = LayerOptions {
        source_date_epoch: build.epoch.map(|e| e.max(0) as u64),
        // The RUN step's overlay was mounted by this process: in a user
        // namespace (chapter 13), with `userxattr`.
        overlay_xattrs: match snapshot::in_user_namespace() {
            true => OverlayXattrs::User,
            false => OverlayXattrs::Trusted,
        },
    };
    let written = layer::write_layer_blob(images, changes, &options)?;
    if !images.has_layer(&written.diff_id)? {
        let partial = images.begin_layer()?;
        let unpacked = File::open(images.blob_path(&written.digest)?)
            .map(flate2::read::GzDecoder::new)
            .map_err(anyhow::Error::from)
            .and_then(|gzip| extract::unpack(gzip, &partial.join("fs")));
        match unpacked {
            Ok(unpacked) => images.commit_layer(&partial, &written.diff_id, unpacked.size)?,
            Err(error) => {
                let _ = fs::remove_dir_all(&partial);
                return Err(error.context("unpacking the new layer"));
            }
        }
    }
    Ok(Some(Layer {
        blob: LayerBlob {
            media_type: LAYER_GZIP.to_string(),
            digest: written.digest,
            size: written.size,
        },
        diff_id: written.diff_id,
    }))
}
// ANCHOR_END: store_layer

/// `-q`: our stdout and stderr point at `/dev/null` while it lives, so that
/// a `RUN`'s output, which its monitor hands to them, is not shown.
struct Silenced {
    saved: [std::os::fd::OwnedFd; 2],
}

impl Silenced {
    fn new() -> Result<Silenced> {
        use std::os::fd::AsFd;
        let null = File::options().write(true).open("/dev/null")?;
        let saved = [
            std::io::stdout().as_fd().try_clone_to_owned()?,
            std::io::stderr().as_fd().try_clone_to_owned()?,
        ];
        nix::unistd::dup2_stdout(&null)?;
        nix::unistd::dup2_stderr(&null)?;
        Ok(Silenced { saved })
    }
}

impl Drop for Silenced {
    fn drop(&mut self) {
        let _ = nix::unistd::dup2_stdout(&self.saved[0]);
        let _ = nix::unistd::dup2_stderr(&self.saved[1]);
    }
}
