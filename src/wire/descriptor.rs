//! The capability descriptor a connector sends for each announced platform (protocol.md §3).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The ops a connector supports when its descriptor lists none (protocol.md §3.4).
pub const LEGACY_OPS: [&str; 4] = ["send", "edit", "typing", "follow_up"];

/// What the gateway may do on one platform: message length, formatting and the ops the
/// connector executes there.
///
/// Decoding is strict about JSON types (a string where a boolean belongs is an error,
/// unlike the reference, which keeps whatever it got); missing optional fields take the
/// defaults of protocol.md §3.1 and unknown keys are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilityDescriptor {
    /// Contract version; currently 1. Never checked: evolution within a version is additive.
    pub contract_version: u32,
    /// The platform described; the key of the gateway's per-platform descriptor map.
    pub platform: String,
    /// Human-readable platform label.
    pub label: String,
    /// Longest message the platform accepts, counted in [`len_unit`](Self::len_unit).
    /// A value of zero or less on the wire is read as 4096, as the reference does.
    #[serde(deserialize_with = "max_message_length")]
    pub max_message_length: u64,
    /// The platform can show a native draft/stream preview (`draft` op).
    pub supports_draft_streaming: bool,
    /// Messages can be edited, so replies can stream by editing.
    pub supports_edit: bool,
    /// The platform has threads the gateway can hand a conversation off to.
    pub supports_threads: bool,
    /// Markup dialect of outgoing text (`plain`, `markdown_v2`, `discord`, `slack`, ...).
    pub markdown_dialect: String,
    /// How the platform counts message length.
    pub len_unit: LenUnit,
    /// Display emoji for the platform.
    #[serde(default = "default_emoji")]
    pub emoji: String,
    /// A hint for the agent's system prompt.
    #[serde(default)]
    pub platform_hint: String,
    /// User and chat ids should be redacted from prompts.
    #[serde(default)]
    pub pii_safe: bool,
    /// The connector may attach surrounding `context` to multi-party inbound.
    #[serde(default)]
    pub supports_context: bool,
    /// The platform can host a flat continuable cron surface.
    #[serde(default)]
    pub supports_inchannel_continuable: bool,
    /// The sender renders block formatting (enables `metadata.format_hints`).
    #[serde(default)]
    pub supports_block_formatting: bool,
    /// Ops the connector executes on this platform; empty means [`LEGACY_OPS`].
    /// Empty strings are dropped on decode, as the reference does.
    #[serde(default, deserialize_with = "supported_ops")]
    pub supported_ops: Vec<String>,
}

fn default_emoji() -> String {
    "\u{1F50C}".to_owned()
}

/// Any JSON integer that fits `i64` or `u64` (the field is a `u64`, so every value this
/// crate writes must read back); zero or less reads as the default.
fn max_message_length<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct Length;

    impl serde::de::Visitor<'_> for Length {
        type Value = u64;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an integer")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(if v == 0 {
                DEFAULT_MAX_MESSAGE_LENGTH
            } else {
                v
            })
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u64, E> {
            Ok(u64::try_from(v)
                .ok()
                .filter(|&v| v > 0)
                .unwrap_or(DEFAULT_MAX_MESSAGE_LENGTH))
        }
    }

    d.deserialize_i64(Length)
}

fn supported_ops<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let mut ops = Vec::<String>::deserialize(d)?;
    ops.retain(|op| !op.is_empty());
    Ok(ops)
}

/// The length limit assumed when a descriptor gives none that makes sense.
pub const DEFAULT_MAX_MESSAGE_LENGTH: u64 = 4096;

impl CapabilityDescriptor {
    /// A descriptor for `platform` with the protocol's defaults: 4096 code points,
    /// plain text, no optional capability, legacy ops only. Connectors start from this
    /// and set what their platform supports.
    pub fn new(platform: impl Into<String>, label: impl Into<String>) -> Self {
        Self {
            contract_version: 1,
            platform: platform.into(),
            label: label.into(),
            max_message_length: DEFAULT_MAX_MESSAGE_LENGTH,
            supports_draft_streaming: false,
            supports_edit: false,
            supports_threads: false,
            markdown_dialect: "plain".to_owned(),
            len_unit: LenUnit::Chars,
            emoji: default_emoji(),
            platform_hint: String::new(),
            pii_safe: false,
            supports_context: false,
            supports_inchannel_continuable: false,
            supports_block_formatting: false,
            supported_ops: Vec::new(),
        }
    }

