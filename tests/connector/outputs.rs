//! The output contract (src/outputs.rs), connector side: whatever the application pushed
//! before a connection's end is written before its close, nothing comes after the close,
//! and a peer close leaves nothing to write.

use relay_machine::connector::{self, ConnectorCommand, ConnectorConfig, Delivery};
use relay_machine::testing::SoloConnector;
use relay_machine::wire::{ActionResult, BufferId, MessageEvent, RequestId};

use crate::fixtures::HELLO;

#[derive(Debug, Clone, Copy)]
enum Push {
    Respond,
    Buffered,
    Live,
    Interrupt,
}

#[derive(Debug, Clone, Copy)]
enum End {
    Close,
    RejectAuth,
    PeerClose,
}

#[test]
fn every_frame_comes_before_its_close() {
    let pushes = [Push::Respond, Push::Buffered, Push::Live, Push::Interrupt];
    for first in pushes {
        for second in pushes {
            for end in [End::Close, End::RejectAuth, End::PeerClose] {
                let mut run = SoloConnector::new(ConnectorConfig::default());
                run.line(HELLO);
                run.descriptor("discord").unwrap();
                run.line(r#"{"type":"outbound","requestId":"r-1","action":{"op":"send","chat_id":"c","content":"x"}}"#);
                let m = run.mark();
                let now = run.now;
                let conn = &mut run.machine;
                let mut expected = Vec::new();
                for (n, push) in [first, second].into_iter().enumerate() {
                    let ok = match push {
                        Push::Respond => conn
                            .respond(now, &RequestId::from("r-1"), ActionResult::ok())
                            .is_ok(),
                        Push::Buffered => conn
                            .send_buffered(
                                now,
                                BufferId(format!("b-0-{}", n + 1).into()),
                                Delivery::from(MessageEvent::default()),
                            )
                            .is_ok(),
                        Push::Live => conn.send_live(now, MessageEvent::default()).is_ok(),
                        Push::Interrupt => conn.send_interrupt(now, "s", "c").is_ok(),
                    };
                    // Answering the same request twice is refused; nothing is written.
                    if ok {
                        expected.push(match push {
                            Push::Respond => "outbound_result",
                            Push::Buffered | Push::Live => "inbound",
                            Push::Interrupt => "interrupt_inbound",
                        });
                    }
                }
                match end {
                    End::Close => conn.close(now, 1000, "bye"),
                    End::RejectAuth => conn.reject_auth(now, "unauthorized"),
                    End::PeerClose => {
                        conn.on_closed(now, None, "reset");
                        run.check.connection_ended(None);
                    }
                }
                run.settle();
                let outputs: Vec<connector::Output> = run.log.connector[m..]
                    .iter()
                    .map(|r| r.output.clone())
                    .collect();
                let case = format!("{first:?}, {second:?} then {end:?}");
                let types: Vec<String> = run
                    .frames_since(m)
                    .iter()
                    .map(|f| f["type"].as_str().unwrap().to_owned())
                    .collect();
                if let End::PeerClose = end {
                    assert!(outputs.is_empty(), "{case}: {outputs:?}");
                    continue;
                }
                assert_eq!(types, expected, "{case}");
                assert!(
                    matches!(
                        outputs.last(),
                        Some(connector::Output::Command(ConnectorCommand::Close { .. }))
                    ),
                    "{case}: the close is not last: {outputs:?}"
                );
                let conn = &mut run.machine;
                assert!(
                    conn.send_live(now, MessageEvent::default()).is_err(),
                    "{case}: a push after the close"
                );
                assert!(
                    conn.send_buffered(
                        now,
                        BufferId::from("b-0-9"),
                        Delivery::from(MessageEvent::default())
                    )
                    .is_err(),
                    "{case}: a buffered push after the close"
                );
                assert_eq!(conn.poll_output(), None, "{case}");
            }
        }
    }
}
