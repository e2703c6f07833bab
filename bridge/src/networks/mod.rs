//! The legacy networks compiled into this bridge, each behind the core's
//! [`Network`](crate::core::Network) trait. Each module exposes
//! `build(NetworkSettings) -> Option<Arc<dyn Network>>`.

pub mod backoff;
pub mod icq;
pub mod mig33;
pub mod msn;

use std::sync::Arc;

use crate::config::LoadedConfig;
use crate::core::{Network, NetworkId, NetworkSettings};

/// The implementations for the networks the config enables.
pub fn build(config: &LoadedConfig) -> Vec<Arc<dyn Network>> {
    config
        .enabled_networks()
        .filter_map(|(id, net)| {
            let settings = NetworkSettings {
                server: net.server.clone().unwrap_or_default(),
                options: net.options.clone(),
            };
            match id {
                NetworkId::Icq => icq::build(settings),
                NetworkId::Msn => msn::build(settings),
                NetworkId::Mig33 => mig33::build(settings),
            }
        })
        .collect()
}
