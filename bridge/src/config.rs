//! The bridge's YAML configuration: typed, validated, with errors that name the file,
//! the key path and (when the YAML parser knows it) the line.
//!
//! `config/config.example.yaml` documents every key.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::ids::GhostTemplate;
use crate::model::NetworkId;

/// The log levels `logging.level` accepts.
pub const LOG_LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

/// The example config's domain: a config that still names it was not edited.
const EXAMPLE_DOMAINS: [&str; 3] = ["example.org", "example.com", "example.net"];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The Matrix front, with `appservice`: leave both out to serve XMPP only.
    #[serde(default)]
    pub homeserver: Option<HomeserverConfig>,
    #[serde(default)]
    pub appservice: Option<AppserviceConfig>,
    /// The XMPP front (components of an XMPP server); off without this block.
    #[serde(default)]
    pub xmpp: Option<XmppConfig>,
    pub database: DatabaseConfig,
    /// `*`, a domain, or a user id -> `user` or `admin`. Nobody is allowed by default.
    #[serde(default)]
    pub permissions: BTreeMap<String, String>,
    #[serde(default)]
    pub networks: BTreeMap<String, NetworkConfig>,
    #[serde(default)]
    pub logging: LoggingConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// The provisioning API, off without this block.
    #[serde(default)]
    pub provisioning: Option<ProvisioningConfig>,
    #[serde(default)]
    pub files: FilesConfig,
}

/// Files crossing the bridge (networks whose capabilities say `files`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    /// The largest file taken from a contact or sent to one, in bytes (16 MiB by
    /// default). A larger offer is declined with a word to the user; a larger file to a
    /// contact goes as a link.
    #[serde(default = "default_max_file_bytes")]
    pub max_bytes: u64,
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            max_bytes: default_max_file_bytes(),
        }
    }
}

/// The largest `files.max_bytes` (files are held in memory while they cross).
pub const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

fn default_max_file_bytes() -> u64 {
    16 * 1024 * 1024
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeserverConfig {
    /// Client-server API base URL, e.g. `http://127.0.0.1:8008`.
    pub address: String,
    /// The server name in user ids, e.g. `example.org`.
    pub domain: String,
    /// A request the homeserver has not answered after this long counts as failed (and
    /// is retried where that is safe).
    #[serde(default = "default_request_timeout")]
    pub request_timeout_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppserviceConfig {
    /// Listen address of the transaction endpoint.
    #[serde(default = "default_listen_host")]
    pub address: String,
    /// Listen port; read as a wide integer so that 70000 gets a clear message.
    pub port: i64,
    /// The URL the homeserver uses to reach the bridge.
    pub url: String,
    /// Where legacy contacts can reach the bridge: files sent from Matrix reach them as
    /// links under this address (default: `url`).
    #[serde(default)]
    pub public_url: Option<String>,
    /// How long such a link works, in seconds (7 days by default).
    #[serde(default = "default_media_link_lifetime")]
    pub media_link_lifetime_seconds: u64,
    #[serde(default = "default_id")]
    pub id: String,
    /// Where `generate-registration` writes the registration (with the tokens) and where
    /// `run` reads the tokens from; relative to the config file's folder.
    #[serde(default = "default_registration")]
    pub registration: PathBuf,
    #[serde(default)]
    pub bot: BotConfig,
}

/// The XMPP front: one component per enabled network (`icq.<domain>`, `msn.<domain>`,
/// `mig33.<domain>`) and one for the rooms, on the server's component port (XEP-0114).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XmppConfig {
    /// The XMPP server's domain (the users' JIDs are on it; the components are named
    /// under it).
    pub domain: String,
    /// `host:port` of the server's component port.
    #[serde(default = "default_component_address")]
    pub component_address: String,
    /// The components' shared secret (Prosody's `component_secret`).
    pub secret: Secret,
    /// The rooms service (default `rooms.<domain>`; Prosody keeps `conference.<domain>`
    /// for its own rooms).
    #[serde(default)]
    pub rooms_domain: Option<String>,
    /// Where XMPP users fetch the files legacy contacts send them: a listener of the
    /// bridge serving signed, expiring links (XEP-0066). Without it a file arrives as a
    /// line that names it.
    #[serde(default)]
    pub file_links: Option<FileLinksConfig>,
    /// Hosts (`host` or `host:port`) of the server's file upload service (XEP-0363,
    /// e.g. `upload.example.org`): a file a user shares from there is fetched and sent
    /// as a file where the network carries files. Every other link stays a link: the
    /// bridge fetches no address a user names unless the operator listed its host.
    #[serde(default)]
    pub file_hosts: Vec<String>,
}

/// The XMPP front's file links: the listener and the address users reach it at.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLinksConfig {
    #[serde(default = "default_listen_host")]
    pub address: String,
    /// Read as a wide integer so that 70000 gets a clear message.
    pub port: i64,
    /// The base URL of the links, e.g. `https://files.example.org` (a reverse proxy in
    /// front of the listener).
    pub public_url: String,
    /// How long a link works, in seconds (7 days by default); the file is kept as long.
    #[serde(default = "default_media_link_lifetime")]
    pub lifetime_seconds: u64,
}

impl XmppConfig {
    /// The component domain of a network's gateway.
    pub fn gateway_domain(&self, network: NetworkId) -> String {
        format!("{}.{}", network.as_str(), self.domain)
    }

    pub fn rooms_domain(&self) -> String {
        self.rooms_domain
            .clone()
            .unwrap_or_else(|| format!("rooms.{}", self.domain))
    }
}

