//! Outbound actions and their results (protocol.md §5).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::tagged::{self, OpFirst, Tagged};
use super::{Metadata, Str};

/// An action the gateway asks the connector to perform, tagged by `op` on the wire.
///
/// The actions' text fields are [`Str`]s, not `String`s: a connector receives an action
/// per request, and a `Str` decodes without an allocation or a copy when the string is
/// short (kept inline) or has no escapes (a slice of the received line), where each
/// `String` was both. Build one from a `&str` or a `String` with `.into()`; take an owned
/// `String` with `String::from` when the action is kept past the request.
///
/// Each op of protocol.md §5.3 has a typed variant; any other op is kept verbatim in
/// [`OutboundAction::Unknown`], so a connector can receive ops newer than itself and
/// answer them with a structured failure instead of failing to decode the frame.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum OutboundAction {
    /// `send`: post a message.
    Send(SendAction),
    /// `edit`: replace a message's text.
    Edit(EditAction),
    /// `typing`: show or clear a typing indicator.
    Typing(TypingAction),
    /// `follow_up`: answer through a vaulted capability (e.g. a Discord interaction token).
    FollowUp(FollowUpAction),
    /// `get_chat_info`: ask for a chat's name and type.
    GetChatInfo(GetChatInfoAction),
    /// `send_media`: post an attachment. Boxed, as are `prompt` and `thread_rename`: they
    /// are the largest actions and rare, and every event and frame is as large as its
    /// largest variant, moved several times on the way to the application.
    SendMedia(Box<SendMediaAction>),
    /// `prompt`: post a message with answer buttons.
    Prompt(Box<PromptAction>),
    /// `react`: add or remove a reaction.
    React(ReactAction),
    /// `thread_create`: open a thread.
    ThreadCreate(ThreadCreateAction),
    /// `thread_rename`: rename a thread, optionally guarded.
    ThreadRename(Box<ThreadRenameAction>),
    /// `delete`: delete a message.
    Delete(DeleteAction),
    /// `draft`: update a native streaming draft.
    Draft(DraftAction),
    /// `task_card`: show or update a task card.
    TaskCard(TaskCardAction),
    /// `task_card_stop`: close a task card.
    TaskCardStop(TaskCardStopAction),
    /// An op this crate does not know, kept verbatim.
    Unknown(UnknownAction),
}

/// `send`: post `content` to `chat_id`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SendAction {
    /// Target chat.
    pub chat_id: Str,
    /// Message text.
    pub content: Str,
    /// Message to reply to. Always written, `null` when none.
    #[serde(default)]
    pub reply_to: Option<Str>,
    /// Routing and formatting metadata.
    #[serde(default)]
    pub metadata: Metadata,
}

/// `edit`: replace the text of `message_id`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EditAction {
    /// Chat of the message.
    pub chat_id: Str,
    /// Message to edit.
    pub message_id: Str,
    /// New text.
    pub content: Str,
    /// Routing metadata.
    #[serde(default)]
    pub metadata: Metadata,
}

/// `typing`: show a typing indicator, a status phrase, or clear it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TypingAction {
    /// Target chat.
    pub chat_id: Str,
    /// Absent: default indicator; non-empty: a status phrase; `""`: clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Str>,
    /// Routing metadata.
    #[serde(default)]
    pub metadata: Metadata,
}

/// `follow_up`: answer through a capability the connector vaulted under `session_key`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FollowUpAction {
    /// Session the capability was bound to.
    pub session_key: Str,
    /// Kind of capability, e.g. `discord.interaction_token`.
    pub kind: Str,
    /// Message text.
    pub content: Str,
    /// Routing metadata.
    #[serde(default)]
    pub metadata: Metadata,
}

/// `get_chat_info`: ask for a chat's name and type.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GetChatInfoAction {
    /// The chat asked about.
    pub chat_id: Str,
}

/// `send_media`: post an attachment from `source_url`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SendMediaAction {
    /// Target chat.
    pub chat_id: Str,
    /// `image`, `voice`, `audio`, `video` or `document`.
    pub media_kind: Str,
    /// Public URL or connector re-host of the media.
    pub source_url: Str,
    /// Caption; `""` when none.
    #[serde(default)]
    pub content: Str,
    /// Message to reply to. Always written, `null` when none.
    #[serde(default)]
    pub reply_to: Option<Str>,
    /// Routing metadata.
    #[serde(default)]
    pub metadata: Metadata,
    /// File name to show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<Str>,
}

