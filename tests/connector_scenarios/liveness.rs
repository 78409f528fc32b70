//! The hello timer (src/connector/mod.rs): bytes that are not a hello do not stop it.

use relay_machine::connector::{ConnectorCommand, ConnectorConfig};
use relay_machine::wire::close;

use crate::harness::{Conn, HELLO, snap};

#[test]
fn a_socket_without_a_complete_hello_is_closed_at_10s_with_1008_never_4401() {
    let mut run = Conn::new(ConnectorConfig::default());
    run.advance(4_000);
    // Half a hello, never finished: bytes, but no hello.
    run.bytes(&HELLO.as_bytes()[..20]);
    run.advance(5_999);
    assert!(run.commands.is_empty());
    run.advance(1);
    assert_eq!(
        run.commands,
        [ConnectorCommand::Close {
            code: 1008,
            reason: "hello timeout".into()
        }]
    );
    assert!(
        !run.commands.iter().any(|c| matches!(
            c,
            ConnectorCommand::Close { code, .. } if *code == close::UNAUTHORIZED
        )),
        "an auth strike for a slow socket would lock the gateway out"
    );
    assert!(run.m.is_closed());
    assert!(run.m.identities().is_empty());
    snap!(run.transcript);
}
