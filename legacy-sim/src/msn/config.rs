//! The `msn:` section of the simulator's YAML file.

use serde::Deserialize;

/// Simulator settings. Every port may be 0 (pick a free one; tests).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address every listener binds to and advertises.
    pub host: String,
    /// Dispatch server: answers `USR TWN I` with `XFR NS`. Default 1863.
    pub dispatch_port: u16,
    /// Notification server. Default 1865 (1863 is the dispatch server's).
    pub notification_port: u16,
    /// Switchboard server. Default 1864, as on test servers of the time.
    pub switchboard_port: u16,
    /// HTTP nexus (`/rdr/pprdr.asp`) and Passport login (`/login`). Default 1880.
    pub http_port: u16,
    /// Send `CHL` after the first `CHG` and after every fifth `PNG`, and
    /// check the `QRY` answer (540 and disconnect when wrong).
    pub challenges: bool,
    /// The nexus gives DALogin as a full `http://` URL (true) or as the bare
    /// `host:port/login` form real servers used (false).
    pub dalogin_full_url: bool,
    /// The nexus announces `DALogin=https://<host:http_port>/login` although only plain
    /// HTTP is served there, as escargot does by default. A TLS hello on the HTTP port
    /// gets `400 Bad Request`, as from any plain-HTTP server.
    pub dalogin_https: bool,
    pub users: Vec<UserConfig>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            host: "127.0.0.1".into(),
            dispatch_port: 1863,
            notification_port: 1865,
            switchboard_port: 1864,
            http_port: 1880,
            challenges: false,
            dalogin_full_url: true,
            dalogin_https: false,
            users: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub email: String,
    pub password: String,
    /// Defaults to the email address.
    #[serde(default)]
    pub friendly_name: Option<String>,
    /// Group 0 ("Other Contacts") exists even when not listed.
    #[serde(default)]
    pub groups: Vec<GroupConfig>,
    #[serde(default)]
    pub contacts: Vec<ContactConfig>,
    /// `/login` answers 302 to `/login2` for this user (exercises redirects).
    #[serde(default)]
    pub login_redirect: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    pub id: u32,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactConfig {
    pub email: String,
    /// Defaults to the contact's own friendly name, else the email.
    #[serde(default)]
    pub nick: Option<String>,
    /// Any of FL, AL, BL, RL. Default `[FL, AL]`. RL entries are also derived
    /// from other users' FL, so they need not be written.
    #[serde(default = "default_lists")]
    pub lists: Vec<String>,
    #[serde(default)]
    pub groups: Vec<u32>,
}

fn default_lists() -> Vec<String> {
    vec!["FL".into(), "AL".into()]
}
