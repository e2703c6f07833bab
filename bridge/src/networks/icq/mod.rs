//! The icq network (to be built): drives the `icq-proto` session machine over tokio.

use std::sync::Arc;

use crate::core::{Network, NetworkSettings};

/// The icq implementation, or `None` while it is not built.
pub fn build(_settings: NetworkSettings) -> Option<Arc<dyn Network>> {
    None
}
