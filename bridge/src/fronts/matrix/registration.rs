//! The appservice registration file: what the homeserver loads, and where `run` finds
//! its tokens (`appservice.registration` in the config).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::LoadedConfig;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Registration {
    pub id: String,
    pub url: String,
    pub as_token: String,
    pub hs_token: String,
    pub sender_localpart: String,
    pub rate_limited: bool,
    pub namespaces: Namespaces,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receive_ephemeral: Option<bool>,
    #[serde(
        default,
        rename = "de.sorunome.msc2409.push_ephemeral",
        skip_serializing_if = "Option::is_none"
    )]
    pub push_ephemeral_unstable: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Namespaces {
    #[serde(default)]
    pub users: Vec<Namespace>,
    #[serde(default)]
    pub aliases: Vec<Namespace>,
    #[serde(default)]
    pub rooms: Vec<Namespace>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Namespace {
    pub exclusive: bool,
    pub regex: String,
}

impl Registration {
    /// A registration for `config` (which has the Matrix front) with fresh tokens.
    pub fn generate(config: &LoadedConfig) -> std::io::Result<Registration> {
        let appservice = config.config.appservice.as_ref().ok_or_else(|| {
            std::io::Error::other(
                "the config has no Matrix front (homeserver and appservice blocks): there is nothing to register",
            )
        })?;
        Ok(Registration {
            id: appservice.id.clone(),
            url: appservice.url.clone(),
            as_token: random_token()?,
            hs_token: random_token()?,
            sender_localpart: appservice.bot.localpart.clone(),
            rate_limited: false,
            namespaces: Namespaces {
                users: user_namespaces(config),
                ..Namespaces::default()
            },
            // Typing and presence from Matrix users arrive as ephemeral events (MSC2409).
            receive_ephemeral: Some(true),
            push_ephemeral_unstable: Some(true),
        })
    }

    pub fn load(path: &Path) -> Result<Registration, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "cannot read the registration {}: {e} (run generate-registration first)",
                path.display()
            )
        })?;
        let reg: Registration = serde_yaml::from_str(&text)
            .map_err(|e| format!("{}: not a valid registration: {e}", path.display()))?;
        let regenerate =
            "run `retrobridge generate-registration -c <your config>` (it writes fresh tokens), \
             then restart the homeserver so it loads the new file";
        if is_placeholder(&reg.as_token) || is_placeholder(&reg.hs_token) {
            return Err(format!(
                "{}: the tokens are placeholders, like the example's: {regenerate}",
                path.display()
            ));
        }
        if reg.as_token.len() < 32 || reg.hs_token.len() < 32 {
            return Err(format!(
                "{}: the tokens are too short: {regenerate}",
                path.display()
            ));
        }
        if reg.as_token == reg.hs_token {
            return Err(format!(
                "{}: as_token and hs_token are the same: {regenerate}",
                path.display()
            ));
        }
        Ok(reg)
    }

    /// Writes the file with mode 0640: the tokens are secret, but the homeserver, often
    /// another user, must read it (the operator gives it the file's group). Replacing a
    /// file keeps that file's group.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_yaml::to_string(self).map_err(std::io::Error::other)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        // Written to a temporary file then renamed, so a crash never leaves half a file.
        let tmp = path.with_extension("yaml.tmp");
        {
            use std::io::Write as _;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&tmp)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::{MetadataExt, PermissionsExt};
                if let Ok(old) = std::fs::metadata(path) {
                    // Best effort: only a member of that group may give it to the file.
                    let _ = std::os::unix::fs::fchown(&file, None, Some(old.gid()));
                }
                // Explicitly, whatever the umask.
                file.set_permissions(std::fs::Permissions::from_mode(REGISTRATION_MODE))?;
            }
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    }

    /// Whether the registration still claims what `config` needs (same bot, namespaces).
    pub fn matches(&self, config: &LoadedConfig) -> bool {
        config
            .config
            .appservice
            .as_ref()
            .is_some_and(|a| self.sender_localpart == a.bot.localpart)
            && self.namespaces.users == user_namespaces(config)
    }
}

