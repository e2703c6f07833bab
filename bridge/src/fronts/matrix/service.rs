//! The Matrix front's parts while the bridge runs: the appservice listener (with the
//! health, media and provisioning routes), waiting for the homeserver and registering
//! the bot, and what follows the start (bridge state checks, the appservice ping).
//! `app::run` calls these in its start-up order.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use matrix_sdk::ruma::UserId;

use super::client::MatrixClient;
use super::endpoint;
use super::registration::Registration;
use super::MatrixFront;
use crate::config::{LoadedConfig, MatrixConfig};
use crate::core::Bridge;
use crate::store::Store;

/// The Matrix front's parts while the bridge runs.
pub struct MatrixService {
    pub front: Arc<MatrixFront>,
    client: MatrixClient,
    bot: matrix_sdk::ruma::OwnedUserId,
    listen: std::net::SocketAddr,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl MatrixService {
    /// Builds the front and starts its listener (with the health and provisioning
    /// endpoints): the homeserver may already be retrying transactions.
    pub async fn listen(
        config: &LoadedConfig,
        m: MatrixConfig<'_>,
        bridge: &Arc<Bridge>,
        store: &Store,
        health: &crate::health::Health,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<MatrixService> {
        let registration =
            Registration::load(&m.appservice.registration).map_err(anyhow::Error::msg)?;
        if !registration.matches(config) {
            tracing::warn!(
                "the registration's bot or namespaces differ from the config: run generate-registration and give the new file to the homeserver"
            );
        }
        let listen = config.listen_addr().map_err(anyhow::Error::msg)?;
        let bot = UserId::parse(format!(
            "@{}:{}",
            m.appservice.bot.localpart,
            config.domain()
        ))?;
        let client = MatrixClient::new(
            &m.homeserver.address,
            &registration.as_token,
            bot.clone(),
            Duration::from_secs(m.homeserver.request_timeout_seconds),
        )
        .await?;
        let media = crate::fronts::matrix::media::MediaLinks::new(
            store.media_key().context("the media link key")?,
            m.appservice
                .public_url
                .as_deref()
                .unwrap_or(&m.appservice.url),
            &m.homeserver.address,
            &registration.as_token,
            Duration::from_secs(m.appservice.media_link_lifetime_seconds),
        );
        let front = MatrixFront::new(bridge.clone(), client.clone(), Some(media.clone()));
        front.claim_pending_events()?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        tracing::info!("appservice endpoint listening on {listen}");
        let mut app =
            endpoint::router(&registration.hs_token, Arc::new(front.clone()), Some(media))
                .merge(crate::health::router(health.clone()));
        if let Some(secret) = config.provisioning_secret() {
            app = app.merge(crate::fronts::matrix::provision::router(
                bridge.clone(),
                secret,
                health.clone(),
            ));
            tracing::info!(
                "provisioning API enabled at {}",
                crate::fronts::matrix::provision::PREFIX
            );
        }
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
        });
        Ok(MatrixService {
            front,
            client,
            bot,
            listen,
            server,
        })
    }

    /// Waits for the homeserver and registers the bot.
    pub async fn wait_for_homeserver(
        &self,
        config: &LoadedConfig,
        health: &crate::health::Health,
    ) -> anyhow::Result<()> {
        let m = config.matrix().context("the Matrix front is configured")?;
        let (matrix, bot) = (&self.client, &self.bot);
        tracing::info!("waiting for the homeserver at {}", m.homeserver.address);
        health.not_ready(format!(
            "waiting for the homeserver at {}",
            m.homeserver.address
        ));
        let unknown_registration = || {
            anyhow::anyhow!(
                "the homeserver does not know this bridge's registration yet (it refused the as_token): \
                 add {} to the homeserver's app_service_config_files (Synapse) and restart the homeserver",
                m.appservice.registration.display()
            )
        };
        let is_unknown_token = |e: &matrix_sdk::HttpError| {
            matches!(
                crate::fronts::matrix::client::error_kind(e),
                Some(matrix_sdk::ruma::api::error::ErrorKind::UnknownToken(_))
            )
        };
        if let Err(e) = matrix.wait_for_homeserver(Duration::from_secs(300)).await {
            if e.downcast_ref::<matrix_sdk::HttpError>()
                .is_some_and(is_unknown_token)
            {
                return Err(unknown_registration());
            }
            return Err(e);
        }
        health.not_ready("registering the bot");
        if let Err(e) = matrix.ensure_registered(bot).await {
            if is_unknown_token(&e) {
                return Err(unknown_registration());
            }
            return Err(anyhow::Error::new(e).context("registering the bot"));
        }
        crate::fronts::matrix::portals::ensure_bot_profile(
            &self.front,
            &m.appservice.bot.displayname,
            m.appservice.bot.avatar_url.as_deref(),
        )
        .await?;
        tracing::info!("bot {bot} ready");
        Ok(())
    }

    /// Once the core runs: portals from before (or whose bridge state failed) in the
    /// background, and a ping so that the homeserver retries what it holds for us.
    pub async fn started(&self, config: &LoadedConfig) {
        tokio::spawn(crate::fronts::matrix::bridge_state::check_all(
            self.front.clone(),
        ));
        let Some(m) = config.matrix() else { return };
        match self.client.ping_appservice(&m.appservice.id).await {
            Ok(rtt) => tracing::info!("the homeserver reaches the bridge (ping {rtt:?})"),
            Err(e) if e.contains("M_UNRECOGNIZED") => tracing::warn!(
                "the homeserver cannot ping appservices ({e}): whether it reaches the bridge is not checked"
            ),
            Err(e) => tracing::error!(
                "the homeserver cannot reach the bridge at the URL of its registration ({e}): \
                 nothing from Matrix will arrive. Check that appservice.url ({}) is the address \
                 the homeserver can reach this bridge at (it listens on {}); after changing it, \
                 run generate-registration again and restart the homeserver",
                m.appservice.url,
                self.listen
            ),
        }
    }
}