/// The Matrix front's two blocks.
#[derive(Debug, Clone, Copy)]
pub struct MatrixConfig<'a> {
    pub homeserver: &'a HomeserverConfig,
    pub appservice: &'a AppserviceConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotConfig {
    #[serde(default = "default_bot_localpart")]
    pub localpart: String,
    #[serde(default = "default_bot_displayname")]
    pub displayname: String,
    #[serde(default)]
    pub avatar_url: Option<String>,
}

impl Default for BotConfig {
    fn default() -> Self {
        BotConfig {
            localpart: default_bot_localpart(),
            displayname: default_bot_displayname(),
            avatar_url: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// The sled database folder; relative to the config file's folder.
    pub path: PathBuf,
    /// The file holding the key the stored credentials are encrypted with (created on
    /// first run; `RETROBRIDGE_DATABASE_KEY` wins over it). Default: the database
    /// folder's path plus `.key`; relative to the config file's folder.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

impl DatabaseConfig {
    /// The key file's path (`key_file`, or beside the database folder).
    pub fn key_file(&self) -> PathBuf {
        match &self.key_file {
            Some(file) => file.clone(),
            None => match self.path.file_name() {
                Some(name) => {
                    let mut name = name.to_owned();
                    name.push(".key");
                    self.path.with_file_name(name)
                }
                None => self.path.join("..").join("retrobridge.key"),
            },
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    #[serde(default)]
    pub enabled: bool,
    /// `host:port` of the network's (first) server.
    #[serde(default)]
    pub server: Option<String>,
    /// Ghost localpart template; `{id}` is replaced by the escaped legacy id.
    #[serde(default)]
    pub ghost_template: Option<String>,
    /// Network-specific options: each network reads them itself, into its typed
    /// struct, with [`LoadedConfig::read_again`] (the config does not know their keys).
    #[serde(default)]
    pub options: serde::de::IgnoredAny,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    #[serde(default = "default_log_level")]
    pub level: String,
    #[serde(default)]
    pub format: LogFormat,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: default_log_level(),
            format: LogFormat::default(),
        }
    }
}

/// Prometheus metrics (`/metrics` on a listener of its own). Off by default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    #[serde(default)]
    pub enabled: bool,
    /// `ip:port` of the metrics listener.
    #[serde(default = "default_metrics_listen")]
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: false,
            listen: default_metrics_listen(),
        }
    }
}

/// The provisioning API (`/_retrobridge/provision/v1/` on the appservice listener).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisioningConfig {
    /// What clients send as `Authorization: Bearer <secret>`.
    pub shared_secret: Secret,
}

/// A secret from the config: `Debug` never shows it.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The longest a media link may work: a year, in seconds.
pub const MAX_MEDIA_LINK_LIFETIME: u64 = 365 * 24 * 60 * 60;

/// The shortest provisioning secret accepted (`openssl rand -hex 32` gives 64).
pub const MIN_SECRET_LEN: usize = 32;

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

fn default_request_timeout() -> u64 {
    30
}
fn default_listen_host() -> String {
    "127.0.0.1".into()
}
/// How long a media link works unless the config says otherwise (seconds): a contact
/// away for a few days can still open it, a link that leaked does not work forever.
pub const DEFAULT_MEDIA_LINK_LIFETIME_SECS: u64 = 7 * 24 * 60 * 60;
fn default_media_link_lifetime() -> u64 {
    DEFAULT_MEDIA_LINK_LIFETIME_SECS
}
fn default_id() -> String {
    "retrobridge".into()
}
fn default_registration() -> PathBuf {
    "registration.yaml".into()
}
fn default_bot_localpart() -> String {
    "retrobridgebot".into()
}
fn default_bot_displayname() -> String {
    "Retrobridge".into()
}
fn default_log_level() -> String {
    "info".into()
}
fn default_component_address() -> String {
    "127.0.0.1:5347".into()
}
fn default_metrics_listen() -> String {
    "127.0.0.1:9090".into()
}

/// Who may use the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Permission {
    None,
    User,
    Admin,
}

/// A configuration problem: where it is and what is wrong.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    /// Dotted key path, e.g. `appservice.port`; empty for whole-file problems.
    pub key: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// A loaded, validated config with paths resolved against the config file's folder.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    pub file: PathBuf,
    pub ghost_templates: BTreeMap<NetworkId, GhostTemplate>,
    /// The file's text, for the parts read by the layers above ([`Self::read_again`]).
    text: FileText,
}

/// The config file's text: it holds secrets, so `Debug` shows only its size.
#[derive(Clone)]
struct FileText(std::sync::Arc<str>);

impl fmt::Debug for FileText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

