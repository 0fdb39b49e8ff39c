//! The binary: parse arguments, wire configuration, map the outcome to an exit status.

use clap::Parser;
use portwarden::cli::Cli;

fn main() {
    let _cli = Cli::parse();
}
