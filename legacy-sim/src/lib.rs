//! Simulated legacy servers (ICQ v2 over UDP, MSN MSNP9 over TCP+HTTP, mig33 over TCP)
//! and scriptable legacy clients, built on the sans-IO protocol crates. Used by the
//! end-to-end tests and by the README's demo.

pub mod events;
pub mod icq;
pub mod mig33;
pub mod msn;

use serde::Deserialize;

/// The simulator's YAML file: one optional section per network.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    pub icq: Option<icq::Config>,
    pub msn: Option<msn::Config>,
    pub mig33: Option<mig33::Config>,
}

impl SimConfig {
    pub fn from_yaml(text: &str) -> Result<SimConfig, serde_yaml::Error> {
        serde_yaml::from_str(text)
    }
}
