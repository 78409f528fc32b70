//! `examples/follow_up.rs`: the connector and the gateway derive the same session key for a
//! Discord interaction, and the gateway's `follow_up` spends the vaulted token.
// The pair harness needs the `testing` feature. The repository's self dev-dependency
// turns it on for `cargo test`, and tests/features.rs fails there should it ever be off;
// the published package runs these with `--features testing`.
#![cfg(feature = "testing")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
#[path = "../examples/follow_up.rs"]
mod follow_up;

#[test]
fn both_sides_derive_the_same_key_and_the_follow_up_resolves() {
    let mut lines = Vec::new();
    let outcome = follow_up::run(&mut |who, what| lines.push(format!("{who} {what}"))).unwrap();
    assert_eq!(outcome.connector_key, "agent:main:discord:group:4455:77");
    assert_eq!(outcome.gateway_key, outcome.connector_key);
    assert_eq!(
        outcome.executed,
        Some((
            "aW50ZXJhY3Rpb24tdG9rZW4".to_owned(),
            "Started a new session.".to_owned()
        ))
    );
    assert!(outcome.success);
    // The credential never crossed the socket.
    let forwarded = String::from_utf8(outcome.forwarded_body).unwrap();
    assert!(forwarded.contains("\"channel_id\":\"4455\""), "{forwarded}");
    assert!(!forwarded.contains("token"), "{forwarded}");
    assert!(
        !forwarded.contains("aW50ZXJhY3Rpb24tdG9rZW4"),
        "{forwarded}"
    );
    // Both sides print the key.
    let with_key = lines
        .iter()
        .filter(|l| l.contains("agent:main:discord:group:4455:77"))
        .count();
    assert!(with_key >= 3, "{lines:#?}");
}
