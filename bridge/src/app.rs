//! `retrobridge run`: wires the store, the core, the networks and the fronts (the Matrix
//! appservice, the XMPP components) together, and shuts down cleanly on SIGINT/SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::config::{LoadedConfig, LogFormat};
use crate::core::front::Front;
use crate::core::Bridge;
use crate::fronts::matrix::service::MatrixService;
use crate::fronts::xmpp::XmppFront;
use crate::networks::NetworkOptions;
use crate::store::{KeySource, Store};

pub fn init_logging(config: &LoadedConfig) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let logging = &config.config.logging;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "{},sled=warn,hyper=warn,h2=warn,rustls=warn,reqwest=warn,matrix_sdk=warn,matrix_sdk::http_client=off,eyeball=warn",
            logging.level
        ))
    });
    // tokio-xmpp traces the raw XML it reads and writes: message bodies and the
    // passwords of in-band registrations. Never, whatever RUST_LOG says.
    let filter = filter.add_directive(
        "tokio_xmpp::xmlstream=off"
            .parse()
            .expect("a valid directive"),
    );
    // No colour codes in files and pipes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let layer = tracing_subscriber::fmt::layer().with_ansi(ansi);
    let layer = match logging.format {
        LogFormat::Json => layer.json().boxed(),
        LogFormat::Pretty => layer.boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(
            layer
                .with_filter(filter)
                .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                    !is_handled_request_error(meta)
                })),
        )
        .try_init();
}

/// matrix-sdk logs every refused request at ERROR, expected answers included
/// (`M_USER_IN_USE` at every start, a 404 for a state event a room does not have, a
/// refusal the bridge answers by asking differently). The bridge says what a failure
/// means itself, at the level it deserves; an operator reads ERROR as "act now". Dropped
/// whatever `RUST_LOG` says (the request's own debug and trace lines stay).
fn is_handled_request_error(meta: &tracing::Metadata<'_>) -> bool {
    *meta.level() == tracing::Level::ERROR && meta.target().starts_with("matrix_sdk::http_client")
}

pub async fn run(config: LoadedConfig, options: NetworkOptions) -> anyhow::Result<()> {
    // systemd (Type=notify): watchdog pings from the start, so a long wait for the
    // homeserver is not taken for a hang; READY=1 once everything below is up.
    let systemd = crate::notify::Notifier::from_env();
    tokio::spawn(systemd.clone().watchdog());
    let database = &config.config.database;
    let store = open_store(&database.path, &KeySource::from_env(&database.key_file()))?;
    let networks = crate::networks::build(&config, &options);
    let bridge = Bridge::new(config.clone(), store.clone(), networks);
    let health = crate::health::Health::starting("starting");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

    let matrix = match config.matrix() {
        Some(m) => Some(
            MatrixService::listen(&config, m, &bridge, &store, &health, stop_rx.clone()).await?,
        ),
        None => None,
    };
    let mut fronts: Vec<Arc<dyn Front>> = Vec::new();
    if let Some(m) = &matrix {
        fronts.push(m.front.clone());
    }
    let xmpp = match &config.config.xmpp {
        Some(x) => {
            tracing::info!(
                "XMPP components connect to {} (server domain {})",
                x.component_address,
                x.domain
            );
            Some(XmppFront::connect(bridge.clone(), x)?)
        }
        None => None,
    };
    if let Some(x) = &xmpp {
        fronts.push(x.clone());
    }
    bridge.set_fronts(fronts);
    let metrics = match config.metrics_addr() {
        Some(addr) => Some(
            crate::metrics::serve(
                addr,
                {
                    let bridge = bridge.clone();
                    move |m: &crate::metrics::Metrics| bridge.refresh_metrics(m)
                },
                stop_rx.clone(),
            )
            .await?,
        ),
        None => None,
    };
    if let Some(m) = &matrix {
        m.wait_for_homeserver(&config, &health).await?;
    }

    // Logins first: a replayed message then finds its login (it waits there until the
    // login is connected) instead of a false "not logged in".
    health.not_ready("resuming the stored logins");
    bridge.resume_logins()?;
    if let Some(m) = &matrix {
        m.front.start_inbox().await?;
    }
    if let Some(x) = &xmpp {
        x.start();
    }
    bridge.start_outbox()?;
    tokio::spawn(prune_dedupe_records(store.clone()));
    if let Some(m) = &matrix {
        m.started(&config).await;
    }

    health.ready();
    systemd.ready();
    shutdown_signal().await;
    tracing::info!("shutting down");
    health.not_ready("shutting down");
    systemd.stopping();
    let _ = stop_tx.send(true);
    if let Some(x) = &xmpp {
        if tokio::time::timeout(Duration::from_secs(5), x.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("the XMPP server did not take the offline presences within 5 s");
        }
    }
    if let Some(m) = matrix {
        let _ = tokio::time::timeout(Duration::from_secs(5), m.server).await;
    }
    if let Some(metrics) = metrics {
        let _ = tokio::time::timeout(Duration::from_secs(5), metrics).await;
    }
    store.flush().await.context("flushing the database")?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Opens the database; sled's lock error means another bridge has it open.
fn open_store(path: &std::path::Path, keys: &KeySource) -> anyhow::Result<Store> {
    Store::open(path, keys).map_err(|e| match &e {
        crate::store::StoreError::Sled(sled::Error::Io(io))
            if io.to_string().contains("could not acquire lock") =>
        {
            anyhow::anyhow!(
                "another retrobridge is running on {} (it holds the database's lock): stop it first",
                path.display()
            )
        }
        _ => anyhow::Error::new(e).context(format!("opening the database {}", path.display())),
    })
}

/// Forgets old transaction and event ids now and then (they only guard against repeats),
/// and files whose links expired.
async fn prune_dedupe_records(store: Store) {
    let mut every = tokio::time::interval(Duration::from_secs(600));
    loop {
        every.tick().await;
        match store.prune_dedupe_records(crate::core::now_ms()) {
            Ok(0) => {}
            Ok(n) => tracing::debug!("forgot {n} old transaction/event ids"),
            Err(e) => tracing::warn!("could not prune old transaction ids: {e}"),
        }
        match store.drop_expired_files(crate::core::now_ms()) {
            Ok(0) => {}
            Ok(n) => tracing::debug!("dropped {n} files whose links expired"),
            Err(e) => tracing::warn!("could not drop expired files: {e}"),
        }
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_second_bridge_on_the_same_database_is_told_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let keys = super::KeySource::file(&dir.path().join("db.key"));
        let _first = super::open_store(&path, &keys).unwrap();
        let e = super::open_store(&path, &keys)
            .err()
            .expect("the database is locked");
        assert_eq!(
            e.to_string(),
            format!(
                "another retrobridge is running on {} (it holds the database's lock): stop it first",
                path.display()
            )
        );
    }
}
