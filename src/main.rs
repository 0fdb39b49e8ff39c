//! The binary: parse arguments, wire configuration, map the outcome to an
//! exit status. All work happens in the library.

use clap::Parser;
use portwarden::cli::{BaselineCommand, Cli, Command, PolicyCommand, RegistryCommand};
use portwarden::commands;
use portwarden::config::Config;
use portwarden::exit::Exit;
use portwarden::registry::Registry;
use portwarden::sanitize::sanitize;
use std::io::Write;
use std::process::ExitCode;

fn run(cli: Cli, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let config = Config::from_env(cli.color, cli.registry.clone());
    let exit = match &cli.command {
        None => commands::list::run(&config, &cli.list, out)?,
        Some(Command::List(args)) => commands::list::run(&config, args, out)?,
        Some(Command::Port(args)) => commands::port::run(&config, args, out)?,
        Some(Command::Registry(RegistryCommand::Info { json })) => {
            let registry = Registry::resolve(config.registry.as_deref())?;
            commands::registry::info(&registry, *json, out)?;
            Exit::Ok
        }
        Some(Command::Registry(RegistryCommand::Update { from })) => {
            commands::registry::update(from.as_deref(), out)?;
            Exit::Ok
        }
        Some(Command::Check(args)) => {
            // Registry errors happen inside the scan, so that with
            // --format nagios they too become an UNKNOWN plugin line.
            let mut scan = || commands::scan(&Registry::resolve(config.registry.as_deref())?);
            commands::check::run(args, config.policy_env.as_deref(), &mut scan, out)?
        }
        Some(Command::Baseline(BaselineCommand::Save { path })) => {
            let mut scan = || commands::scan(&Registry::resolve(config.registry.as_deref())?);
            commands::baseline::save(path.as_deref(), &mut scan, out, &mut std::io::stderr())?;
            Exit::Ok
        }
        Some(Command::Policy(PolicyCommand::Init { path, force })) => {
            let mut scan = || commands::scan(&Registry::resolve(config.registry.as_deref())?);
            commands::policy::init(path.as_deref(), *force, &mut scan, out)?;
            Exit::Ok
        }
        Some(Command::Watch(args)) => {
            // Resolve the registry once: a bad one fails before the first round.
            let registry = Registry::resolve(config.registry.as_deref())?;
            let mut scan = || commands::scan(&registry);
            commands::watch::run(&config, args, &mut scan, out)?
        }
    };
    Ok(exit)
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                Exit::Error.code()
            } else {
                0
            });
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match run(cli, &mut out) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = out.flush();
            // Library errors already name their cause: print the top one only,
            // or an OS error would appear twice.
            eprintln!("portwarden: {}", sanitize(&e.to_string()));
            ExitCode::from(Exit::Error.code())
        }
    }
}
