//! The legacy networks compiled into this bridge, each behind the core's
//! [`Network`](crate::core::Network) trait. Each module exposes
//! `build(NetworkSettings, <its options>) -> Option<Arc<dyn Network>>`.
//!
//! Each network declares its `options` block as a typed struct next to its code
//! (`icq::IcqOptions`, `msn::MsnOptions`, `mig33::Mig33Options`): serde refuses unknown
//! keys and wrong types, and the struct's `check` refuses values the types allow but the
//! network cannot use. `check-config` reports both with the key path
//! (`networks.msn.options.nexus_url`).

pub mod backoff;
pub mod driver;
pub mod icq;
pub mod mig33;
pub mod msn;
pub mod pacing;
pub mod read_buf;

use std::sync::Arc;

use serde::Deserialize;

use crate::config::LoadedConfig;
use crate::core::{Network, NetworkId, NetworkSettings};

/// Every network's `options`, typed (defaults for a network without a block).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct NetworkOptions {
    pub icq: icq::IcqOptions,
    pub msn: msn::MsnOptions,
    pub mig33: mig33::Mig33Options,
}

/// A refused option value: the key inside `options`, and what is wrong.
pub type OptionError = (&'static str, String);

impl NetworkOptions {
    /// Checks every network's options; the error names the full key path.
    pub fn check(&self) -> Result<(), (String, String)> {
        let at = |network: NetworkId| {
            move |(key, message): OptionError| {
                (format!("networks.{network}.options.{key}"), message)
            }
        };
        self.icq.check().map_err(at(NetworkId::Icq))?;
        self.msn.check().map_err(at(NetworkId::Msn))?;
        self.mig33.check().map_err(at(NetworkId::Mig33))?;
        Ok(())
    }
}

/// For durations in seconds, where 0 would mean "never" or a busy loop.
fn at_least_one_second(key: &'static str, value: u64) -> Result<(), OptionError> {
    if value == 0 {
        return Err((key, "must be at least 1 (seconds)".into()));
    }
    Ok(())
}

/// The implementations for the networks the config enables.
pub fn build(config: &LoadedConfig) -> Vec<Arc<dyn Network>> {
    config
        .enabled_networks()
        .filter_map(|(id, net)| {
            let settings = NetworkSettings {
                server: net.server.clone().unwrap_or_default(),
            };
            let options = &config.options;
            match id {
                NetworkId::Icq => icq::build(settings, options.icq.clone()),
                NetworkId::Msn => msn::build(settings, options.msn.clone()),
                NetworkId::Mig33 => mig33::build(settings, options.mig33.clone()),
            }
        })
        .collect()
}
