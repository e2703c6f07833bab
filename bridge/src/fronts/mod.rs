//! The fronts: how the bridge's users reach it. Today the XMPP front's protocol layer lives
//! here; the Matrix side is still in `matrix/` and `core/`.

pub mod xmpp;
