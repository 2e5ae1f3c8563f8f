//! A rootless container's default network: its own network namespace,
//! connected to the host's by a user-mode stack ([`crate::usernet`]).
use anyhow::{Result, bail};
use ch09_networking::network::NetworkConfig;
use ch10_runtime::privileges::PreparedNetwork;

/// Prepares the user-mode network of `config`.
pub fn prepare(_config: &NetworkConfig) -> Result<Box<dyn PreparedNetwork>> {
    bail!("(being written)")
}
