//! What chapter 11's `minibox` does with its command line: `build`, `push`,
//! `save` and `load` here, everything else as chapter 10.

use anyhow::Result;
use ch01_fork_exec::exit::{Exit, FailsWith};

use ch06_rootfs_snapshot::snapshot::minibox_root;
use ch07_image_pull::store::Store as ImageStore;

use crate::{build, push};
use crate::cli::Command;

/// Does what the command line asked for. Like Docker's, the image commands
/// exit with 1 when they fail.
pub fn act(command: Command) -> Result<Exit> {
    let fails_with_1 = |error| FailsWith { status: 1, error }.into();
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
        Command::Save(_) | Command::Load(_) => Err(fails_with_1(anyhow::anyhow!("not yet"))),
        Command::Runtime(command) => ch10_runtime::run::act(command.into_action()?),
    }
}
