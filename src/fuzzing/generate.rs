//! Canonical frames from fuzzer input.
//!
//! Written by hand rather than derived on the wire types, so `src/wire` stays plain serde
//! data. Every value generated here is *canonical*: it is exactly what decoding its own
//! encoding gives back, so a round trip can be compared with `==` and no normalising pass.
//! That means the generator never produces the few values the decoder normalises:
//!
//! - `CapabilityDescriptor::supported_ops` never holds `""` (dropped on read);
//! - `max_message_length` is never 0 (read as 4096);
//! - `len_unit` is one of the two units (any other spelling reads as `chars`);
//! - a `bufferId` is never `""` (read as "not buffered");
//! - `MessageType::Other` never holds a known name (`"photo"` reads as `Photo`);
//! - an unknown frame's fields never hold `type`, an unknown action's never hold `op`, and
//!   an `ActionResult`'s `extra` never holds one of its named keys;
//! - a `bodyB64` that decodes is always `Ok` (its encoding is the canonical one), and an
//!   `Err` body holds exactly the error `decode_base64` gives for its text;
//! - JSON numbers are finite (JSON has no NaN).
//!
//! The decode target checks the other direction: frames decoded from arbitrary bytes are
//! a fixed point of one more encode → decode.

use arbitrary::{Result, Unstructured};
use bytes::Bytes;
use serde_json::{Map, Number, Value};

use crate::wire::{
    ActionResult, BodyError, BufferId, CapabilityDescriptor, ContextAuthor, ContextItem,
    DeleteAction, Descriptor, DraftAction, EditAction, FollowUpAction, Frame, GetChatInfoAction,
    Identity, Inbound, InboundAck, Interrupt, InterruptInbound, LenUnit, MediaItem, MessageEvent,
    MessageType, Metadata, Outbound, OutboundAction, OutboundResult, PassthroughForward,
    PassthroughFrame, PromptAction, PromptOption, PromptResponse, ReactAction, ReplyTo, RequestId,
    SendAction, SendMediaAction, SessionSource, Str, TaskCardAction, TaskCardStopAction,
    ThreadCreateAction, ThreadRenameAction, TypingAction, UnknownAction, UnknownFrame,
    decode_base64,
};

/// Every frame `type` this crate knows.
pub const FRAME_TYPES: [&str; 11] = Frame::KNOWN_TYPES;

/// Every action `op` this crate knows.
pub const OPS: [&str; 14] = OutboundAction::KNOWN_OPS;

const MESSAGE_TYPES: [&str; 9] = [
    "text", "location", "photo", "video", "audio", "voice", "document", "sticker", "command",
];

/// Keys `ActionResult` reads itself, so they can never be in its `extra`.
const RESULT_KEYS: [&str; 6] = [
    "success",
    "message_id",
    "error",
    "code",
    "thread_id",
    "auto_thread_name",
];

/// Strings that matter to the protocol or to JSON escaping; mixed in so short inputs reach
/// them without the fuzzer having to spell them.
const WORDS: [&str; 16] = [
    "",
    "discord",
    "telegram",
    "relay",
    "type",
    "op",
    "b-1",
    "requestId",
    "bufferId",
    "\n",
    "\"\\",
    "\u{0}",
    "\u{1F600}",
    "\u{2028}",
    "eyJ0eXBlIjoxfQ==",
    "chat-1",
];

/// Nesting of generated JSON values; far below serde_json's limit of 128 levels.
const MAX_DEPTH: u32 = 4;

/// Longest generated list or map: enough to cover empty, one and several.
const MAX_LEN: usize = 4;

/// Any string, often a protocol word.
pub fn text(u: &mut Unstructured<'_>) -> Result<String> {
    if u.ratio(1, 3)? {
        Ok((*u.choose(&WORDS)?).to_owned())
    } else {
        u.arbitrary()
    }
}

fn opt_text(u: &mut Unstructured<'_>) -> Result<Option<String>> {
    Ok(if u.arbitrary()? { Some(text(u)?) } else { None })
}

/// [`text`] as the [`Str`] an action field holds (the same draws).
fn str(u: &mut Unstructured<'_>) -> Result<Str> {
    text(u).map(Str::from)
}

/// [`opt_text`] as an optional [`Str`] (the same draws).
fn opt_str(u: &mut Unstructured<'_>) -> Result<Option<Str>> {
    Ok(opt_text(u)?.map(Str::from))
}

