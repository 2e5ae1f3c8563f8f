//! `cargo xtask registry start`: the fixture images on a registry of their own,
//! for a classroom (or a learner) that works offline. Students point minibox at
//! it with `MINIBOX_REGISTRY_MIRROR=HOST:PORT`, as Docker's `registry-mirrors`
//! does, once chapter 7 pulls images. Runs until Ctrl-C, then removes everything.

use std::path::Path;

use anyhow::{Result, anyhow};
use harness::registry::Registry;

/// Starts the registry, pushes the fixtures, and waits for Ctrl-C.
pub fn start(root: &Path, address: &str, port: u16) -> Result<()> {
    crate::fixtures::prepare(root)?;
    let registry = Registry::start_on(address, port);
    let names = registry.push_fixtures().map_err(|e| anyhow!(e))?;
    println!("The fixture registry listens on {address}:{port}, with:");
    for name in names {
        println!("  {name}:latest");
    }
    // minibox speaks plain HTTP without being told only to loopback
    // registries (Docker's rule); a classroom's machines need the http:// form
    // and this machine's own address, which 0.0.0.0 is not.
    let mirror = if address.starts_with("127.") || address == "localhost" {
        format!("{address}:{port}")
    } else if address == "0.0.0.0" {
        format!("http://THIS-MACHINES-ADDRESS:{port}")
    } else {
        format!("http://{address}:{port}")
    };
    println!("\nPoint minibox at it (chapter 7 on):\n  export MINIBOX_REGISTRY_MIRROR={mirror}");
    println!("\nCtrl-C stops it and removes its storage.");
    wait_for_interrupt();
    drop(registry);
    Ok(())
}

/// Blocks until SIGINT or SIGTERM arrives.
fn wait_for_interrupt() {
    // SAFETY: sigset operations on a local, zero-initialised set; sigwait only
    // reads it. Blocking the two signals first makes sigwait receive them
    // instead of their default action ending the process before cleanup.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let mut signal = 0;
        libc::sigwait(&set, &mut signal);
    }
}
