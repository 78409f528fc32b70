//! Every frame of the relay ⇄ connector protocol as plain typed data (protocol.md §2).
//!
//! These types know nothing of connections or state: they are what one line of the
//! newline-delimited JSON stream means. Keys are spelled exactly as on the wire
//! (camelCase only for `botId`, `requestId`, `bufferId` and `bodyB64`); unknown keys are
//! ignored and an unknown `type` decodes to [`Frame::Unknown`] rather than an error, so a
//! newer peer never breaks an older one.
#![deny(clippy::indexing_slicing)]

mod action;
mod base64_decode;
pub mod close;
mod descriptor;
mod event;
mod metadata;
mod passthrough;
pub(crate) mod tagged;
pub(crate) mod text;

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

pub use action::{
    ActionResult, DeleteAction, DraftAction, EGRESS_DECLINED, EditAction, FollowUpAction,
    GetChatInfoAction, OutboundAction, PromptAction, PromptOption, ReactAction, SendAction,
    SendMediaAction, TaskCardAction, TaskCardStopAction, ThreadCreateAction, ThreadRenameAction,
    TypingAction, UnknownAction,
};
pub use descriptor::{
    CapabilityDescriptor, DEFAULT_MAX_MESSAGE_LENGTH, LEGACY_OPS, LenUnit, split_text, text_len,
};
pub use event::{
    ContextAuthor, ContextItem, MediaItem, MessageEvent, MessageType, PromptResponse, ReplyTo,
    SessionSource,
};
pub use metadata::Metadata;
pub(crate) use passthrough::decode_base64_bytes;
pub use passthrough::{Base64Error, BodyError, PassthroughForward, decode_base64};
pub use text::Str;

use tagged::{Tagged, TypeFirst};

/// One frame of the protocol, in either direction.
///
/// Which direction a frame travels is a matter for the machines: the codec decodes any
/// frame, so a machine can report a frame that arrived in the wrong direction instead of
/// failing to parse it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Frame {
    /// gateway → connector: announce one fronted identity. The larger frames are boxed
    /// (or box their body), so that a frame is small to move through the machine.
    Hello(Box<Identity>),
    /// connector → gateway: capabilities of one announced platform.
    Descriptor(Descriptor),
    /// connector → gateway: one message event, possibly replayed from the buffer. Not
    /// boxed: [`Inbound`] boxes its event, which is decoded into that box once and handed
    /// to the application in it.
    Inbound(Inbound),
    /// gateway → connector: durable receipt of a buffered delivery.
    InboundAck(InboundAck),
    /// gateway → connector: a request to perform an action.
    Outbound(Box<Outbound>),
    /// connector → gateway: the result of one `outbound`.
    OutboundResult(OutboundResult),
    /// gateway → connector: stop a session's running turn.
    Interrupt(Interrupt),
    /// connector → gateway: a `/stop` for a session this gateway runs.
    InterruptInbound(InterruptInbound),
    /// gateway → connector: switch this instance to buffered-only delivery.
    GoingIdle,
    /// connector → gateway: the switch to buffered-only delivery is done.
    GoingIdleAck,
    /// connector → gateway: a provider webhook with its body.
    PassthroughForward(PassthroughFrame),
    /// A frame type this crate does not know, kept verbatim.
    Unknown(UnknownFrame),
}

/// One platform identity (platform and bot) a gateway fronts: what its `hello` frame
/// carries, what a gateway is configured with, and what a connector learns of a socket.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Identity {
    /// The platform (`discord`, `telegram`, ...; `relay` when none is configured).
    pub platform: String,
    /// The bot or app identity on that platform; may be empty.
    #[serde(rename = "botId")]
    pub bot_id: String,
    /// Discord only: the slash commands to register, passed through verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_manifest: Option<Vec<Map<String, Value>>>,
}

impl Identity {
    /// An identity without a command manifest.
    pub fn new(platform: impl Into<String>, bot_id: impl Into<String>) -> Self {
        Self {
            platform: platform.into(),
            bot_id: bot_id.into(),
            command_manifest: None,
        }
    }
}

/// `descriptor`: the capabilities of one platform the gateway said `hello` for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    /// The capabilities.
    #[serde(deserialize_with = "tagged::object")]
    pub descriptor: Box<CapabilityDescriptor>,
}

/// `inbound`: one message event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inbound {
    /// The event, boxed: it is large (hundreds of bytes), and the box it is decoded into
    /// is the one the gateway hands to the application, so it is never moved or boxed
    /// again on the way.
    #[serde(deserialize_with = "event::boxed")]
    pub event: Box<MessageEvent>,
    /// Present when the event was replayed from the connector's durable buffer; the
    /// gateway must then acknowledge it with `inbound_ack` once it owns it.
    #[serde(
        default,
        rename = "bufferId",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_buffer_id"
    )]
    pub buffer_id: Option<BufferId>,
}

/// `inbound_ack`: the gateway durably owns a buffered delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundAck {
    /// The delivery acknowledged.
    #[serde(rename = "bufferId")]
    pub buffer_id: BufferId,
}