impl LoadedConfig {
    pub fn load(file: &Path) -> Result<LoadedConfig, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
            file: file.into(),
            key: String::new(),
            line: None,
            message: format!("cannot read the file: {e}"),
        })?;
        let mut loaded = Self::parse(&text, file)?;
        let base = file.parent().unwrap_or(Path::new("."));
        if let Some(appservice) = &mut loaded.config.appservice {
            appservice.registration = base.join(&appservice.registration);
        }
        let database = &mut loaded.config.database;
        database.path = base.join(&database.path);
        database.key_file = database.key_file.as_ref().map(|f| base.join(f));
        // The encryption of a database in clear replaces its folder: a key inside it
        // would be lost with the old folder.
        let key_file = database.key_file();
        let inside = |folder: &Path| {
            key_file
                .parent()
                .and_then(|p| p.canonicalize().ok())
                .zip(folder.canonicalize().ok())
                .is_some_and(|(p, f)| p.starts_with(f))
                || key_file.starts_with(folder)
        };
        if inside(&database.path) {
            return Err(ConfigError {
                file: file.into(),
                key: "database.key_file".into(),
                line: None,
                message: format!(
                    "{} is inside the database folder {}: keep the key outside it",
                    key_file.display(),
                    database.path.display()
                ),
            });
        }
        Ok(loaded)
    }

    /// Parses and validates config text; `file` is only used in messages.
    pub fn parse(text: &str, file: &Path) -> Result<LoadedConfig, ConfigError> {
        let config: Config =
            serde_path_to_error::deserialize(serde_yaml::Deserializer::from_str(text))
                .map_err(|e| yaml_error(file, e))?;
        let ghost_templates = validate(&config).map_err(|(key, message)| ConfigError {
            file: file.into(),
            key,
            line: None,
            message,
        })?;
        Ok(LoadedConfig {
            config,
            file: file.into(),
            ghost_templates,
            text: FileText(text.into()),
        })
    }

    /// Reads the file a second time into `T`: for a part whose keys the config does not
    /// know (each network's `options`, read by the network). Its errors carry the key
    /// path and line like the first reading's.
    pub fn read_again<T: serde::de::DeserializeOwned>(&self) -> Result<T, ConfigError> {
        serde_path_to_error::deserialize(serde_yaml::Deserializer::from_str(&self.text.0))
            .map_err(|e| yaml_error(&self.file, e))
    }

    /// The Matrix front's blocks, when it is configured.
    pub fn matrix(&self) -> Option<MatrixConfig<'_>> {
        Some(MatrixConfig {
            homeserver: self.config.homeserver.as_ref()?,
            appservice: self.config.appservice.as_ref()?,
        })
    }

    /// The Matrix server name ("" without the Matrix front).
    pub fn domain(&self) -> &str {
        self.config
            .homeserver
            .as_ref()
            .map_or("", |h| h.domain.as_str())
    }

    /// The appservice listener's address (the Matrix front).
    pub fn listen_addr(&self) -> Result<SocketAddr, String> {
        let a = self
            .config
            .appservice
            .as_ref()
            .ok_or("the Matrix front is not configured (no appservice block)")?;
        format!("{}:{}", a.address, a.port).parse().map_err(|e| {
            format!(
                "appservice.address {:?} is not an IP address: {e}",
                a.address
            )
        })
    }

    /// The metrics listener's address, when metrics are enabled (validated at load).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        let m = &self.config.metrics;
        m.enabled.then(|| m.listen.parse().ok()).flatten()
    }

    /// The provisioning API's shared secret, when the API is enabled.
    pub fn provisioning_secret(&self) -> Option<&Secret> {
        self.config.provisioning.as_ref().map(|p| &p.shared_secret)
    }

    /// The network blocks that are enabled, in a stable order.
    pub fn enabled_networks(&self) -> impl Iterator<Item = (NetworkId, &NetworkConfig)> {
        self.config
            .networks
            .iter()
            .filter(|(_, n)| n.enabled)
            .filter_map(|(name, n)| Some((NetworkId::parse(name)?, n)))
    }

    /// What `user_id` may do: the most specific matching entry wins (user id, then
    /// domain, then `*`). XMPP users and domains are written `xmpp:alice@example.org`,
    /// `xmpp:example.org`.
    pub fn permission(&self, user_id: &str) -> Permission {
        let perms = &self.config.permissions;
        let domain = match user_id.strip_prefix(crate::model::XMPP_USER_PREFIX) {
            Some(jid) => jid
                .split_once('@')
                .map(|(_, d)| format!("{}{d}", crate::model::XMPP_USER_PREFIX))
                .unwrap_or_default(),
            None => user_id
                .split_once(':')
                .map(|(_, d)| d.to_owned())
                .unwrap_or_default(),
        };
        let level = perms
            .get(user_id)
            .or_else(|| perms.get(&domain))
            .or_else(|| perms.get("*"));
        match level.map(String::as_str) {
            Some("admin") => Permission::Admin,
            Some("user") => Permission::User,
            _ => Permission::None,
        }
    }
}

/// A YAML error as a [`ConfigError`]: serde_yaml prefixes its message with the path
/// and position, and only the reason is kept.
fn yaml_error(file: &Path, e: serde_path_to_error::Error<serde_yaml::Error>) -> ConfigError {
    let key = e.path().to_string();
    let inner = e.into_inner();
    let line = inner.location().map(|l| l.line());
    let message = inner.to_string();
    let message = message
        .split_once(": ")
        .map(|(_, m)| m)
        .filter(|_| key != ".")
        .unwrap_or(&message);
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_string();
    ConfigError {
        file: file.into(),
        key: if key == "." { String::new() } else { key },
        line,
        message,
    }
}

type Invalid = (String, String);

fn validate(config: &Config) -> Result<BTreeMap<NetworkId, GhostTemplate>, Invalid> {
    match (&config.homeserver, &config.appservice) {
        (Some(hs), Some(a)) => validate_matrix(hs, a, &config.metrics)?,
        (None, None) if config.xmpp.is_none() => {
            return Err((
                String::new(),
                "nothing to serve: configure the Matrix front (homeserver and appservice), \
                 the XMPP front (xmpp), or both"
                    .into(),
            ))
        }
        (None, None) => {}
        (Some(_), None) => {
            return Err((
                "appservice".into(),
                "the Matrix front needs an appservice block beside homeserver".into(),
            ))
        }
        (None, Some(_)) => {
            return Err((
                "homeserver".into(),
                "the Matrix front needs a homeserver block beside appservice".into(),
            ))
        }
    }
    if let Some(x) = &config.xmpp {
        validate_xmpp(x)?;
    }
    validate_rest(config)
}

