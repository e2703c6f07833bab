//! A bridge for unit tests: a real store in a temporary folder, a homeserver address
//! nobody answers at, no network implementations (every network is "not available").

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use matrix_sdk::ruma::UserId;

use super::Bridge;
use crate::config::LoadedConfig;
use crate::matrix::client::MatrixClient;
use crate::store::Store;

/// `extra_yaml` is appended to the config (top-level keys such as `provisioning:`).
/// Permissions: `@alice:localhost` user, `@boss:localhost` admin.
pub(crate) async fn offline_bridge(dir: &Path, extra_yaml: &str) -> Arc<Bridge> {
    let text = format!(
        "homeserver: {{address: 'http://127.0.0.1:9', domain: localhost}}\n\
         appservice: {{port: 29330, url: 'http://127.0.0.1:29330'}}\n\
         database: {{path: db}}\n\
         permissions: {{'@alice:localhost': user, '@boss:localhost': admin}}\n\
         networks: {{mig33: {{enabled: true, server: '127.0.0.1:9119'}}}}\n{extra_yaml}"
    );
    let config = LoadedConfig::parse(&text, Path::new("test.yaml")).expect("config");
    let store = Store::open_in(dir).expect("store");
    let bot = UserId::parse("@retrobridgebot:localhost").expect("user id");
    let matrix = MatrixClient::new("http://127.0.0.1:9", "token", bot, Duration::from_secs(1))
        .await
        .expect("client");
    Bridge::new(config, store, matrix, Vec::new(), None)
}
