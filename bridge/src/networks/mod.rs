//! The legacy networks compiled into this bridge, each behind the core's
//! [`Network`](crate::core::Network) trait.

use std::sync::Arc;

use crate::config::LoadedConfig;
use crate::core::Network;

/// The implementations for the networks the config enables.
pub fn build(_config: &LoadedConfig) -> Vec<Arc<dyn Network>> {
    Vec::new()
}