/// `outbound`: a request for the connector to perform an action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outbound {
    /// Correlates the `outbound_result`.
    #[serde(rename = "requestId")]
    pub request_id: RequestId,
    /// What to do.
    pub action: OutboundAction,
    /// Egress platform; absent means the session default (the first `hello`). A
    /// [`Str`], as the action's fields are: a name this short is kept inline, so neither
    /// it nor `bot_id` costs the connector an allocation per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Str>,
    /// The bot identity on `platform`; only together with `platform`.
    #[serde(default, rename = "botId", skip_serializing_if = "Option::is_none")]
    pub bot_id: Option<Str>,
}

/// `outbound_result`: what happened to one `outbound`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundResult {
    /// The request answered.
    #[serde(rename = "requestId")]
    pub request_id: RequestId,
    /// The result. Boxed, so that every frame is small to move: a gateway hands the
    /// box on in its [`Response`](crate::gateway::GatewayEvent::Response) as it is.
    #[serde(deserialize_with = "tagged::object")]
    pub result: Box<ActionResult>,
}

/// `interrupt`: stop the running turn of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interrupt {
    /// The session (protocol.md §9).
    pub session_key: String,
    /// Free text; always written, `null` when none.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `interrupt_inbound`: a `/stop` delivered to the gateway running the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterruptInbound {
    /// The session to interrupt.
    pub session_key: String,
    /// Its chat.
    pub chat_id: String,
}

/// `passthrough_forward`: a provider webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassthroughFrame {
    /// The webhook, boxed like an inbound's event: decoded into the box the gateway
    /// hands to the application.
    #[serde(deserialize_with = "tagged::object")]
    pub forward: Box<PassthroughForward>,
    /// Present when replayed from the durable buffer; acknowledge like an `inbound`.
    #[serde(
        default,
        rename = "bufferId",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_buffer_id"
    )]
    pub buffer_id: Option<BufferId>,
}

/// A frame whose `type` this crate does not know.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnknownFrame {
    /// The `type`.
    pub frame_type: String,
    /// Every other field, verbatim.
    pub fields: Map<String, Value>,
}

macro_rules! frames {
    (
        bodies { $($variant:ident($ty:ty) = $name:literal,)* }
        units { $($unit:ident = $uname:literal,)* }
    ) => {
        impl Frame {
            /// The wire `type` of every frame this crate has a typed variant for: each is
            /// what [`Frame::frame_type`] returns for its variant, and a frame of any other
            /// `type` decodes to [`Frame::Unknown`].
            pub const KNOWN_TYPES: [&'static str; 11] = [$($name,)* $($uname,)*];

            /// The wire `type`.
            pub fn frame_type(&self) -> &str {
                match self {
                    $(Frame::$variant(_) => $name,)*
                    $(Frame::$unit => $uname,)*
                    Frame::Unknown(u) => &u.frame_type,
                }
            }
        }

        impl Serialize for Frame {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(Frame::$variant(body) => TypeFirst { tag: $name, body }.serialize(s),)*
                    $(Frame::$unit => serialize_unknown("type", $uname, &Map::new(), s),)*
                    Frame::Unknown(u) => serialize_unknown("type", &u.frame_type, &u.fields, s),
                }
            }
        }

        impl Tagged for Frame {
            const TAG: &'static str = "type";
            const EXPECTING: &'static str = "a JSON object (a relay frame)";

            fn from_tag<'de, D: Deserializer<'de>>(tag: &str, body: D) -> Result<Self, D::Error> {
                Ok(match tag {
                    $($name => Frame::$variant(<$ty>::deserialize(body)?.into()),)*
                    $($uname => {
                        de::IgnoredAny::deserialize(body)?;
                        Frame::$unit
                    })*
                    other => {
                        let mut fields = Map::deserialize(body)?;
                        fields.remove("type");
                        Frame::Unknown(UnknownFrame { frame_type: other.to_owned(), fields })
                    }
                })
            }
        }

        $(impl From<$ty> for Frame {
            fn from(body: $ty) -> Self {
                Frame::$variant(body.into())
            }
        })*
    };
}

frames! {
    bodies {
        Hello(Identity) = "hello",
        Descriptor(Descriptor) = "descriptor",
        Inbound(Inbound) = "inbound",
        InboundAck(InboundAck) = "inbound_ack",
        Outbound(Outbound) = "outbound",
        OutboundResult(OutboundResult) = "outbound_result",
        Interrupt(Interrupt) = "interrupt",
        InterruptInbound(InterruptInbound) = "interrupt_inbound",
        PassthroughForward(PassthroughFrame) = "passthrough_forward",
    }
    units {
        GoingIdle = "going_idle",
        GoingIdleAck = "going_idle_ack",
    }
}

impl<'de> Deserialize<'de> for Frame {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        tagged::deserialize(d)
    }
}

