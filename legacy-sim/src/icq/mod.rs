//! Simulated icq server and scriptable icq client (to be built).

use serde::Deserialize;

/// The `icq:` section of the simulator's YAML file.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Config {}

/// A running icq simulator; stops when dropped.
pub struct Server {}

impl Server {
    pub async fn start(_config: Config) -> std::io::Result<Server> {
        Err(std::io::Error::other("the icq simulator is not built yet"))
    }
}

/// `legacy-sim icq-client ...`: the scriptable client's command line.
pub async fn client_cli(_args: Vec<String>) -> anyhow::Result<()> {
    anyhow::bail!("the icq client is not built yet")
}
