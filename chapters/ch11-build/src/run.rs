//! What chapter 11's `minibox` does with its command line: `build`, `push`,
//! `save` and `load` here, everything else as chapter 10.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use ch01_fork_exec::exit::{Exit, FailsWith};
use ch01_fork_exec::narrate;
use ch07_image_pull::reference::Reference;

use ch06_rootfs_snapshot::snapshot::minibox_root;
use ch07_image_pull::store::Store as ImageStore;

use crate::cli::Command;
use crate::{build, layout, push};

/// Does what the command line asked for. Like Docker's, the image commands
/// exit with 1 when they fail.
pub fn act(command: Command) -> Result<Exit> {
    let fails_with_1 = |error| -> anyhow::Error { FailsWith { status: 1, error }.into() };
    match command {
        Command::Build(args) => {
            build::build(&args.options()?).map_err(fails_with_1)?;
            Ok(Exit::Code(0))
        }
        Command::Push(args) => {
            let store = ImageStore::open(&minibox_root())?;
            push::push(&store, &args.image, args.quiet).map_err(fails_with_1)?;
            Ok(Exit::Code(0))
        }
        Command::Save(args) => {
            save(&args.images, &args.output).map_err(fails_with_1)?;
            Ok(Exit::Code(0))
        }
        Command::Load(args) => {
            let store = ch07_image_pull::image::open_for_pull(&minibox_root())?;
            let file = File::open(&args.input)
                .with_context(|| format!("open {}", args.input.display()))
                .map_err(fails_with_1)?;
            for name in layout::load(&store, BufReader::new(file)).map_err(fails_with_1)? {
                if !args.quiet {
                    narrate::print(format_args!("Loaded image: {name}"))?;
                }
            }
            Ok(Exit::Code(0))
        }
        Command::Runtime(command) => ch10_runtime::run::act(command.into_action()?),
    }
}

/// `minibox save -o FILE IMAGE...`: into a temporary file beside `output`,
/// renamed when complete, so that a failure leaves no half archive.
fn save(images: &[String], output: &Path) -> Result<()> {
    let store = ImageStore::open(&minibox_root())?;
    let mut references = Vec::new();
    for image in images {
        references.push(Reference::parse(image)?);
    }
    let name = output.file_name().unwrap_or_default().to_string_lossy();
    let temp = output.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let written = (|| -> Result<()> {
        let mut out = BufWriter::new(File::create(&temp)?);
        layout::save(&store, &references, &mut out)?;
        out.flush()?;
        fs::rename(&temp, output)?;
        Ok(())
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written.with_context(|| format!("saving to {}", output.display()))
}
