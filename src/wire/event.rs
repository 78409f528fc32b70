//! The inbound message event and its session source (protocol.md §4).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::tagged;
use super::text::Str;

/// One normalised platform message, as carried by an `inbound` frame.
///
/// Every field but `source` is optional on the wire; absent fields take the defaults of
/// protocol.md §4.1. Ids must be JSON strings (the reference does not coerce numbers
/// either, it only lets them leak into keys; here they are a typed error).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MessageEvent {
    /// The message text.
    #[serde(default)]
    pub text: Str,
    /// What kind of message this is.
    #[serde(default)]
    pub message_type: MessageType,
    /// Platform message id (replay dedupe, reactions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<Str>,
    /// Id of the message this one quotes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to_message_id: Option<Str>,
    /// What the user quoted.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "tagged::optional_object"
    )]
    pub reply_to: Option<ReplyTo>,
    /// Fetchable attachment references.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media_urls: Vec<String>,
    /// Metadata for attachments, matched to `media_urls` by URL.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "tagged::objects"
    )]
    pub media: Vec<MediaItem>,
    /// Surrounding messages, oldest first (multi-party chats, `supports_context`).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "tagged::objects"
    )]
    pub context: Vec<ContextItem>,
    /// Connector-side marker that fetching context failed; informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_error: Option<bool>,
    /// Structured answer to an interactive prompt (a button press).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "tagged::optional_object"
    )]
    pub prompt_response: Option<PromptResponse>,
    /// Where the message came from.
    #[serde(default, deserialize_with = "tagged::object")]
    pub source: SessionSource,
}

impl MessageEvent {
    /// MIME type of each entry of `media_urls`, looked up by URL in `media` (`""` when
    /// unknown). Always as long as `media_urls`, as the gateway derives it.
    pub fn media_types(&self) -> Vec<&str> {
        self.media_urls
            .iter()
            .map(|url| {
                self.media
                    .iter()
                    .find(|m| &m.url == url)
                    .and_then(|m| m.mime.as_deref())
                    .unwrap_or("")
            })
            .collect()
    }

    /// The message id of the triggering message: the source's, else the event's
    /// (the V-C fallback).
    pub fn source_message_id(&self) -> Option<&str> {
        self.source
            .message_id
            .as_deref()
            .or(self.message_id.as_deref())
    }
}

/// The kind of an inbound message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum MessageType {
    /// Plain text.
    #[default]
    Text,
    /// A shared location.
    Location,
    /// An image.
    Photo,
    /// A video.
    Video,
    /// An audio file.
    Audio,
    /// A voice note.
    Voice,
    /// A document or file.
    Document,
    /// A sticker.
    Sticker,
    /// A command (`/name args`).
    Command,
    /// Any other value, kept verbatim. The reference gateway treats it as `text`
    /// (including `image`, which the contract prose mentions but the enum lacks).
    Other(String),
}

impl MessageType {
    /// The wire spelling.
    pub fn as_str(&self) -> &str {
        match self {
            MessageType::Text => "text",
            MessageType::Location => "location",
            MessageType::Photo => "photo",
            MessageType::Video => "video",
            MessageType::Audio => "audio",
            MessageType::Voice => "voice",
            MessageType::Document => "document",
            MessageType::Sticker => "sticker",
            MessageType::Command => "command",
            MessageType::Other(s) => s,
        }
    }

    fn from_wire(s: &str) -> Self {
        match s {
            "text" => MessageType::Text,
            "location" => MessageType::Location,
            "photo" => MessageType::Photo,
            "video" => MessageType::Video,
            "audio" => MessageType::Audio,
            "voice" => MessageType::Voice,
            "document" => MessageType::Document,
            "sticker" => MessageType::Sticker,
            "command" => MessageType::Command,
            other => MessageType::Other(other.to_owned()),
        }
    }
}

impl Serialize for MessageType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MessageType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = tagged::Text::deserialize(d)?;
        Ok(MessageType::from_wire(text.as_str()))
    }
}

/// What the user quoted when replying.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReplyTo {
    /// The quoted text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Who wrote the quoted message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The quoted message was written by the bot itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_own: Option<bool>,
}

/// Metadata of one attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaItem {
    /// The attachment's URL (the key that matches it to `media_urls`).
    pub url: String,
    /// Kind of media (`image`, `audio`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// MIME type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime: Option<String>,
    /// Size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Original file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Caption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
}

/// One surrounding message of a multi-party chat.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContextItem {
    /// The message text.
    #[serde(default)]
    pub text: String,
    /// Its author.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "tagged::optional_object"
    )]
    pub source: Option<ContextAuthor>,
}

/// The author of a context message.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContextAuthor {
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// Author id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// A structured answer to an interactive prompt, copied verbatim by the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptResponse {
    /// The prompt answered (gateway-minted `<nonce>.<hex>`).
    pub prompt_id: String,
    /// The option chosen.
    pub option_id: String,
    /// The option's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Id of the message that showed the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_message_id: Option<String>,
}

