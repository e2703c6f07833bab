//! The legacy networks compiled into this bridge, each behind the core's
//! [`Network`](crate::core::Network) trait. Each module exposes
//! `build(NetworkSettings, <its options>) -> Option<Arc<dyn Network>>`.
//!
//! Each network declares its `options` block as a typed struct next to its code
//! (`icq::IcqOptions`, `msn::MsnOptions`, `mig33::Mig33Options`): serde refuses unknown
//! keys and wrong types, and the struct's `check` refuses values the types allow but the
//! network cannot use. `check-config` reports both with the key path
//! (`networks.msn.options.nexus_url`) and line. The config does not know these keys: the
//! file is read a second time here ([`NetworkOptions::read`]).

pub mod backoff;
pub mod driver;
pub mod icq;
pub mod mig33;
pub mod msn;
pub mod pacing;
pub mod read_buf;

use std::sync::Arc;

use serde::Deserialize;

use crate::config::{ConfigError, LoadedConfig};
use crate::core::{Network, NetworkId, NetworkSettings};

/// Every network's `options`, typed (defaults for a network without a block).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct NetworkOptions {
    pub icq: icq::IcqOptions,
    pub msn: msn::MsnOptions,
    pub mig33: mig33::Mig33Options,
}

/// A refused option value: the key inside `options`, and what is wrong.
pub type OptionError = (&'static str, String);

impl NetworkOptions {
    /// Every network's `options` in the config file, typed and checked.
    pub fn read(config: &LoadedConfig) -> Result<NetworkOptions, ConfigError> {
        let pass: OptionsPass = config.read_again()?;
        let options = pass.networks.into_options();
        options.check().map_err(|(key, message)| ConfigError {
            file: config.file.clone(),
            key,
            line: None,
            message,
        })?;
        Ok(options)
    }

    /// Checks every network's options; the error names the full key path.
    pub fn check(&self) -> Result<(), (String, String)> {
        let at = |network: NetworkId| {
            move |(key, message): OptionError| {
                (format!("networks.{network}.options.{key}"), message)
            }
        };
        self.icq.check().map_err(at(NetworkId::Icq))?;
        self.msn.check().map_err(at(NetworkId::Msn))?;
        self.mig33.check().map_err(at(NetworkId::Mig33))?;
        Ok(())
    }
}

/// The config file's `networks.<net>.options`, and nothing else.
#[derive(Deserialize)]
struct OptionsPass {
    #[serde(default)]
    networks: OptionsOfNetworks,
}

#[derive(Default, Deserialize)]
struct OptionsOfNetworks {
    #[serde(default)]
    icq: Option<OptionsOf<icq::IcqOptions>>,
    #[serde(default)]
    msn: Option<OptionsOf<msn::MsnOptions>>,
    #[serde(default)]
    mig33: Option<OptionsOf<mig33::Mig33Options>>,
}

impl OptionsOfNetworks {
    fn into_options(self) -> NetworkOptions {
        NetworkOptions {
            icq: self.icq.unwrap_or_default().options,
            msn: self.msn.unwrap_or_default().options,
            mig33: self.mig33.unwrap_or_default().options,
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(bound(deserialize = "O: Deserialize<'de> + Default"))]
struct OptionsOf<O> {
    /// `options:` with every key commented out is null: the defaults.
    #[serde(default, deserialize_with = "null_is_default")]
    options: O,
}

fn null_is_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// For durations in seconds, where 0 would mean "never" or a busy loop.
fn at_least_one_second(key: &'static str, value: u64) -> Result<(), OptionError> {
    if value == 0 {
        return Err((key, "must be at least 1 (seconds)".into()));
    }
    Ok(())
}

/// The implementations for the networks the config enables.
pub fn build(config: &LoadedConfig, options: &NetworkOptions) -> Vec<Arc<dyn Network>> {
    config
        .enabled_networks()
        .filter_map(|(id, net)| {
            let settings = NetworkSettings {
                server: net.server.clone().unwrap_or_default(),
                max_file_bytes: config.config.files.max_bytes,
            };
            match id {
                NetworkId::Icq => icq::build(settings, options.icq.clone()),
                NetworkId::Msn => msn::build(settings, options.msn.clone()),
                NetworkId::Mig33 => mig33::build(settings, options.mig33.clone()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::tests::{with_network, GOOD};

    /// The config text as `check-config` reads it: the config's part, then the options.
    struct Read {
        options: NetworkOptions,
    }

    fn parse(text: &str) -> Result<Read, ConfigError> {
        let config = LoadedConfig::parse(text, Path::new("test.yaml"))?;
        Ok(Read {
            options: NetworkOptions::read(&config)?,
        })
    }

    fn error_for(text: &str) -> ConfigError {
        parse(text).err().expect("config should be refused")
    }

    #[test]
    fn network_options_are_typed() {
        let c = parse(&GOOD.replace(
            "    server: 127.0.0.1:4000\n",
            "    server: 127.0.0.1:4000\n    options:\n      probe_interval_secs: 2\n",
        ))
        .unwrap();
        assert_eq!(c.options.icq.probe_interval_secs, 2);
        assert_eq!(c.options.icq.login_timeout_secs, 20, "default kept");
        assert_eq!(c.options.msn, msn::MsnOptions::default());
        // `options:` with every key commented out is the defaults.
        let c = parse(&GOOD.replace(
            "    server: 127.0.0.1:4000\n",
            "    server: 127.0.0.1:4000\n    options:\n      # probe_interval_secs: 2\n",
        ))
        .unwrap();
        assert_eq!(c.options.icq, icq::IcqOptions::default());
    }

    #[test]
    fn network_option_of_the_wrong_type_is_named_with_line() {
        let e = error_for(&GOOD.replace(
            "    server: 127.0.0.1:4000\n",
            "    server: 127.0.0.1:4000\n    options:\n      probe_interval_secs: \"2\"\n",
        ));
        assert_eq!(e.key, "networks.icq.options.probe_interval_secs");
        assert!(e.message.contains("invalid type"), "{e}");
        assert_eq!(e.line, Some(18), "{e}");
    }

    #[test]
    fn unknown_network_option_is_named() {
        let e = error_for(&GOOD.replace(
            "    server: 127.0.0.1:4000\n",
            "    server: 127.0.0.1:4000\n    options:\n      probe_interval: 2\n",
        ));
        assert_eq!(e.key, "networks.icq.options.probe_interval");
        assert!(e.message.contains("unknown field"), "{e}");
        assert!(
            e.message.contains("probe_interval_secs"),
            "names the known keys: {e}"
        );
        let e = error_for(&with_network(
            "  mig33:\n    server: 127.0.0.1:9119\n    options: { nexus_url: \"https://x\" }\n",
        ));
        assert_eq!(e.key, "networks.mig33.options.nexus_url");
    }

    #[test]
    fn unusable_network_option_values_are_refused() {
        let msn = |options: &str| {
            with_network(&format!(
                "  msn:\n    enabled: true\n    server: 127.0.0.1:1863\n    options: {{ {options} }}\n"
            ))
        };
        let e = error_for(&msn(
            "nexus_url: \"http://nexus.example.net/rdr/pprdr.asp\"",
        ));
        assert_eq!(e.key, "networks.msn.options.nexus_url");
        assert!(e.message.contains("https"), "{e}");
        let c = parse(&msn("nexus_url: \"http://127.0.0.1:1880/rdr/pprdr.asp\"")).unwrap();
        assert_eq!(
            c.options.msn.nexus_url,
            "http://127.0.0.1:1880/rdr/pprdr.asp"
        );
        let e = error_for(&msn("login_url: \"http://login.example.net/login\""));
        assert_eq!(e.key, "networks.msn.options.login_url");
        assert!(e.message.contains("https"), "{e}");
        let c = parse(&msn("login_url: \"http://127.0.0.1:1880/login\"")).unwrap();
        assert_eq!(
            c.options.msn.login_url.as_deref(),
            Some("http://127.0.0.1:1880/login")
        );
        let e = error_for(&GOOD.replace(
            "    server: 127.0.0.1:4000\n",
            "    server: 127.0.0.1:4000\n    options: { missed_probes: 0 }\n",
        ));
        assert_eq!(e.key, "networks.icq.options.missed_probes");
        let e = error_for(&msn("ping_seconds: 0"));
        assert_eq!(e.key, "networks.msn.options.ping_seconds");
        assert!(e.message.contains("at least 1"), "{e}");
        let e = error_for(&msn("ping_seconds: -5"));
        assert_eq!(e.key, "networks.msn.options.ping_seconds");
    }

    /// The shipped example's options are valid.
    #[test]
    fn shipped_configs_options_are_valid() {
        let example = include_str!("../../../config/config.example.yaml");
        let edited = example.replace("example.org", "chat.mydomain.test");
        let c = parse(&edited).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.options.msn.nexus_url.starts_with("http://127.0.0.1"));
        parse(include_str!("../../../config/demo.yaml")).unwrap_or_else(|e| panic!("{e}"));
    }
}