fn validate_xmpp(x: &XmppConfig) -> Result<(), Invalid> {
    if !is_server_name(&x.domain) || x.domain.contains(':') {
        return Err((
            "xmpp.domain".into(),
            format!("{:?} is not a domain name", x.domain),
        ));
    }
    if EXAMPLE_DOMAINS.contains(&x.domain.to_ascii_lowercase().as_str()) {
        return Err((
            "xmpp.domain".into(),
            format!(
                "{} is the example's domain: set your XMPP server's domain (the part after '@' in your users' addresses)",
                x.domain
            ),
        ));
    }
    if x.component_address
        .rsplit_once(':')
        .and_then(|(h, p)| (!h.is_empty()).then_some(p))
        .and_then(|p| p.parse::<u16>().ok())
        .is_none()
    {
        return Err((
            "xmpp.component_address".into(),
            format!(
                "{:?} is not host:port (the server's component port, 5347 by default)",
                x.component_address
            ),
        ));
    }
    let secret = x.secret.expose();
    if secret.is_empty() || secret.contains("CHANGE_ME") {
        return Err((
            "xmpp.secret".into(),
            "set the components' shared secret (the same as the server's component_secret)".into(),
        ));
    }
    if let Some(rooms) = &x.rooms_domain {
        if !is_server_name(rooms) || rooms.contains(':') {
            return Err((
                "xmpp.rooms_domain".into(),
                format!("{rooms:?} is not a domain name"),
            ));
        }
    }
    for host in &x.file_hosts {
        if !is_server_name(host) {
            return Err((
                "xmpp.file_hosts".into(),
                format!("{host:?} is not a host or host:port (no scheme, no path)"),
            ));
        }
    }
    if let Some(f) = &x.file_links {
        if !(1..=65535).contains(&f.port) {
            return Err((
                "xmpp.file_links.port".into(),
                format!("port {} is out of range (1-65535)", f.port),
            ));
        }
        if f.address.parse::<std::net::IpAddr>().is_err() {
            return Err((
                "xmpp.file_links.address".into(),
                format!("{:?} is not an IP address", f.address),
            ));
        }
        if !(f.public_url.starts_with("http://") || f.public_url.starts_with("https://")) {
            return Err((
                "xmpp.file_links.public_url".into(),
                format!("{:?} must start with http:// or https://", f.public_url),
            ));
        }
        if !(1..=MAX_MEDIA_LINK_LIFETIME).contains(&f.lifetime_seconds) {
            return Err((
                "xmpp.file_links.lifetime_seconds".into(),
                format!(
                    "{} is out of range (1 to {MAX_MEDIA_LINK_LIFETIME} seconds, one year)",
                    f.lifetime_seconds
                ),
            ));
        }
    }
    Ok(())
}

fn validate_matrix(
    hs: &HomeserverConfig,
    a: &AppserviceConfig,
    m: &MetricsConfig,
) -> Result<(), Invalid> {
    if hs.address.trim().is_empty() {
        return Err((
            "homeserver.address".into(),
            "the homeserver address is missing".into(),
        ));
    }
    if !(hs.address.starts_with("http://") || hs.address.starts_with("https://")) {
        return Err((
            "homeserver.address".into(),
            format!("{:?} must start with http:// or https://", hs.address),
        ));
    }
    if hs.domain.trim().is_empty() {
        return Err((
            "homeserver.domain".into(),
            "the homeserver domain (server name) is missing".into(),
        ));
    }
    if !is_server_name(&hs.domain) {
        return Err((
            "homeserver.domain".into(),
            format!("{:?} is not a valid server name", hs.domain),
        ));
    }
    if !(1..=3600).contains(&hs.request_timeout_seconds) {
        return Err((
            "homeserver.request_timeout_seconds".into(),
            format!(
                "{} is out of range (1-3600 seconds)",
                hs.request_timeout_seconds
            ),
        ));
    }
    if EXAMPLE_DOMAINS.contains(&hs.domain.to_ascii_lowercase().as_str()) {
        return Err((
            "homeserver.domain".into(),
            format!(
                "{} is the example's domain: set your homeserver's server name (the part after ':' in your users' ids), and the permissions to match",
                hs.domain
            ),
        ));
    }
    if !(1..=65535).contains(&a.port) {
        return Err((
            "appservice.port".into(),
            format!("port {} is out of range (1-65535)", a.port),
        ));
    }
    if a.address.parse::<std::net::IpAddr>().is_err() {
        return Err((
            "appservice.address".into(),
            format!("{:?} is not an IP address", a.address),
        ));
    }
    if !(a.url.starts_with("http://") || a.url.starts_with("https://")) {
        return Err((
            "appservice.url".into(),
            format!("{:?} must start with http:// or https://", a.url),
        ));
    }
    if let Some(public) = &a.public_url {
        if !(public.starts_with("http://") || public.starts_with("https://")) {
            return Err((
                "appservice.public_url".into(),
                format!("{public:?} must start with http:// or https://"),
            ));
        }
    }
    if !(1..=MAX_MEDIA_LINK_LIFETIME).contains(&a.media_link_lifetime_seconds) {
        return Err((
            "appservice.media_link_lifetime_seconds".into(),
            format!(
                "{} is out of range (1 to {MAX_MEDIA_LINK_LIFETIME} seconds, one year; the default, {}, is 7 days)",
                a.media_link_lifetime_seconds,
                default_media_link_lifetime()
            ),
        ));
    }
    if a.id.trim().is_empty() {
        return Err(("appservice.id".into(), "the appservice id is empty".into()));
    }
    if let Some(avatar) = &a.bot.avatar_url {
        if !avatar.starts_with("mxc://") {
            return Err((
                "appservice.bot.avatar_url".into(),
                format!("{avatar:?} must be an mxc:// URL"),
            ));
        }
    }
    if !is_localpart(&a.bot.localpart) {
        return Err((
            "appservice.bot.localpart".into(),
            format!(
                "{:?} is not a valid localpart (a-z, 0-9, . _ = - /)",
                a.bot.localpart
            ),
        ));
    }
    match m.listen.parse::<SocketAddr>() {
        Err(_) => {
            return Err((
                "metrics.listen".into(),
                format!(
                    "{:?} is not an IP address and port (e.g. 127.0.0.1:9090)",
                    m.listen
                ),
            ))
        }
        Ok(addr) if m.enabled && addr.port() == 0 => {
            return Err((
                "metrics.listen".into(),
                "port 0 is not a fixed port: give the one Prometheus scrapes".into(),
            ))
        }
        Ok(addr)
            if m.enabled
                && addr.port() as i64 == a.port
                && a.address.parse::<std::net::IpAddr>().is_ok_and(|ip| {
                    ip == addr.ip() || ip.is_unspecified() || addr.ip().is_unspecified()
                }) =>
        {
            return Err((
                "metrics.listen".into(),
                format!(
                    "{} is the appservice listener's address: give metrics a port of its own",
                    m.listen
                ),
            ))
        }
        Ok(_) => {}
    }
    Ok(())
}

