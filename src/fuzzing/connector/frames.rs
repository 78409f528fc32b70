//! The gateway's side of `connector_ops`: the frames it writes, valid, invalid and
//! unexpected, built from fuzzer input.

use arbitrary::Arbitrary;

use super::{BOTS, Model, PLATFORMS};
use crate::codec::encode;
use crate::wire::{
    ActionResult, BufferId, Frame, Identity, InboundAck, Interrupt, Outbound, RequestId, SendAction,
};

#[derive(Debug, Arbitrary)]
pub(super) enum Id {
    Shared(u8),
    Fresh,
}

#[derive(Debug, Arbitrary)]
pub(super) enum GwFrame {
    Hello {
        platform: u8,
        bot: u8,
    },
    Outbound {
        id: Id,
        platform: Option<u8>,
        bot: Option<u8>,
    },
    /// An `outbound` that names its id but does not decode.
    BadOutbound(Id),
    /// An ack of a delivery seen on any connection (by index), or of a made-up id.
    Ack(u8),
    Interrupt,
    GoingIdle,
    /// A frame a gateway never sends.
    Unexpected(u8),
    Garbage(Vec<u8>),
}

/// Connections are named by index among the open ones (modulo their number).
impl Model {
    /// Writes one gateway frame as a line.
    pub(super) fn write_gateway_frame(&mut self, frame: GwFrame, out: &mut Vec<u8>) {
        let mut id_of = |id: Id| match id {
            Id::Shared(i) => RequestId::from(format!("r{}", i % 4)),
            Id::Fresh => {
                self.fresh += 1;
                RequestId::from(format!("f{}", self.fresh))
            }
        };
        let frame = match frame {
            GwFrame::Hello { platform, bot } => Frame::Hello(Box::new(Identity {
                platform: PLATFORMS[usize::from(platform) % PLATFORMS.len()].to_owned(),
                bot_id: BOTS[usize::from(bot) % BOTS.len()].to_owned(),
                command_manifest: None,
            })),
            GwFrame::Outbound { id, platform, bot } => Frame::Outbound(Box::new(Outbound {
                request_id: id_of(id),
                action: SendAction::default().into(),
                platform: platform.map(|p| PLATFORMS[usize::from(p) % PLATFORMS.len()].into()),
                bot_id: bot.map(|b| BOTS[usize::from(b) % BOTS.len()].into()),
            })),
            GwFrame::BadOutbound(id) => {
                let line = serde_json::json!({
                    "type": "outbound", "requestId": id_of(id).0, "action": {"op": "send"},
                });
                out.extend_from_slice(line.to_string().as_bytes());
                out.push(b'\n');
                return;
            }
            GwFrame::Ack(i) => {
                let buffer_id = self
                    .delivered
                    .get(usize::from(i))
                    .cloned()
                    .unwrap_or_else(|| BufferId(format!("b-{i}").into()));
                Frame::InboundAck(InboundAck { buffer_id })
            }
            GwFrame::Interrupt => Frame::Interrupt(Interrupt {
                session_key: "s".to_owned(),
                reason: None,
            }),
            GwFrame::GoingIdle => Frame::GoingIdle,
            GwFrame::Unexpected(kind) => match kind % 3 {
                0 => Frame::GoingIdleAck,
                1 => Frame::OutboundResult(crate::wire::OutboundResult {
                    request_id: RequestId::from("r0".to_owned()),
                    result: Box::new(ActionResult::ok()),
                }),
                _ => Frame::Unknown(crate::wire::UnknownFrame {
                    frame_type: "future".to_owned(),
                    fields: Default::default(),
                }),
            },
            GwFrame::Garbage(mut bytes) => {
                bytes.retain(|&b| b != b'\n');
                out.extend_from_slice(&bytes);
                out.push(b'\n');
                return;
            }
        };
        out.extend_from_slice(&encode(&frame));
    }
}
