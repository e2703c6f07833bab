//! A bridge for unit tests: a real store in a temporary folder, a homeserver address
//! nobody answers at, no network implementations (every network is "not available").

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use matrix_sdk::ruma::UserId;

use super::client::MatrixClient;
use super::MatrixFront;
use crate::config::LoadedConfig;
use crate::core::Bridge;
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
    let bridge = Bridge::new(config, store, Vec::new());
    let front = MatrixFront::new(bridge.clone(), matrix, None);
    bridge.set_fronts(vec![front]);
    bridge
}

/// The Matrix front of an [`offline_bridge`].
pub(crate) async fn offline_matrix_front(dir: &Path, extra_yaml: &str) -> Arc<MatrixFront> {
    let bridge = offline_bridge(dir, extra_yaml).await;
    let bot = UserId::parse("@retrobridgebot:localhost").expect("user id");
    let matrix = MatrixClient::new("http://127.0.0.1:9", "token", bot, Duration::from_secs(1))
        .await
        .expect("client");
    MatrixFront::new(bridge, matrix, None)
}
