#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The config (src/gateway/config.rs): what `RelayMachine::new` refuses up front.

use std::time::Duration;

use relay_machine::gateway::{ConfigError, GatewayConfig, MAX_DURATION, RelayMachine};

/// A duration that could overflow `Instant` when added to `now` is refused up front.
#[test]
fn absurd_durations_are_refused_not_panicked_on() {
    let config = GatewayConfig {
        request_timeout: Duration::MAX,
        ..GatewayConfig::default()
    };
    assert_eq!(
        RelayMachine::new(config, 0).unwrap_err(),
        ConfigError::TooLong("request_timeout")
    );
    let mut config = GatewayConfig::default();
    config.backoff.hold_cap = MAX_DURATION;
    assert!(
        RelayMachine::new(config, 0).is_ok(),
        "the bound itself is accepted"
    );
}
