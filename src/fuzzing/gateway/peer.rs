//! The connector's side of `gateway_ops`: the frames it writes, valid, invalid and
//! unexpected, built from fuzzer input.

use arbitrary::Arbitrary;

use super::{Model, PLATFORMS};
use crate::codec::encode;
use crate::wire::{
    ActionResult, BufferId, CapabilityDescriptor, Descriptor, Frame, Inbound, InboundAck,
    InterruptInbound, MessageEvent, Outbound, OutboundResult, PassthroughForward, PassthroughFrame,
    RequestId, SendAction, SessionSource,
};

#[derive(Debug, Arbitrary)]
pub(super) enum PeerFrame {
    Descriptor(u8),
    /// A result for one of the requests sent (by index), or for a made-up id.
    Result {
        request: u8,
        success: bool,
    },
    UnknownResult(String),
    /// An `outbound_result` that names a sent request but does not decode.
    BadResult(u8),
    Inbound {
        chat: u8,
        buffer: Option<u8>,
    },
    /// An `inbound` that names a delivery but does not decode.
    BadInbound(u8),
    Passthrough {
        buffer: Option<u8>,
        body: String,
    },
    GoingIdleAck,
    InterruptInbound,
    /// A frame a connector never sends.
    Unexpected(u8),
    Blank,
    Garbage(Vec<u8>),
}

impl Model {
    pub(super) fn write_peer_frame(&self, frame: PeerFrame, out: &mut Vec<u8>) {
        let request = |i: u8| {
            self.sent
                .get(usize::from(i))
                .or(self.sent.last())
                .cloned()
                .unwrap_or_else(|| RequestId::from(format!("r{i}")))
        };
        let buffer = |i: u8| BufferId(format!("b-{}", i % 16).into());
        let frame = match frame {
            PeerFrame::Descriptor(p) => {
                // Mostly announced platforms; sometimes one of 64 invented ones, enough to
                // reach the bound on descriptors per connection.
                let platform = match p.checked_sub(192) {
                    Some(n) => format!("p{n}"),
                    None => PLATFORMS[usize::from(p) % PLATFORMS.len()].to_owned(),
                };
                Frame::Descriptor(Descriptor {
                    descriptor: Box::new(CapabilityDescriptor::new(platform, "P")),
                })
            }
            PeerFrame::Result {
                request: i,
                success,
            } => Frame::OutboundResult(OutboundResult {
                request_id: request(i),
                result: if success {
                    Box::new(ActionResult::ok_with_message("m"))
                } else {
                    Box::new(ActionResult::failure("no", None))
                },
            }),
            PeerFrame::UnknownResult(id) => Frame::OutboundResult(OutboundResult {
                request_id: RequestId::from(id),
                result: Box::new(ActionResult::ok()),
            }),
            PeerFrame::BadResult(i) => {
                let line = serde_json::json!({
                    "type": "outbound_result", "requestId": request(i).0, "result": 7,
                });
                out.extend_from_slice(line.to_string().as_bytes());
                out.push(b'\n');
                return;
            }
            PeerFrame::Inbound { chat, buffer: b } => {
                let mut source = SessionSource::new(
                    PLATFORMS[usize::from(chat) % PLATFORMS.len()],
                    "group",
                    format!("c{}", chat % 8),
                );
                source.scope_id = Some("g".into());
                Frame::from(Inbound {
                    event: Box::new(MessageEvent {
                        text: "hi".into(),
                        source,
                        ..Default::default()
                    }),
                    buffer_id: b.map(buffer),
                })
            }
            PeerFrame::BadInbound(b) => {
                let line = serde_json::json!({
                    "type": "inbound", "bufferId": buffer(b).0, "event": [],
                });
                out.extend_from_slice(line.to_string().as_bytes());
                out.push(b'\n');
                return;
            }
            PeerFrame::Passthrough { buffer: b, body } => {
                let mut forward = PassthroughForward::new("discord", bytes::Bytes::new());
                forward.body =
                    crate::wire::decode_base64(&body).map_err(|reason| crate::wire::BodyError {
                        reason,
                        encoded: body,
                    });
                Frame::PassthroughForward(PassthroughFrame {
                    forward: Box::new(forward),
                    buffer_id: b.map(buffer),
                })
            }
            PeerFrame::GoingIdleAck => Frame::GoingIdleAck,
            PeerFrame::InterruptInbound => Frame::InterruptInbound(InterruptInbound {
                session_key: "s".to_owned(),
                chat_id: "c0".to_owned(),
            }),
            PeerFrame::Unexpected(kind) => match kind % 5 {
                0 => Frame::Hello(Box::default()),
                1 => Frame::InboundAck(InboundAck {
                    buffer_id: buffer(kind),
                }),
                2 => Frame::GoingIdle,
                3 => Frame::Outbound(Box::new(Outbound {
                    request_id: request(kind),
                    action: SendAction::default().into(),
                    platform: None,
                    bot_id: None,
                })),
                _ => Frame::Unknown(crate::wire::UnknownFrame {
                    frame_type: "future".to_owned(),
                    fields: Default::default(),
                }),
            },
            PeerFrame::Blank => {
                out.extend_from_slice(b" \r\n");
                return;
            }
            PeerFrame::Garbage(bytes) => {
                out.extend_from_slice(&bytes);
                out.push(b'\n');
                return;
            }
        };
        out.extend_from_slice(&encode(&frame));
    }
}
