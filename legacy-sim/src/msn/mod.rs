//! Simulated msn server and scriptable msn client (to be built).

use serde::Deserialize;

/// The `msn:` section of the simulator's YAML file.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Config {}

/// A running msn simulator; stops when dropped.
pub struct Server {}

impl Server {
    pub async fn start(_config: Config) -> std::io::Result<Server> {
        Err(std::io::Error::other("the msn simulator is not built yet"))
    }
}

/// `legacy-sim msn-client ...`: the scriptable client's command line.
pub async fn client_cli(_args: Vec<String>) -> anyhow::Result<()> {
    anyhow::bail!("the msn client is not built yet")
}