fn validate_rest(config: &Config) -> Result<BTreeMap<NetworkId, GhostTemplate>, Invalid> {
    if !(1..=MAX_FILE_BYTES).contains(&config.files.max_bytes) {
        return Err((
            "files.max_bytes".into(),
            format!(
                "{} is out of range (1 to {MAX_FILE_BYTES} bytes; the default is {})",
                config.files.max_bytes,
                default_max_file_bytes()
            ),
        ));
    }
    if let Some(p) = &config.provisioning {
        let secret = p.shared_secret.expose();
        if secret.chars().count() < MIN_SECRET_LEN {
            return Err((
                "provisioning.shared_secret".into(),
                format!(
                    "the secret is too short ({} characters): use at least {MIN_SECRET_LEN} random ones \
                     (e.g. `openssl rand -hex 32`)",
                    secret.chars().count()
                ),
            ));
        }
        if secret.contains("CHANGE_ME") {
            return Err((
                "provisioning.shared_secret".into(),
                "the example's placeholder: generate a secret of your own (e.g. `openssl rand -hex 32`)"
                    .into(),
            ));
        }
    }
    for (who, level) in &config.permissions {
        let key = format!("permissions.{who:?}");
        let xmpp_ok = |jid: &str| match jid.split_once('@') {
            Some((local, domain)) => !local.is_empty() && is_server_name(domain),
            None => is_server_name(jid),
        };
        let who_ok = who == "*"
            || who
                .strip_prefix(crate::model::XMPP_USER_PREFIX)
                .is_some_and(xmpp_ok)
            || is_server_name(who)
            || who
                .strip_prefix('@')
                .and_then(|u| u.split_once(':'))
                .is_some_and(|(l, d)| !l.is_empty() && is_server_name(d));
        if !who_ok {
            return Err((
                key,
                format!(
                    "{who:?} is not '*', a domain, a user id like @alice:example.org, \
                     or an XMPP domain or address like xmpp:example.org, xmpp:alice@example.org"
                ),
            ));
        }
        if level != "user" && level != "admin" {
            return Err((
                key,
                format!("level {level:?} must be \"user\" or \"admin\""),
            ));
        }
    }
    let level = &config.logging.level;
    if !LOG_LEVELS.contains(&level.as_str()) {
        return Err((
            "logging.level".into(),
            format!("{level:?} is not a log level ({})", LOG_LEVELS.join(", ")),
        ));
    }
    let mut templates = BTreeMap::new();
    for (name, net) in &config.networks {
        let key = format!("networks.{name}");
        let Some(id) = NetworkId::parse(name) else {
            return Err((
                key,
                format!(
                    "unknown network {name:?} (known: {})",
                    NetworkId::all_names()
                ),
            ));
        };
        let template = net
            .ghost_template
            .clone()
            .unwrap_or_else(|| id.default_template().into());
        let template =
            GhostTemplate::parse(&template).map_err(|m| (format!("{key}.ghost_template"), m))?;
        if net.enabled {
            let Some(server) = &net.server else {
                return Err((
                    format!("{key}.server"),
                    "an enabled network needs a server address (host:port)".into(),
                ));
            };
            if server
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
            {
                return Err((
                    format!("{key}.server"),
                    format!("{server:?} is not host:port"),
                ));
            }
            if config
                .appservice
                .as_ref()
                .is_some_and(|a| template.id_of(&a.bot.localpart).is_some())
            {
                return Err((
                    format!("{key}.ghost_template"),
                    "the template would include the bot's own user id".into(),
                ));
            }
        }
        templates.insert(id, template);
    }
    for (a_id, a_t) in &templates {
        for (b_id, b_t) in &templates {
            if a_id < b_id
                && config.networks[a_id.as_str()].enabled
                && config.networks[b_id.as_str()].enabled
            {
                let probe = a_t.localpart("x");
                if b_t.id_of(&probe).is_some() {
                    return Err((
                        format!("networks.{b_id}.ghost_template"),
                        format!("overlaps with networks.{a_id}.ghost_template"),
                    ));
                }
            }
        }
    }
    Ok(templates)
}