/// `prompt`: post `content` with answer buttons.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PromptAction {
    /// Target chat.
    pub chat_id: Str,
    /// Prompt text.
    pub content: Str,
    /// `approval`, `clarify` or `choice` (a styling hint).
    pub prompt_kind: Str,
    /// Gateway-minted prompt id.
    pub prompt_id: Str,
    /// The answer buttons.
    #[serde(deserialize_with = "tagged::objects")]
    pub options: Vec<PromptOption>,
    /// Message to reply to. Always written, `null` when none.
    #[serde(default)]
    pub reply_to: Option<Str>,
    /// Routing metadata.
    #[serde(default)]
    pub metadata: Metadata,
    /// Advisory expiry in seconds (enforced by the gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u64>,
}

/// One answer button of a prompt.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PromptOption {
    /// Option id (`[A-Za-z0-9_.-]{1,32}`).
    pub id: Str,
    /// Button label.
    pub label: Str,
    /// `primary`, `success`, `danger` or `secondary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<Str>,
}

/// `react`: add or remove `emoji` on a message.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReactAction {
    /// Chat of the message.
    pub chat_id: Str,
    /// Message to react to.
    pub message_id: Str,
    /// The Unicode emoji.
    pub emoji: Str,
    /// Remove instead of add.
    #[serde(default)]
    pub remove: bool,
    /// Routing metadata.
    #[serde(default)]
    pub metadata: Metadata,
}

/// `thread_create`: open a thread under `chat_id`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ThreadCreateAction {
    /// Parent chat.
    pub chat_id: Str,
    /// Thread name (≤ 100 chars); `handoff` when absent.
    #[serde(default = "default_thread_name")]
    pub thread_name: Str,
    /// Message to anchor the thread on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<Str>,
    /// Routing metadata.
    #[serde(default)]
    pub metadata: Metadata,
}

fn default_thread_name() -> Str {
    const HANDOFF: Str = Str::from_static("handoff");
    HANDOFF
}

/// `thread_rename`: rename the thread `message_id`, with at most one guard.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ThreadRenameAction {
    /// Parent chat.
    pub chat_id: Str,
    /// The thread's id.
    pub message_id: Str,
    /// New name (whitespace-collapsed, ≤ 100 chars).
    pub thread_name: Str,
    /// Routing metadata.
    #[serde(default)]
    pub metadata: Metadata,
    /// Rename only a thread the connector created (the preferred guard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_if_connector_created: Option<bool>,
    /// Rename only if the thread still has this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_if_current_name: Option<Str>,
}

/// `delete`: delete a message.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeleteAction {
    /// Chat of the message.
    pub chat_id: Str,
    /// Message to delete.
    pub message_id: Str,
    /// Routing metadata.
    #[serde(default)]
    pub metadata: Metadata,
}

/// `draft`: update, or with `is_final` seal, a native streaming draft.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DraftAction {
    /// Target chat.
    pub chat_id: Str,
    /// The draft stream's id.
    pub draft_id: i64,
    /// Current text.
    pub content: Str,
    /// This update seals the stream (`final` on the wire); must be idempotent.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// Routing metadata.
    #[serde(default)]
    pub metadata: Metadata,
}

/// `task_card`: show or update a task card.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TaskCardAction {
    /// Target chat.
    pub chat_id: Str,
    /// Card id (`turn:<anchor>`).
    pub card_id: Str,
    /// Task objects, passed through verbatim.
    pub chunks: Vec<Value>,
    /// Routing metadata.
    #[serde(default)]
    pub metadata: Metadata,
}

/// `task_card_stop`: close a task card (idempotent).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TaskCardStopAction {
    /// Target chat.
    pub chat_id: Str,
    /// Card id.
    pub card_id: Str,
    /// Routing metadata.
    #[serde(default)]
    pub metadata: Metadata,
}

/// An action with an op this crate does not know.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnknownAction {
    /// The op.
    pub op: String,
    /// Every other field, verbatim.
    pub fields: Map<String, Value>,
}

macro_rules! ops {
    ($($variant:ident($ty:ty) = $op:literal,)*) => {
        impl OutboundAction {
            /// The wire name of every op this crate has a typed variant for.
            pub const KNOWN_OPS: [&'static str; 14] = [$($op),*];

            /// The op's wire name.
            pub fn op(&self) -> &str {
                match self {
                    $(OutboundAction::$variant(_) => $op,)*
                    OutboundAction::Unknown(u) => &u.op,
                }
            }
        }

        impl Serialize for OutboundAction {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(OutboundAction::$variant(body) => OpFirst { op: $op, body }.serialize(s),)*
                    OutboundAction::Unknown(u) => {
                        super::serialize_unknown("op", &u.op, &u.fields, s)
                    }
                }
            }
        }

        impl Tagged for OutboundAction {
            const TAG: &'static str = "op";
            const EXPECTING: &'static str = "an action object";

            fn from_tag<'de, D: Deserializer<'de>>(tag: &str, body: D) -> Result<Self, D::Error> {
                Ok(match tag {
                    $($op => OutboundAction::$variant(<$ty>::deserialize(body)?),)*
                    op => {
                        let mut fields = Map::deserialize(body)?;
                        fields.remove("op");
                        OutboundAction::Unknown(UnknownAction { op: op.to_owned(), fields })
                    }
                })
            }
        }

        $(impl From<$ty> for OutboundAction {
            fn from(action: $ty) -> Self {
                OutboundAction::$variant(action)
            }
        })*
    };
}

