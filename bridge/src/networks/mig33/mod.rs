//! The mig33 network (to be built): drives the `mig33-proto` session machine over tokio.

use std::sync::Arc;

use crate::core::{Network, NetworkSettings};

/// The mig33 implementation, or `None` while it is not built.
pub fn build(_settings: NetworkSettings) -> Option<Arc<dyn Network>> {
    None
}
