//! Simulated mig33 server and scriptable mig33 client (to be built).

use serde::Deserialize;

/// The `mig33:` section of the simulator's YAML file.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Config {}

/// A running mig33 simulator; stops when dropped.
pub struct Server {}

impl Server {
    pub async fn start(_config: Config) -> std::io::Result<Server> {
        Err(std::io::Error::other("the mig33 simulator is not built yet"))
    }
}

/// `legacy-sim mig33-client ...`: the scriptable client's command line.
pub async fn client_cli(_args: Vec<String>) -> anyhow::Result<()> {
    anyhow::bail!("the mig33 client is not built yet")
}
