//! The binary: parse arguments, wire configuration, map the outcome to an exit status.

use clap::Parser;
use portwarden::cli::{Cli, Command, RegistryCommand};
use portwarden::registry::Registry;
use portwarden::{commands, Error};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portwarden: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> Result<(), Error> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match &cli.command {
        Some(Command::Port(args)) => {
            let registry = Registry::resolve(cli.registry.as_deref())?;
            // No scan yet on this branch: the lead wires crate::scan here.
            commands::port::run(&registry, &args.query, args.json, None, &mut out)
        }
        Some(Command::Registry(RegistryCommand::Info { json })) => {
            let registry = Registry::resolve(cli.registry.as_deref())?;
            commands::registry::info(&registry, *json, &mut out)
        }
        Some(Command::Registry(RegistryCommand::Update { from })) => {
            commands::registry::update(from.as_deref(), &mut out)
        }
        _ => Ok(()),
    }
}
