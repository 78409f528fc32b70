//! The `gateway_ops` target.

/// Operation sequences on a [`RelayMachine`](crate::gateway::RelayMachine).
pub fn gateway_ops(_data: &[u8]) {}