/// Writes `{key: tag, ...fields}`, skipping a stray `key` inside `fields`.
fn serialize_unknown<S: Serializer>(
    key: &str,
    tag: &str,
    fields: &Map<String, Value>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(None)?;
    map.serialize_entry(key, tag)?;
    for (k, v) in fields.iter().filter(|(k, _)| k.as_str() != key) {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

/// Correlates an `outbound` with its `outbound_result`. Gateways built on this crate mint
/// 32 lowercase hex characters; any string from a peer is accepted.
///
/// A [`Str`]: the id of a decoded frame is a slice of the received message, so reading
/// an `outbound_result` or an `outbound` allocates nothing for its id. What the machines
/// keep of an id past `poll_output` is their own copy (the gateway's pending requests
/// are ids it minted; the connector keeps open ids inline), never such a slice.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(pub Str);

/// Names one buffered delivery, acknowledged with `inbound_ack`.
///
/// On read a JSON integer is accepted and kept as its decimal text (the reference
/// stringifies non-string scalars); `null` and `""` mean "not buffered".
///
/// A [`Str`]: an id of up to 23 bytes (`buf-17`, a row number) is kept inline, so
/// decoding a buffered delivery, cloning its id to ack it and queueing the ack allocate
/// nothing for it; a longer one is a slice of the received message, and the gateway's
/// own state keeps a copy of it, never the slice.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct BufferId(pub Str);

macro_rules! id_common {
    ($($ty:ident),*) => {$(
        impl $ty {
            /// The id's text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::hash::Hash for $ty {
            // As the id's text hashes (`str` writes its bytes, then `0xFF`), but from its
            // bytes: `as_str` checks them as UTF-8 on every call, and ids are hashed on
            // every request and every delivery.
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                state.write(self.0.as_bytes());
                state.write_u8(0xFF);
            }
        }
        impl From<&str> for $ty {
            fn from(s: &str) -> Self {
                $ty(s.into())
            }
        }
        impl From<String> for $ty {
            fn from(s: String) -> Self {
                $ty(s.into())
            }
        }
    )*};
}

id_common!(RequestId, BufferId);

impl<'de> Deserialize<'de> for BufferId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BufferIdVisitor)?
            .ok_or_else(|| de::Error::custom("bufferId must not be empty"))
    }
}

fn optional_buffer_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BufferId>, D::Error> {
    d.deserialize_any(BufferIdVisitor)
}

struct BufferIdVisitor;

impl<'de> Visitor<'de> for BufferIdVisitor {
    type Value = Option<BufferId>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an integer (bufferId)")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok((!v.is_empty()).then(|| BufferId(text::from_borrowed(v))))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok((!v.is_empty()).then(|| BufferId(v.into())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok((!v.is_empty()).then(|| BufferId(v.into())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(BufferId(v.to_string().into())))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(BufferId(v.to_string().into())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    /// The exported type list names exactly the typed variants: a minimal frame of each
    /// type decodes to a variant whose `frame_type()` is that name, never to `Unknown`.
    #[test]
    fn known_types_are_the_typed_variants() {
        // Every field any frame requires, at once: each type reads its own and ignores the
        // rest.
        let mut line = serde_json::json!({
            "platform": "discord",
            "botId": "b",
            "descriptor": {
                "contract_version": 1,
                "platform": "discord",
                "label": "Discord",
                "max_message_length": 2000,
                "supports_draft_streaming": false,
                "supports_edit": true,
                "supports_threads": true,
                "markdown_dialect": "discord",
                "len_unit": "chars",
            },
            "event": {"text": "hi"},
            "bufferId": "b-1",
            "requestId": "r-1",
            "action": {"op": "send", "chat_id": "c", "content": "x"},
            "result": {"success": true},
            "session_key": "s",
            "chat_id": "c",
            "forward": {"platform": "discord"},
        });
        for frame_type in Frame::KNOWN_TYPES {
            line["type"] = frame_type.into();
            let frame: Frame = serde_json::from_str(&line.to_string()).unwrap();
            assert!(!matches!(frame, Frame::Unknown(_)), "{frame_type}");
            assert_eq!(frame.frame_type(), frame_type);
        }
        let mut sorted = Frame::KNOWN_TYPES;
        sorted.sort_unstable();
        assert!(sorted.windows(2).all(|w| w[0] != w[1]), "{sorted:?}");
    }

    /// Ids hash from their bytes as their text hashes, so a table keyed by ids agrees
    /// with one keyed by the strings (and the hashes did not change with the shortcut).
    #[test]
    fn ids_hash_as_their_text() {
        use std::hash::BuildHasher;
        let hasher = std::collections::hash_map::RandomState::new();
        for text in ["", "b-1", "0123456789abcdef0123456789abcdef", "é\u{1F680}"] {
            let text_hash = hasher.hash_one(text);
            assert_eq!(hasher.hash_one(RequestId::from(text)), text_hash, "{text}");
            assert_eq!(hasher.hash_one(BufferId::from(text)), text_hash, "{text}");
        }
        assert_ne!(
            hasher.hash_one(RequestId::from("ab")),
            hasher.hash_one(RequestId::from("ab\0"))
        );
    }
}
