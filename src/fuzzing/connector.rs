//! The `connector_ops` target.

/// Operation sequences on a [`ConnectorMachine`](crate::connector::ConnectorMachine).
pub fn connector_ops(_data: &[u8]) {}