ops! {
    Send(SendAction) = "send",
    Edit(EditAction) = "edit",
    Typing(TypingAction) = "typing",
    FollowUp(FollowUpAction) = "follow_up",
    GetChatInfo(GetChatInfoAction) = "get_chat_info",
    SendMedia(Box<SendMediaAction>) = "send_media",
    Prompt(Box<PromptAction>) = "prompt",
    React(ReactAction) = "react",
    ThreadCreate(ThreadCreateAction) = "thread_create",
    ThreadRename(Box<ThreadRenameAction>) = "thread_rename",
    Delete(DeleteAction) = "delete",
    Draft(DraftAction) = "draft",
    TaskCard(TaskCardAction) = "task_card",
    TaskCardStop(TaskCardStopAction) = "task_card_stop",
}

/// The boxed variants convert from their action as the others do.
macro_rules! boxed_from {
    ($($variant:ident($ty:ty),)*) => {$(
        impl From<$ty> for OutboundAction {
            fn from(action: $ty) -> Self {
                OutboundAction::$variant(Box::new(action))
            }
        }
    )*};
}

boxed_from! {
    SendMedia(SendMediaAction),
    Prompt(PromptAction),
    ThreadRename(ThreadRenameAction),
}

impl<'de> Deserialize<'de> for OutboundAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        tagged::deserialize(d)
    }
}

impl OutboundAction {
    /// The target chat, for every op that has one (all but `follow_up` and unknown ops
    /// without a string `chat_id`).
    pub fn chat_id(&self) -> Option<&str> {
        match self {
            OutboundAction::Send(a) => Some(a.chat_id.as_str()),
            OutboundAction::Edit(a) => Some(a.chat_id.as_str()),
            OutboundAction::Typing(a) => Some(a.chat_id.as_str()),
            OutboundAction::FollowUp(_) => None,
            OutboundAction::GetChatInfo(a) => Some(a.chat_id.as_str()),
            OutboundAction::SendMedia(a) => Some(a.chat_id.as_str()),
            OutboundAction::Prompt(a) => Some(a.chat_id.as_str()),
            OutboundAction::React(a) => Some(a.chat_id.as_str()),
            OutboundAction::ThreadCreate(a) => Some(a.chat_id.as_str()),
            OutboundAction::ThreadRename(a) => Some(a.chat_id.as_str()),
            OutboundAction::Delete(a) => Some(a.chat_id.as_str()),
            OutboundAction::Draft(a) => Some(a.chat_id.as_str()),
            OutboundAction::TaskCard(a) => Some(a.chat_id.as_str()),
            OutboundAction::TaskCardStop(a) => Some(a.chat_id.as_str()),
            OutboundAction::Unknown(a) => a.fields.get("chat_id").and_then(Value::as_str),
        }
    }

    /// The action's `metadata`, for every op that carries one (all but `get_chat_info`;
    /// for an unknown op, its `metadata` object if it has one), as a map to change (received
    /// metadata is parsed here: see [`Metadata::map_mut`]).
    pub fn metadata_mut(&mut self) -> Option<&mut Map<String, Value>> {
        match self {
            OutboundAction::Send(a) => Some(a.metadata.map_mut()),
            OutboundAction::Edit(a) => Some(a.metadata.map_mut()),
            OutboundAction::Typing(a) => Some(a.metadata.map_mut()),
            OutboundAction::FollowUp(a) => Some(a.metadata.map_mut()),
            OutboundAction::GetChatInfo(_) => None,
            OutboundAction::SendMedia(a) => Some(a.metadata.map_mut()),
            OutboundAction::Prompt(a) => Some(a.metadata.map_mut()),
            OutboundAction::React(a) => Some(a.metadata.map_mut()),
            OutboundAction::ThreadCreate(a) => Some(a.metadata.map_mut()),
            OutboundAction::ThreadRename(a) => Some(a.metadata.map_mut()),
            OutboundAction::Delete(a) => Some(a.metadata.map_mut()),
            OutboundAction::Draft(a) => Some(a.metadata.map_mut()),
            OutboundAction::TaskCard(a) => Some(a.metadata.map_mut()),
            OutboundAction::TaskCardStop(a) => Some(a.metadata.map_mut()),
            OutboundAction::Unknown(a) => {
                a.fields.get_mut("metadata").and_then(Value::as_object_mut)
            }
        }
    }
}

/// The marker code of an authorisation decline (protocol.md §5.4).
pub const EGRESS_DECLINED: &str = "egress_declined";

