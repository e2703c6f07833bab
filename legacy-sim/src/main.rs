//! `legacy-sim serve -c sim.yaml` runs the configured simulators until Ctrl-C;
//! `legacy-sim <net>-client ...` acts as a legacy user (see each module's `client_cli`).

use anyhow::Context;
use legacy_sim::{icq, mig33, msn, SimConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        anyhow::bail!(
            "usage: legacy-sim serve -c FILE | icq-client ... | msn-client ... | mig33-client ..."
        );
    }
    let command = args.remove(0);
    match command.as_str() {
        "serve" => serve(args).await,
        "icq-client" => icq::client_cli(args).await,
        "msn-client" => msn::client_cli(args).await,
        "mig33-client" => mig33::client_cli(args).await,
        other => anyhow::bail!("unknown command {other:?}"),
    }
}

async fn serve(args: Vec<String>) -> anyhow::Result<()> {
    let path = match args.as_slice() {
        [flag, path] if flag == "-c" || flag == "--config" => path.clone(),
        _ => anyhow::bail!("usage: legacy-sim serve -c FILE"),
    };
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let config = SimConfig::from_yaml(&text).with_context(|| format!("parsing {path}"))?;
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