/// Exclusive regexes for the bot and each enabled network's ghosts, and nothing else.
pub fn user_namespaces(config: &LoadedConfig) -> Vec<Namespace> {
    let domain = config.domain();
    let Some(appservice) = &config.config.appservice else {
        return Vec::new();
    };
    let bot = format!(
        "^@{}:{}$",
        regex::escape(&appservice.bot.localpart),
        regex::escape(domain)
    );
    let mut out = vec![Namespace {
        exclusive: true,
        regex: bot,
    }];
    for (id, _) in config.enabled_networks() {
        out.push(Namespace {
            exclusive: true,
            regex: config.ghost_templates[&id].user_regex(domain),
        });
    }
    out
}

/// Owner read-write, group read: see [`Registration::write`].
pub const REGISTRATION_MODE: u32 = 0o640;

/// A token made of one repeated character, like the example registration's.
fn is_placeholder(token: &str) -> bool {
    let mut chars = token.chars();
    chars.next().is_none_or(|first| chars.all(|c| c == first))
}

/// 32 bytes of OS randomness, hex encoded (64 characters).
fn random_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LoadedConfig;

    fn config() -> LoadedConfig {
        let text = r#"
homeserver: { address: "http://127.0.0.1:8008", domain: example.test }
appservice: { port: 29330, url: "http://127.0.0.1:29330" }
database: { path: data }
networks:
  icq: { enabled: true, server: "127.0.0.1:4000" }
  msn: { enabled: true, server: "127.0.0.1:1863", ghost_template: "msn_{id}" }
  mig33: { enabled: false, server: "127.0.0.1:9119" }
"#;
        LoadedConfig::parse(text, Path::new("t.yaml")).unwrap()
    }

    #[test]
    fn regexes_match_bot_and_ghosts_only() {
        let reg = Registration::generate(&config()).unwrap();
        let regexes: Vec<regex::Regex> = reg
            .namespaces
            .users
            .iter()
            .map(|n| regex::Regex::new(&n.regex).unwrap())
            .collect();
        let claimed = |user: &str| regexes.iter().any(|r| r.is_match(user));
        for user in [
            "@retrobridgebot:example.test",
            "@icq_12345:example.test",
            "@msn_alice=40hotmail.com:example.test",
        ] {
            assert!(claimed(user), "{user} should be claimed");
        }
        for user in [
            "@alice:example.test",
            "@retrobridgebot:example.test.evil",
            "@retrobridgebotx:example.test",
            "@icq_12345:other.org",
            "@mig33_bob:example.test", // network not enabled
            "@icq_:example.test",
            "@xicq_1:example.test",
        ] {
            assert!(!claimed(user), "{user} should not be claimed");
        }
        assert!(reg.namespaces.users.iter().all(|n| n.exclusive));
        assert!(!reg.rate_limited);
    }

    #[test]
    fn tokens_are_fresh_and_long() {
        let a = Registration::generate(&config()).unwrap();
        let b = Registration::generate(&config()).unwrap();
        assert_eq!(a.as_token.len(), 64);
        assert_ne!(a.as_token, b.as_token);
        assert_ne!(a.as_token, a.hs_token);
    }

    #[test]
    fn placeholder_tokens_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registration.yaml");
        std::fs::write(&path, include_str!("../../../../registration.yaml")).unwrap();
        let e = Registration::load(&path).unwrap_err();
        assert!(e.contains("placeholders"), "{e}");
        assert!(e.contains("generate-registration"), "{e}");
        let mut reg = Registration::generate(&config()).unwrap();
        reg.hs_token = reg.as_token.clone();
        reg.write(&path).unwrap();
        let e = Registration::load(&path).unwrap_err();
        assert!(e.contains("the same"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn written_readable_by_the_group_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registration.yaml");
        let reg = Registration::generate(&config()).unwrap();
        reg.write(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        // Also when replacing a file that had other permissions.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        reg.write(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }

    #[test]
    fn write_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registration.yaml");
        let reg = Registration::generate(&config()).unwrap();
        reg.write(&path).unwrap();
        assert_eq!(Registration::load(&path).unwrap(), reg);
        assert!(reg.matches(&config()));
    }
}