/// Where a message came from: platform, chat, author and the routing ids that derive the
/// session key (protocol.md §4.2, §9).
///
/// `scope_id` is read with the legacy `guild_id` key as a fallback; only `scope_id` is
/// written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "SourceWire")]
pub struct SessionSource {
    /// The underlying platform (`discord`, `telegram`, ...). Default `relay`.
    pub platform: Str,
    /// Conversation id.
    pub chat_id: Str,
    /// Conversation name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_name: Option<Str>,
    /// `dm`, `group`, `channel`, `thread` or `forum`. Default `dm`.
    pub chat_type: Str,
    /// Authentic author id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Str>,
    /// Author's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<Str>,
    /// Author's display name; preferred over `user_name` for presentation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_display_name: Option<Str>,
    /// Author's handle; the last resort for presentation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_handle: Option<Str>,
    /// Thread or forum-topic id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<Str>,
    /// Conversation topic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_topic: Option<Str>,
    /// Stable alternate author id; preferred over `user_id` in session keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id_alt: Option<Str>,
    /// Alternate conversation id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_id_alt: Option<Str>,
    /// Discord guild, Slack workspace or Matrix server: the tenant discriminator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope_id: Option<Str>,
    /// Parent channel of a thread.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_chat_id: Option<Str>,
    /// Triggering message id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<Str>,
    /// Multiplex target profile (selects the session-key namespace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Str>,
    /// The connector created this thread through its auto-thread policy.
    #[serde(skip_serializing_if = "is_false")]
    pub auto_thread_created: bool,
    /// Name the auto-created thread was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_thread_initial_name: Option<Str>,
    /// Thread the reply to a channel message will be placed in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prospective_thread_id: Option<Str>,
    /// The author is a bot or webhook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_bot: Option<bool>,
    /// A verified one-to-one private chat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub one_to_one_verified: Option<bool>,
    /// The delivery is an edit of an earlier message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_is_edit: Option<bool>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Default for SessionSource {
    fn default() -> Self {
        SourceWire::default().into()
    }
}

impl SessionSource {
    /// A source for `chat_id` of `chat_type` on `platform`, everything else unset.
    pub fn new(
        platform: impl Into<Str>,
        chat_type: impl Into<Str>,
        chat_id: impl Into<Str>,
    ) -> Self {
        Self {
            platform: platform.into(),
            chat_type: chat_type.into(),
            chat_id: chat_id.into(),
            ..Self::default()
        }
    }

    /// The author's name for presentation: the first non-empty of `user_display_name`,
    /// `user_name`, `user_handle`.
    pub fn display_name(&self) -> Option<&str> {
        [&self.user_display_name, &self.user_name, &self.user_handle]
            .into_iter()
            .filter_map(|s| s.as_deref())
            .find(|s| !s.is_empty())
    }
}

/// The wire form, which also accepts the legacy `guild_id`.
#[derive(Deserialize)]
#[serde(expecting = "struct SessionSource")]
struct SourceWire {
    #[serde(default = "default_platform")]
    platform: Str,
    #[serde(default)]
    chat_id: Str,
    #[serde(default)]
    chat_name: Option<Str>,
    #[serde(default = "default_chat_type")]
    chat_type: Str,
    #[serde(default)]
    user_id: Option<Str>,
    #[serde(default)]
    user_name: Option<Str>,
    #[serde(default)]
    user_display_name: Option<Str>,
    #[serde(default)]
    user_handle: Option<Str>,
    #[serde(default)]
    thread_id: Option<Str>,
    #[serde(default)]
    chat_topic: Option<Str>,
    #[serde(default)]
    user_id_alt: Option<Str>,
    #[serde(default)]
    chat_id_alt: Option<Str>,
    #[serde(default)]
    scope_id: Option<Str>,
    #[serde(default)]
    guild_id: Option<Str>,
    #[serde(default)]
    parent_chat_id: Option<Str>,
    #[serde(default)]
    message_id: Option<Str>,
    #[serde(default)]
    profile: Option<Str>,
    #[serde(default)]
    auto_thread_created: bool,
    #[serde(default)]
    auto_thread_initial_name: Option<Str>,
    #[serde(default)]
    prospective_thread_id: Option<Str>,
    #[serde(default)]
    is_bot: Option<bool>,
    #[serde(default)]
    one_to_one_verified: Option<bool>,
    #[serde(default)]
    message_is_edit: Option<bool>,
}

impl Default for SourceWire {
    fn default() -> Self {
        Self {
            platform: default_platform(),
            chat_id: Str::new(),
            chat_name: None,
            chat_type: default_chat_type(),
            user_id: None,
            user_name: None,
            user_display_name: None,
            user_handle: None,
            thread_id: None,
            chat_topic: None,
            user_id_alt: None,
            chat_id_alt: None,
            scope_id: None,
            guild_id: None,
            parent_chat_id: None,
            message_id: None,
            profile: None,
            auto_thread_created: false,
            auto_thread_initial_name: None,
            prospective_thread_id: None,
            is_bot: None,
            one_to_one_verified: None,
            message_is_edit: None,
        }
    }
}

fn default_platform() -> Str {
    Str::from_static("relay")
}

fn default_chat_type() -> Str {
    Str::from_static("dm")
}

impl From<SourceWire> for SessionSource {
    fn from(w: SourceWire) -> Self {
        Self {
            platform: w.platform,
            chat_id: w.chat_id,
            chat_name: w.chat_name,
            chat_type: w.chat_type,
            user_id: w.user_id,
            user_name: w.user_name,
            user_display_name: w.user_display_name,
            user_handle: w.user_handle,
            thread_id: w.thread_id,
            chat_topic: w.chat_topic,
            user_id_alt: w.user_id_alt,
            chat_id_alt: w.chat_id_alt,
            scope_id: w.scope_id.or(w.guild_id),
            parent_chat_id: w.parent_chat_id,
            message_id: w.message_id,
            profile: w.profile,
            auto_thread_created: w.auto_thread_created,
            auto_thread_initial_name: w.auto_thread_initial_name,
            prospective_thread_id: w.prospective_thread_id,
            is_bot: w.is_bot,
            one_to_one_verified: w.one_to_one_verified,
            message_is_edit: w.message_is_edit,
        }
    }
}