    /// Whether the connector executes `op` on this platform: listed in
    /// [`supported_ops`](Self::supported_ops), or in [`LEGACY_OPS`] when that list is empty.
    ///
    /// The reference checks `delete`, `draft` and `task_card` against the advertised list
    /// only; none of them is a legacy op, so this one rule gives the same answers.
    pub fn supports_op(&self, op: &str) -> bool {
        if self.supported_ops.is_empty() {
            LEGACY_OPS.contains(&op)
        } else {
            self.supported_ops.iter().any(|o| o == op)
        }
    }

    /// Whether the `draft` op may be used: it needs both the capability flag and the op.
    pub fn supports_drafts(&self) -> bool {
        self.supports_draft_streaming && self.supported_ops.iter().any(|o| o == "draft")
    }

    /// Length of `text` as this platform counts it.
    pub fn text_len(&self, text: &str) -> usize {
        text_len(text, self.len_unit)
    }

    /// `text` cut into messages that each fit this platform's limit; see [`split_text`].
    pub fn split<'t>(&self, text: &'t str) -> Vec<&'t str> {
        let max = usize::try_from(self.max_message_length).unwrap_or(usize::MAX);
        split_text(text, max, self.len_unit)
    }

    /// Whether `text` fits in one message on this platform.
    pub fn fits(&self, text: &str) -> bool {
        u64::try_from(self.text_len(text)).is_ok_and(|n| n <= self.max_message_length)
    }
}

/// How a platform counts message length (protocol.md §3.3). Never bytes, never graphemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum LenUnit {
    /// Unicode code points (Python's `len(str)`); also the meaning of any unknown unit.
    #[default]
    Chars,
    /// UTF-16 code units (Telegram, Discord count this way).
    Utf16,
}

impl LenUnit {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LenUnit::Chars => "chars",
            LenUnit::Utf16 => "utf16",
        }
    }
}

impl Serialize for LenUnit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for LenUnit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let unit = super::tagged::Text::deserialize(d)?;
        // The reference counts code points for any unit it does not know.
        Ok(match unit.as_str() {
            "utf16" => LenUnit::Utf16,
            _ => LenUnit::Chars,
        })
    }
}

/// Length of `text` in `unit`: code points for [`LenUnit::Chars`], UTF-16 code units for
/// [`LenUnit::Utf16`]. `"😀"` is 1 char and 2 UTF-16 units.
pub fn text_len(text: &str, unit: LenUnit) -> usize {
    match unit {
        LenUnit::Chars => text.chars().count(),
        LenUnit::Utf16 => text.chars().map(char::len_utf16).sum(),
    }
}

/// Cuts `text` into chunks of at most `max` units of `unit`, for a reply longer than the
/// platform allows.
///
/// Chunks are slices of `text` and concatenate back to it exactly. A cut never falls inside
/// a character, so it never separates a UTF-16 surrogate pair or the bytes of a UTF-8
/// character. Where possible a chunk ends after its last line break, else after its last
/// whitespace, provided that keeps at least half the chunk; otherwise it is cut at the
/// limit. A single character wider than `max` (an emoji against a limit of 1 UTF-16 unit)
/// gets a chunk of its own. Empty text gives no chunks.
pub fn split_text(text: &str, max: usize, unit: LenUnit) -> Vec<&str> {
    let width = |c: char| match unit {
        LenUnit::Chars => 1,
        LenUnit::Utf16 => c.len_utf16(),
    };
    let mut chunks = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        // Byte index where the chunk must end, and the preferred break points before it.
        let (mut end, mut used) = (0, 0);
        let (mut newline, mut space) = (None, None);
        for (i, c) in rest.char_indices() {
            let w = width(c);
            if used + w > max && end > 0 {
                break;
            }
            used += w;
            end = i + c.len_utf8();
            if c == '\n' {
                newline = Some(end);
            } else if c.is_whitespace() {
                space = Some(end);
            }
            if used >= max {
                break;
            }
        }
        if end < rest.len() {
            if let Some(at) = newline.or(space).filter(|&at| at * 2 >= end) {
                end = at;
            }
        }
        let (chunk, tail) = rest.split_at(end);
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}
