//! `sentrace config`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use sentrace_server::Config;
use sentrace_server::config::DEFAULT_TOML;

/// Configuration subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Print the full default configuration, commented.
    Default,
    /// Check a configuration file and report the first error with its line.
    Check {
        /// The file.
        file: PathBuf,
    },
}

/// Runs a config subcommand.
pub fn run(c: Command) -> anyhow::Result<ExitCode> {
    match c {
        Command::Default => {
            print!("{DEFAULT_TOML}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let cfg = Config::from_toml(&text, &file.display().to_string())?;
            // Exactly the checks `serve` makes before it starts.
            sentrace_server::preflight(&cfg)?;
            println!("{}: ok", file.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