/// What the connector reports for one outbound action.
///
/// Op-specific extras the crate does not model (`chat_info`, top-level `name`/`type`,
/// anything newer) are preserved in [`extra`](Self::extra).
///
/// Displays as the outcome in words: `ok`, `ok message m-1`, `ok message m-1 thread t-9`,
/// `failed: missing permission`, `failed (egress_declined): blocked`; the extras are left
/// out (the JSON has them).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ActionResult {
    /// The action was performed. Absent reads as `false`, as in the reference.
    #[serde(default)]
    pub success: bool,
    /// Id of the created or edited message. A [`Str`](super::Str): ids are short, so it
    /// is kept inline, and a result decodes without allocating for it. (The other fields
    /// stay `String`: they are rare, and each `Str` makes the result 16 bytes larger,
    /// which every queued gateway output pays.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<super::Str>,
    /// Human-readable failure reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Machine-readable failure code (`egress_declined`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Thread the connector placed the reply in (auto-thread feedback, `thread_create`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    /// Name of the thread the connector just created for the reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_thread_name: Option<String>,
    /// Every other key, verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl std::fmt::Display for ActionResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.success {
            f.write_str("ok")?;
            if let Some(id) = &self.message_id {
                write!(f, " message {id}")?;
            }
            if let Some(thread) = &self.thread_id {
                write!(f, " thread {thread}")?;
            }
            Ok(())
        } else {
            f.write_str("failed")?;
            if let Some(code) = &self.code {
                write!(f, " ({code})")?;
            }
            match &self.error {
                Some(error) => write!(f, ": {error}"),
                None => Ok(()),
            }
        }
    }
}

impl ActionResult {
    /// A success without a message id.
    pub fn ok() -> Self {
        Self {
            success: true,
            ..Self::default()
        }
    }

    /// A success that created or edited `message_id`.
    pub fn ok_with_message(message_id: impl Into<super::Str>) -> Self {
        Self {
            success: true,
            message_id: Some(message_id.into()),
            ..Self::default()
        }
    }

    /// A failure with a reason and an optional machine-readable code.
    pub fn failure(error: impl Into<String>, code: Option<&str>) -> Self {
        Self {
            success: false,
            error: Some(error.into()),
            code: code.map(str::to_owned),
            ..Self::default()
        }
    }

    /// The uniform authorisation decline a connector sends for `platform`.
    pub fn egress_declined(platform: &str) -> Self {
        Self::failure(
            format!(
                "{platform} egress declined: target is not an approved destination for this connection"
            ),
            Some(EGRESS_DECLINED),
        )
    }

    /// Whether this is an authorisation decline: a failure carrying the
    /// `egress_declined` code, or (older connectors) the `egress declined:` marker text in
    /// any case. A gateway must not retry a declined destination with another op.
    pub fn is_egress_declined(&self) -> bool {
        !self.success
            && (self.code.as_deref() == Some(EGRESS_DECLINED)
                || self
                    .error
                    .as_deref()
                    .is_some_and(|e| e.to_ascii_lowercase().contains("egress declined:")))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use bytes::Bytes;

    use super::*;
    use crate::wire::text::with_source;

    /// Decoded as the codec decodes a line (the line is the source of borrowed strings):
    /// an action's long unescaped strings are slices of the line, short ones are inline,
    /// escaped ones (Python's `\uXXXX`) are owned copies, and all read as the text.
    #[test]
    fn unescaped_action_strings_are_slices_of_the_line() {
        let line = Bytes::from_static(
            br#"{"op": "follow_up", "session_key": "agent:main:discord:group:4455", "kind": "discord.interaction_token", "content": "Working on it \u2026 \ud83d\ude80", "metadata": {}}"#,
        );
        let action: OutboundAction = with_source(&line, || serde_json::from_slice(&line)).unwrap();
        let OutboundAction::FollowUp(f) = action else {
            panic!("{action:?}")
        };
        assert!(f.session_key.is_shared_slice(&line));
        assert!(f.kind.is_shared_slice(&line));
        assert_eq!(f.kind, "discord.interaction_token");
        assert!(!f.content.is_shared_slice(&line));
        assert_eq!(f.content, "Working on it \u{2026} \u{1F680}");

        let line = Bytes::from_static(
            br#"{"op": "send", "chat_id": "4455", "content": "a reply long enough to be a slice", "reply_to": "77"}"#,
        );
        let action: OutboundAction = with_source(&line, || serde_json::from_slice(&line)).unwrap();
        let OutboundAction::Send(send) = action else {
            panic!("{action:?}")
        };
        assert!(send.content.is_shared_slice(&line));
        assert_eq!(send.chat_id, "4455");
        assert_eq!(send.reply_to.as_deref(), Some("77"));
    }
}
