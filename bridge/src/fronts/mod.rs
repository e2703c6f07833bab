//! The fronts: the modern chat networks the bridge's users are on, each behind the
//! core's [`crate::core::front::Front`] trait.

pub mod downloads;
pub mod matrix;
pub(crate) mod queues;

pub mod xmpp;
