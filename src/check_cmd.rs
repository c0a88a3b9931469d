//! `kzsim check`: judge recorded histories.

use clap::Args;

/// Arguments of `kzsim check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// History files.
    pub files: Vec<std::path::PathBuf>,
}

/// Runs the command; returns the exit code.
pub fn run(_args: CheckArgs) -> anyhow::Result<u8> {
    anyhow::bail!("kzsim check is not implemented yet")
}