fn opt<T>(
    u: &mut Unstructured<'_>,
    f: impl FnOnce(&mut Unstructured<'_>) -> Result<T>,
) -> Result<Option<T>> {
    Ok(if u.arbitrary()? { Some(f(u)?) } else { None })
}

fn list<T>(
    u: &mut Unstructured<'_>,
    mut f: impl FnMut(&mut Unstructured<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let n = u.int_in_range(0..=MAX_LEN)?;
    (0..n).map(|_| f(u)).collect()
}

/// A string that is none of `taken`.
fn other_than(u: &mut Unstructured<'_>, taken: &[&str]) -> Result<String> {
    let s = text(u)?;
    Ok(if taken.contains(&s.as_str()) {
        format!("x-{s}")
    } else {
        s
    })
}

/// A finite JSON number: an unsigned, a negative or a float.
fn number(u: &mut Unstructured<'_>) -> Result<Number> {
    Ok(match u.int_in_range(0..=2)? {
        0 => Number::from(u.arbitrary::<u64>()?),
        1 => Number::from(u.arbitrary::<i64>()?),
        _ => Number::from_f64(u.arbitrary()?).unwrap_or_else(|| Number::from(0)),
    })
}

/// Any JSON value, nested at most `depth` levels.
pub fn value(u: &mut Unstructured<'_>, depth: u32) -> Result<Value> {
    let kinds = if depth == 0 { 3 } else { 5 };
    Ok(match u.int_in_range(0..=kinds)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::Number(number(u)?),
        3 => Value::String(text(u)?),
        4 => Value::Array(list(u, |u| value(u, depth - 1))?),
        _ => Value::Object(map(u, depth - 1, &[])?),
    })
}

/// A JSON object without the keys in `reserved`.
pub fn map(u: &mut Unstructured<'_>, depth: u32, reserved: &[&str]) -> Result<Map<String, Value>> {
    let mut map = Map::new();
    for _ in 0..u.int_in_range(0..=MAX_LEN)? {
        let key = text(u)?;
        if !reserved.contains(&key.as_str()) {
            map.insert(key, value(u, depth)?);
        }
    }
    Ok(map)
}

fn metadata(u: &mut Unstructured<'_>) -> Result<Metadata> {
    map(u, MAX_DEPTH - 1, &[]).map(Metadata::from)
}

/// A non-empty buffer id (`""` reads as "not buffered").
pub fn buffer_id(u: &mut Unstructured<'_>) -> Result<BufferId> {
    let id = text(u)?;
    Ok(BufferId(
        (if id.is_empty() { "b".to_owned() } else { id }).into(),
    ))
}

fn opt_buffer_id(u: &mut Unstructured<'_>) -> Result<Option<BufferId>> {
    opt(u, buffer_id)
}

/// Any frame, canonical (see the module docs).
pub fn frame(u: &mut Unstructured<'_>) -> Result<Frame> {
    Ok(match u.int_in_range(0..=11)? {
        0 => Frame::Hello(Box::new(Identity {
            platform: text(u)?,
            bot_id: text(u)?,
            command_manifest: opt(u, |u| list(u, |u| map(u, 2, &[])))?,
        })),
        1 => Frame::Descriptor(Descriptor {
            descriptor: Box::new(descriptor(u)?),
        }),
        2 => Frame::from(Inbound {
            event: Box::new(message_event(u)?),
            buffer_id: opt_buffer_id(u)?,
        }),
        3 => Frame::InboundAck(InboundAck {
            buffer_id: buffer_id(u)?,
        }),
        4 => Frame::Outbound(Box::new(Outbound {
            request_id: RequestId::from(text(u)?),
            action: action(u)?,
            platform: opt_text(u)?.map(Str::from),
            bot_id: opt_text(u)?.map(Str::from),
        })),
        5 => Frame::OutboundResult(OutboundResult {
            request_id: RequestId::from(text(u)?),
            result: Box::new(action_result(u)?),
        }),
        6 => Frame::Interrupt(Interrupt {
            session_key: text(u)?,
            reason: opt_text(u)?,
        }),
        7 => Frame::InterruptInbound(InterruptInbound {
            session_key: text(u)?,
            chat_id: text(u)?,
        }),
        8 => Frame::GoingIdle,
        9 => Frame::GoingIdleAck,
        10 => Frame::PassthroughForward(PassthroughFrame {
            forward: Box::new(passthrough_forward(u)?),
            buffer_id: opt_buffer_id(u)?,
        }),
        _ => Frame::Unknown(UnknownFrame {
            frame_type: other_than(u, &FRAME_TYPES)?,
            fields: map(u, MAX_DEPTH - 1, &["type"])?,
        }),
    })
}

/// A canonical capability descriptor.
pub fn descriptor(u: &mut Unstructured<'_>) -> Result<CapabilityDescriptor> {
    Ok(CapabilityDescriptor {
        contract_version: u.arbitrary()?,
        platform: text(u)?,
        label: text(u)?,
        max_message_length: u.int_in_range(1..=u64::MAX)?,
        supports_draft_streaming: u.arbitrary()?,
        supports_edit: u.arbitrary()?,
        supports_threads: u.arbitrary()?,
        markdown_dialect: text(u)?,
        len_unit: if u.arbitrary()? {
            LenUnit::Utf16
        } else {
            LenUnit::Chars
        },
        emoji: text(u)?,
        platform_hint: text(u)?,
        pii_safe: u.arbitrary()?,
        supports_context: u.arbitrary()?,
        supports_inchannel_continuable: u.arbitrary()?,
        supports_block_formatting: u.arbitrary()?,
        supported_ops: list(u, |u| {
            let op = text(u)?;
            Ok(if op.is_empty() { "send".to_owned() } else { op })
        })?,
    })
}

/// A canonical message event.
pub fn message_event(u: &mut Unstructured<'_>) -> Result<MessageEvent> {
    Ok(MessageEvent {
        text: text(u)?.into(),
        message_type: message_type(u)?,
        message_id: opt_text(u)?.map(Into::into),
        reply_to_message_id: opt_text(u)?.map(Into::into),
        reply_to: opt(u, |u| {
            Ok(Box::new(ReplyTo {
                text: opt_text(u)?,
                author: opt_text(u)?,
                is_own: u.arbitrary()?,
            }))
        })?,
        media_urls: list(u, text)?,
        media: list(u, |u| {
            Ok(MediaItem {
                url: text(u)?,
                kind: opt_text(u)?,
                mime: opt_text(u)?,
                size: u.arbitrary()?,
                filename: opt_text(u)?,
                caption: opt_text(u)?,
            })
        })?,
        context: list(u, |u| {
            Ok(ContextItem {
                text: text(u)?,
                source: opt(u, |u| {
                    Ok(ContextAuthor {
                        user_name: opt_text(u)?,
                        user_id: opt_text(u)?,
                    })
                })?,
            })
        })?,
        context_error: u.arbitrary()?,
        prompt_response: opt(u, |u| {
            Ok(Box::new(PromptResponse {
                prompt_id: text(u)?,
                option_id: text(u)?,
                label: opt_text(u)?,
                prompt_message_id: opt_text(u)?,
            }))
        })?,
        source: source(u)?,
    })
}

fn message_type(u: &mut Unstructured<'_>) -> Result<MessageType> {
    Ok(match u.int_in_range(0..=9)? {
        0 => MessageType::Text,
        1 => MessageType::Location,
        2 => MessageType::Photo,
        3 => MessageType::Video,
        4 => MessageType::Audio,
        5 => MessageType::Voice,
        6 => MessageType::Document,
        7 => MessageType::Sticker,
        8 => MessageType::Command,
        _ => MessageType::Other(other_than(u, &MESSAGE_TYPES)?),
    })
}

fn source(u: &mut Unstructured<'_>) -> Result<SessionSource> {
    Ok(SessionSource {
        platform: text(u)?.into(),
        chat_id: text(u)?.into(),
        chat_name: opt_text(u)?.map(Into::into),
        chat_type: text(u)?.into(),
        user_id: opt_text(u)?.map(Into::into),
        user_name: opt_text(u)?.map(Into::into),
        user_display_name: opt_text(u)?.map(Into::into),
        user_handle: opt_text(u)?.map(Into::into),
        thread_id: opt_text(u)?.map(Into::into),
        chat_topic: opt_text(u)?.map(Into::into),
        user_id_alt: opt_text(u)?.map(Into::into),
        chat_id_alt: opt_text(u)?.map(Into::into),
        scope_id: opt_text(u)?.map(Into::into),
        parent_chat_id: opt_text(u)?.map(Into::into),
        message_id: opt_text(u)?.map(Into::into),
        profile: opt_text(u)?.map(Into::into),
        auto_thread_created: u.arbitrary()?,
        auto_thread_initial_name: opt_text(u)?.map(Into::into),
        prospective_thread_id: opt_text(u)?.map(Into::into),
        is_bot: u.arbitrary()?,
        one_to_one_verified: u.arbitrary()?,
        message_is_edit: u.arbitrary()?,
    })
}

/// A canonical action result.
pub fn action_result(u: &mut Unstructured<'_>) -> Result<ActionResult> {
    Ok(ActionResult {
        success: u.arbitrary()?,
        message_id: opt_text(u)?.map(Into::into),
        error: opt_text(u)?,
        code: opt_text(u)?,
        thread_id: opt_text(u)?,
        auto_thread_name: opt_text(u)?,
        extra: map(u, MAX_DEPTH - 1, &RESULT_KEYS)?,
    })
}

/// A canonical passthrough forward.
pub fn passthrough_forward(u: &mut Unstructured<'_>) -> Result<PassthroughForward> {
    Ok(PassthroughForward {
        platform: text(u)?.into(),
        bot_id: text(u)?.into(),
        method: text(u)?.into(),
        path: text(u)?.into(),
        headers: list(u, |u| Ok((text(u)?.into(), text(u)?.into())))?,
        body: body(u)?,
        profile: opt_text(u)?.map(Into::into),
    })
}

/// A body as the decoder would produce it: decoded bytes, or the error for a text that is
/// not strict base64 together with that text.
pub fn body(u: &mut Unstructured<'_>) -> Result<std::result::Result<Bytes, BodyError>> {
    if u.arbitrary()? {
        return Ok(Ok(Bytes::from(u.arbitrary::<Vec<u8>>()?)));
    }
    let encoded = text(u)?;
    Ok(decode_base64(&encoded).map_err(|reason| BodyError { reason, encoded }))
}

/// A canonical action of any op.
pub fn action(u: &mut Unstructured<'_>) -> Result<OutboundAction> {
    Ok(match u.int_in_range(0..=14)? {
        0 => OutboundAction::Send(SendAction {
            chat_id: str(u)?,
            content: str(u)?,
            reply_to: opt_str(u)?,
            metadata: metadata(u)?,
        }),
        1 => OutboundAction::Edit(EditAction {
            chat_id: str(u)?,
            message_id: str(u)?,
            content: str(u)?,
            metadata: metadata(u)?,
        }),
        2 => OutboundAction::Typing(TypingAction {
            chat_id: str(u)?,
            content: opt_str(u)?,
            metadata: metadata(u)?,
        }),
        3 => OutboundAction::FollowUp(FollowUpAction {
            session_key: str(u)?,
            kind: str(u)?,
            content: str(u)?,
            metadata: metadata(u)?,
        }),
        4 => OutboundAction::GetChatInfo(GetChatInfoAction { chat_id: str(u)? }),
        5 => OutboundAction::SendMedia(Box::new(SendMediaAction {
            chat_id: str(u)?,
            media_kind: str(u)?,
            source_url: str(u)?,
            content: str(u)?,
            reply_to: opt_str(u)?,
            metadata: metadata(u)?,
            filename: opt_str(u)?,
        })),
        6 => OutboundAction::Prompt(Box::new(PromptAction {
            chat_id: str(u)?,
            content: str(u)?,
            prompt_kind: str(u)?,
            prompt_id: str(u)?,
            options: list(u, |u| {
                Ok(PromptOption {
                    id: str(u)?,
                    label: str(u)?,
                    style: opt_str(u)?,
                })
            })?,
            reply_to: opt_str(u)?,
            metadata: metadata(u)?,
            timeout_s: u.arbitrary()?,
        })),
        7 => OutboundAction::React(ReactAction {
            chat_id: str(u)?,
            message_id: str(u)?,
            emoji: str(u)?,
            remove: u.arbitrary()?,
            metadata: metadata(u)?,
        }),
        8 => OutboundAction::ThreadCreate(ThreadCreateAction {
            chat_id: str(u)?,
            thread_name: str(u)?,
            message_id: opt_str(u)?,
            metadata: metadata(u)?,
        }),
        9 => OutboundAction::ThreadRename(Box::new(ThreadRenameAction {
            chat_id: str(u)?,
            message_id: str(u)?,
            thread_name: str(u)?,
            metadata: metadata(u)?,
            only_if_connector_created: u.arbitrary()?,
            only_if_current_name: opt_str(u)?,
        })),
        10 => OutboundAction::Delete(DeleteAction {
            chat_id: str(u)?,
            message_id: str(u)?,
            metadata: metadata(u)?,
        }),
        11 => OutboundAction::Draft(DraftAction {
            chat_id: str(u)?,
            draft_id: u.arbitrary()?,
            content: str(u)?,
            is_final: u.arbitrary()?,
            metadata: metadata(u)?,
        }),
        12 => OutboundAction::TaskCard(TaskCardAction {
            chat_id: str(u)?,
            card_id: str(u)?,
            chunks: list(u, |u| value(u, MAX_DEPTH - 1))?,
            metadata: metadata(u)?,
        }),
        13 => OutboundAction::TaskCardStop(TaskCardStopAction {
            chat_id: str(u)?,
            card_id: str(u)?,
            metadata: metadata(u)?,
        }),
        _ => OutboundAction::Unknown(UnknownAction {
            op: other_than(u, &OPS)?,
            fields: map(u, MAX_DEPTH - 1, &["op"])?,
        }),
    })
}