fn is_localpart(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '=' | '-' | '/'))
}

/// Server name grammar: a hostname or IP literal, optionally with a port.
fn is_server_name(s: &str) -> bool {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, _)) if !h.ends_with(']') && h.contains(':') => (s, None), // bare IPv6 is not allowed
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    if let Some(p) = port {
        if p.parse::<u16>().is_err() {
            return false;
        }
    }
    if host.starts_with('[') {
        return host.ends_with(']')
            && host[1..host.len() - 1]
                .parse::<std::net::Ipv6Addr>()
                .is_ok();
    }
    !host.is_empty()
        && host.len() <= 255
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !host.starts_with('.')
        && !host.contains("..")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const GOOD: &str = r#"
homeserver:
  address: http://127.0.0.1:8008
  domain: localhost
appservice:
  port: 29330
  url: http://127.0.0.1:29330
database:
  path: data
permissions:
  "*": user
  "@boss:localhost": admin
networks:
  icq:
    enabled: true
    server: 127.0.0.1:4000
"#;

    fn parse(text: &str) -> Result<LoadedConfig, ConfigError> {
        LoadedConfig::parse(text, Path::new("test.yaml"))
    }

    fn error_for(text: &str) -> ConfigError {
        parse(text).expect_err("config should be refused")
    }

    #[test]
    fn good_config_loads_with_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(
            c.config.appservice.as_ref().unwrap().bot.localpart,
            "retrobridgebot"
        );
        assert_eq!(c.enabled_networks().count(), 1);
        assert_eq!(c.permission("@boss:localhost"), Permission::Admin);
        assert_eq!(c.permission("@x:elsewhere"), Permission::User);
    }

    const XMPP_ONLY: &str = r#"
xmpp:
  domain: chat.local
  secret: s3cret
database:
  path: data
permissions:
  "xmpp:chat.local": user
  "xmpp:boss@chat.local": admin
networks:
  icq:
    enabled: true
    server: 127.0.0.1:4000
