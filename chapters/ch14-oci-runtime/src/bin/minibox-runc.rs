//! Chapter 14's `minibox-runc`: runc's command line, so that podman,
//! Docker and containerd can run their containers with minibox.

use std::process::ExitCode;

use ch14_oci_runtime::{cli, log, runtime};

fn main() -> ExitCode {
    let cli = cli::parse();
    match runtime::act(cli) {
        Ok(exit) => ExitCode::from(exit.status()),
        Err(error) => {
            log::error(&format!("{error:#}"));
            ExitCode::from(1)
        }
    }
}
