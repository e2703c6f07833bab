//! End-to-end test harness.

pub mod bridge;
pub mod matrix_user;
pub mod process;
pub mod synapse;

pub use matrix_user::{enc, wait_until, Invite, TestUser};
pub use synapse::{shared_instance, Synapse};