"#;

    #[test]
    fn an_xmpp_only_config_loads_with_its_domains_and_permissions() {
        let c = parse(XMPP_ONLY).unwrap();
        assert!(c.matrix().is_none());
        assert_eq!(c.domain(), "");
        let x = c.config.xmpp.as_ref().unwrap();
        assert_eq!(x.component_address, "127.0.0.1:5347");
        assert_eq!(x.gateway_domain(NetworkId::Icq), "icq.chat.local");
        assert_eq!(x.rooms_domain(), "rooms.chat.local");
        assert_eq!(c.permission("xmpp:alice@chat.local"), Permission::User);
        assert_eq!(c.permission("xmpp:boss@chat.local"), Permission::Admin);
        assert_eq!(c.permission("xmpp:eve@elsewhere.org"), Permission::None);
        // A Matrix user on a server named like the XMPP domain is someone else.
        assert_eq!(c.permission("@alice:chat.local"), Permission::None);
        assert!(c.listen_addr().is_err());
    }

    #[test]
    fn a_config_serves_at_least_one_front_and_the_matrix_blocks_go_together() {
        let nothing = XMPP_ONLY.replace("xmpp:\n  domain: chat.local\n  secret: s3cret\n", "");
        let e = error_for(&nothing);
        assert!(e.message.contains("nothing to serve"), "{e}");
        let half = format!(
            "homeserver:\n  address: http://127.0.0.1:8008\n  domain: localhost\n{XMPP_ONLY}"
        );
        let e = error_for(&half);
        assert_eq!(e.key, "appservice", "{e}");
        let both = format!(
            "{}{}",
            GOOD, "xmpp:\n  domain: chat.local\n  secret: s3cret\n"
        );
        let c = parse(&both).unwrap();
        assert!(c.matrix().is_some() && c.config.xmpp.is_some());
    }

    #[test]
    fn bad_xmpp_values_are_named() {
        let e = error_for(&XMPP_ONLY.replace("domain: chat.local", "domain: 'chat local'"));
        assert_eq!(e.key, "xmpp.domain", "{e}");
        let e = error_for(&XMPP_ONLY.replace("domain: chat.local", "domain: example.org"));
        assert_eq!(e.key, "xmpp.domain", "{e}");
        let e = error_for(&XMPP_ONLY.replace(
            "  secret: s3cret",
            "  secret: s3cret\n  component_address: localhost",
        ));
        assert_eq!(e.key, "xmpp.component_address", "{e}");
        let e = error_for(&XMPP_ONLY.replace("secret: s3cret", "secret: ''"));
        assert_eq!(e.key, "xmpp.secret", "{e}");
        let e = error_for(&XMPP_ONLY.replace("  secret: s3cret\n", ""));
        assert_eq!(e.key, "xmpp", "{e}");
        let e = error_for(&XMPP_ONLY.replace("xmpp:boss@chat.local", "xmpp:@chat.local"));
        assert!(e.key.starts_with("permissions"), "{e}");
        let with = |extra: &str| {
            XMPP_ONLY.replace("  secret: s3cret\n", &format!("  secret: s3cret\n{extra}"))
        };
        for bad in [
            "https://upload.chat.local",
            "upload.chat.local/share",
            "h:99999",
            "",
        ] {
            let e = error_for(&with(&format!("  file_hosts: [\"{bad}\"]\n")));
            assert_eq!(e.key, "xmpp.file_hosts", "{bad}: {e}");
        }
        let ok = parse(&with(
            "  file_hosts: [upload.chat.local, \"127.0.0.1:5280\"]\n",
        ))
        .unwrap();
        assert_eq!(ok.config.xmpp.unwrap().file_hosts.len(), 2);
        let e = error_for(&with(
            "  file_links: {port: 70000, public_url: 'http://x'}\n",
        ));
        assert_eq!(e.key, "xmpp.file_links.port", "{e}");
        let e = error_for(&with("  file_links: {port: 8080, public_url: 'x'}\n"));
        assert_eq!(e.key, "xmpp.file_links.public_url", "{e}");
        let e = error_for(&GOOD.replace("database:", "files: {max_bytes: 0}\ndatabase:"));
        assert_eq!(e.key, "files.max_bytes", "{e}");
    }

    #[test]
    fn nobody_is_allowed_by_default() {
        let text = GOOD.replace("  \"*\": user\n", "");
        let c = parse(&text).unwrap();
        assert_eq!(c.permission("@x:localhost"), Permission::None);
        assert_eq!(c.permission("@boss:localhost"), Permission::Admin);
    }

    #[test]
    fn missing_homeserver_address() {
        let e = error_for(&GOOD.replace("  address: http://127.0.0.1:8008\n", ""));
        assert_eq!(e.key, "homeserver");
        assert!(e.message.contains("address"), "{e}");
        let e = error_for(&GOOD.replace("http://127.0.0.1:8008", "''"));
        assert_eq!(e.key, "homeserver.address");
    }

    #[test]
    fn missing_domain() {
        let e = error_for(&GOOD.replace("  domain: localhost\n", ""));
        assert_eq!(e.key, "homeserver");
        assert!(e.message.contains("domain"), "{e}");
        let e = error_for(&GOOD.replace("domain: localhost", "domain: ''"));
        assert_eq!(e.key, "homeserver.domain");
    }

    #[test]
    fn port_out_of_range() {
        let e = error_for(&GOOD.replace("port: 29330", "port: 70000"));
        assert_eq!(e.key, "appservice.port");
        assert!(
            e.message.contains("70000") && e.message.contains("out of range"),
            "{e}"
        );
        let e = error_for(&GOOD.replace("port: 29330", "port: not-a-number"));
        assert_eq!(e.key, "appservice.port");
        assert!(e.line.is_some(), "{e}");
    }

    #[test]
    fn media_link_lifetime() {
        let lifetime =
            |c: &LoadedConfig| c.matrix().unwrap().appservice.media_link_lifetime_seconds;
        assert_eq!(lifetime(&parse(GOOD).unwrap()), 7 * 24 * 60 * 60);
        let with = |v: &str| {
            GOOD.replace(
                "  url: http://127.0.0.1:29330\n",
                &format!("  url: http://127.0.0.1:29330\n  media_link_lifetime_seconds: {v}\n"),
            )
        };
        assert_eq!(lifetime(&parse(&with("2")).unwrap()), 2);
        for bad in ["0", "31536001"] {
            let e = error_for(&with(bad));
            assert_eq!(e.key, "appservice.media_link_lifetime_seconds", "{e}");
            assert!(
                e.message.contains(bad) && e.message.contains("out of range"),
                "{e}"
            );
        }
        let e = error_for(&with("-1"));
        assert_eq!(e.key, "appservice.media_link_lifetime_seconds", "{e}");
        assert!(e.line.is_some(), "{e}");
    }

    #[test]
    fn unknown_network() {
        let e = error_for(&GOOD.replace("  icq:\n", "  aim:\n"));
        assert_eq!(e.key, "networks.aim");
        assert!(e.message.contains("unknown network"), "{e}");
    }

    #[test]
    fn malformed_permission() {
        let e = error_for(&GOOD.replace("\"@boss:localhost\": admin", "\"@boss\": admin"));
        assert_eq!(e.key, "permissions.\"@boss\"");
        let e = error_for(&GOOD.replace("\"@boss:localhost\": admin", "\"@boss:localhost\": god"));
        assert!(e.message.contains("god"), "{e}");
    }

    #[test]
    fn unknown_key_is_named_with_line() {
        let e = error_for(&GOOD.replace("  port: 29330", "  prot: 29330\n  port: 29330"));
        assert_eq!(e.key, "appservice.prot");
        assert!(e.message.contains("unknown field"), "{e}");
        assert!(e.line.is_some());
    }

    #[test]
    fn unreadable_file() {
        let e = LoadedConfig::load(Path::new("/nonexistent/retrobridge.yaml")).unwrap_err();
        assert!(e.message.contains("cannot read"), "{e}");
        assert!(e.to_string().contains("/nonexistent/retrobridge.yaml"));
    }

    /// GOOD with `block` added under `networks:`.
    pub(crate) fn with_network(block: &str) -> String {
        GOOD.replace("networks:\n", &format!("networks:\n{block}"))
    }

    #[test]
    fn log_level_is_checked() {
        let text = format!("{GOOD}logging:\n  level: verbose\n");
        let e = error_for(&text);
        assert_eq!(e.key, "logging.level");
        assert!(
            e.message.contains("verbose") && e.message.contains("debug"),
            "{e}"
        );
        let c = parse(&text.replace("verbose", "debug")).unwrap();
        assert_eq!(c.config.logging.level, "debug");
    }

    #[test]
    fn the_examples_domain_is_refused() {
        let e = error_for(&GOOD.replace("domain: localhost", "domain: example.org"));
        assert_eq!(e.key, "homeserver.domain");
        assert!(e.message.contains("example"), "{e}");
    }

    /// The shipped configs: the example is refused only for its placeholder domain, and
    /// its options (like the demo's) are valid.
    #[test]
    fn shipped_configs_load() {
        let example = include_str!("../../config/config.example.yaml");
        let e = error_for(example);
        assert_eq!(e.key, "homeserver.domain", "{e}");
        let edited = example.replace("example.org", "chat.mydomain.test");
        let c = parse(&edited).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.enabled_networks().count(), 3);
        parse(include_str!("../../config/demo.yaml")).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn the_key_file_is_beside_the_database_unless_configured_and_never_inside_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.yaml");
        std::fs::write(&file, GOOD.replace("path: data", "path: data/bridge.sled/")).unwrap();
        let c = LoadedConfig::load(&file).unwrap();
        assert_eq!(
            c.config.database.key_file(),
            dir.path().join("data/bridge.sled.key")
        );
        let set = GOOD.replace("path: data", "path: data\n  key_file: secret/db.key");
        std::fs::write(&file, set).unwrap();
        let c = LoadedConfig::load(&file).unwrap();
        assert_eq!(
            c.config.database.key_file(),
            dir.path().join("secret/db.key")
        );
        for inside in ["data/db.key", "./data/x/db.key"] {
            let text = GOOD.replace("path: data", &format!("path: data\n  key_file: {inside}"));
            std::fs::write(&file, text).unwrap();
            let e = LoadedConfig::load(&file).unwrap_err();
            assert_eq!(e.key, "database.key_file", "{e}");
            assert!(e.message.contains("inside the database folder"), "{e}");
        }
        // Also when the folder exists and is named another way.
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let absolute = dir.path().join("data/../data/db.key");
        let text = GOOD.replace(
            "path: data",
            &format!("path: data\n  key_file: {}", absolute.display()),
        );
        std::fs::write(&file, text).unwrap();
        assert_eq!(
            LoadedConfig::load(&file).unwrap_err().key,
            "database.key_file"
        );
    }

    #[test]
    fn metrics_are_off_by_default_and_their_listener_is_checked() {
        let c = parse(GOOD).unwrap();
        assert!(!c.config.metrics.enabled);
        assert_eq!(c.metrics_addr(), None);
        let on = format!("{GOOD}metrics:\n  enabled: true\n  listen: 127.0.0.1:9191\n");
        assert_eq!(
            parse(&on).unwrap().metrics_addr(),
            Some("127.0.0.1:9191".parse().unwrap())
        );
        let off = format!("{GOOD}metrics:\n  listen: 127.0.0.1:9191\n");
        assert_eq!(parse(&off).unwrap().metrics_addr(), None);
        // A bad address is refused even while metrics are off: it is a typo either way.
        let e = error_for(&format!("{GOOD}metrics:\n  listen: localhost:9090\n"));
        assert_eq!(e.key, "metrics.listen");
        assert!(e.message.contains("not an IP address and port"), "{e}");
        let e = error_for(&format!(
            "{GOOD}metrics:\n  enabled: true\n  listen: 0.0.0.0:29330\n"
        ));
        assert_eq!(e.key, "metrics.listen");
        assert!(e.message.contains("appservice listener"), "{e}");
        let e = error_for(&format!(
            "{GOOD}metrics:\n  enabled: true\n  listen: 127.0.0.1:0\n"
        ));
        assert!(e.message.contains("port 0"), "{e}");
        let e = error_for(&format!("{GOOD}metrics:\n  enabled: yes please\n"));
        assert_eq!(e.key, "metrics.enabled");
        let e = error_for(&format!("{GOOD}metrics:\n  port: 9090\n"));
        assert_eq!(e.key, "metrics.port");
        assert!(e.message.contains("unknown field"), "{e}");
    }

    #[test]
    fn provisioning_is_off_by_default_and_needs_a_long_secret() {
        assert!(parse(GOOD).unwrap().provisioning_secret().is_none());
        let secret = "0123456789abcdef0123456789abcdef";
        let c = parse(&format!(
            "{GOOD}provisioning:\n  shared_secret: \"{secret}\"\n"
        ))
        .unwrap();
        assert_eq!(c.provisioning_secret().unwrap().expose(), secret);
        assert!(!format!("{c:?}").contains(secret), "Debug shows no secret");
        let short = &secret[..31];
        let e = error_for(&format!("{GOOD}provisioning:\n  shared_secret: {short}\n"));
        assert_eq!(e.key, "provisioning.shared_secret");
        assert!(e.message.contains("too short"), "{e}");
        assert!(
            !e.to_string().contains(short),
            "the error shows no secret: {e}"
        );
        let e = error_for(&format!("{GOOD}provisioning: {{}}\n"));
        assert_eq!(e.key, "provisioning");
        assert!(e.message.contains("shared_secret"), "{e}");
        let e = error_for(&format!(
            "{GOOD}provisioning:\n  shared_secret: CHANGE_ME_to_a_long_random_secret_0123\n"
        ));
        assert!(e.message.contains("placeholder"), "{e}");
    }

    #[test]
    fn enabled_network_needs_server() {
        let e = error_for(&GOOD.replace("    server: 127.0.0.1:4000\n", ""));
        assert_eq!(e.key, "networks.icq.server");
    }
}
