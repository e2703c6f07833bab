//! retrobridge: a Matrix appservice that puppets legacy IM accounts (ICQ v2, MSN MSNP9,
//! mig33). See docs/ARCHITECTURE.md for the architecture; `run` in [`app`] wires it together.

pub mod app;
pub mod config;
pub mod core;
pub mod fronts;
pub mod health;
pub mod ids;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod networks;
pub mod notify;
pub mod store;
