//! `legacy-sim serve -c sim.yaml` runs the configured simulators until Ctrl-C;
//! `legacy-sim <net>-client ...` acts as a legacy user (see each module's `ClientArgs`).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use legacy_sim::{icq, mig33, msn, SimConfig};

#[derive(Parser)]
#[command(
    name = "legacy-sim",
    version,
    about = "Simulated ICQ v2, MSN Messenger (MSNP9) and mig33 servers, and scriptable legacy clients",
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the simulators a config file describes (e.g. config/sim.demo.yaml) until Ctrl-C.
    Serve {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Act as an ICQ v2 user against a server.
    IcqClient(icq::ClientArgs),
    /// Act as an MSN Messenger user against a server.
    MsnClient(msn::ClientArgs),
    /// Act as a mig33 user against a server.
    Mig33Client(mig33::ClientArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Before logging starts: --help and usage errors print and exit here.
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    match cli.command {
        Command::Serve { config } => serve(config).await,
        Command::IcqClient(args) => icq::run_client(args).await,
        Command::MsnClient(args) => msn::run_client(args).await,
        Command::Mig33Client(args) => mig33::run_client(args).await,
    }
}

async fn serve(path: PathBuf) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let config =
        SimConfig::from_yaml(&text).with_context(|| format!("parsing {}", path.display()))?;
    let mut running = Vec::new();
    if let Some(c) = config.icq {
        running.push(
            Box::new(icq::Server::start(c).await.context("starting ICQ")?)
                as Box<dyn std::any::Any>,
        );
    }
    if let Some(c) = config.msn {
        running.push(Box::new(
            msn::Server::start(c).await.context("starting MSN")?,
        ));
    }
    if let Some(c) = config.mig33 {
        running.push(Box::new(
            mig33::Server::start(c).await.context("starting mig33")?,
        ));
    }
    tracing::info!("{} simulator(s) running; Ctrl-C stops them", running.len());
    tokio::signal::ctrl_c().await?;
    drop(running);
    Ok(())
}
