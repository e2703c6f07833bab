//! The `retrobridge` command: `run`, `generate-registration`, `check-config`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use retrobridge::config::LoadedConfig;
use retrobridge::fronts::matrix::registration::Registration;
use retrobridge::networks::NetworkOptions;

#[derive(Parser)]
#[command(version, about = "A Matrix bridge for ICQ, MSN Messenger and mig33")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bridge until SIGINT or SIGTERM.
    Run {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Write the appservice registration (with fresh tokens) for the homeserver.
    GenerateRegistration {
        #[arg(short, long)]
        config: PathBuf,
        /// Where to write it (default: the config's `appservice.registration`, which is
        /// where `run` reads the tokens from).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Replace an existing registration (the homeserver must then be restarted).
        #[arg(long)]
        force: bool,
    },
    /// Validate the configuration and exit (status 2 on errors).
    CheckConfig {
        #[arg(short, long)]
        config: PathBuf,
    },
}

/// The config, then each network's `options` in it: `check-config` and `run` refuse both
/// alike.
fn load(path: &std::path::Path) -> Result<(LoadedConfig, NetworkOptions), ExitCode> {
    LoadedConfig::load(path)
        .and_then(|config| NetworkOptions::read(&config).map(|options| (config, options)))
        .map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(2)
        })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { config } => match load(&config) {
            Ok(_) => {
                println!("{}: OK", config.display());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::GenerateRegistration {
            config,
            output,
            force,
        } => {
            let (loaded, _) = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let Some(default_path) = loaded
                .config
                .appservice
                .as_ref()
                .map(|a| a.registration.clone())
            else {
                eprintln!(
                    "error: {}: the config has no Matrix front (homeserver and appservice blocks): \
                     there is nothing to register",
                    config.display()
                );
                return ExitCode::from(2);
            };
            let path = output.unwrap_or(default_path);
            if path.exists() && !force {
                eprintln!(
                    "error: {} already exists, and the homeserver may know its tokens. To replace it \
                     with fresh tokens, run again with --force, then restart the homeserver so it \
                     loads the new file.",
                    path.display()
                );
                return ExitCode::FAILURE;
            }
            let result = Registration::generate(&loaded).and_then(|r| r.write(&path));
            match result {
                Ok(()) => {
                    println!(
                        "wrote {path} (mode 0640: its tokens are secret).\n\
                         Now give it to the homeserver: add {path} to Synapse's app_service_config_files, \
                         let the homeserver's user read it (e.g. `chgrp synapse {path}`), and restart \
                         the homeserver: it reads registrations only at start-up.",
                        path = path.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: cannot write {}: {e}", path.display());
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run { config } => {
            let (loaded, options) = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            retrobridge::app::init_logging(&loaded);
            tracing::info!("retrobridge {} starting", env!("CARGO_PKG_VERSION"));
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            match runtime.block_on(retrobridge::app::run(loaded, options)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    // Once, in the log (which is where an operator looks).
                    tracing::error!("{e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
