//! [`Metadata`]: an action's free-form `metadata` object, parsed only when it is read.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::Str;

/// Free-form `metadata` of an action: tenant discriminators (`scope_id`, `user_id`,
/// `profile`), placement anchors and formatting hints (protocol.md §5.2). A JSON object.
///
/// Read it with [`get`](Self::get) or [`map`](Self::map), change it with
/// [`insert`](Self::insert) or [`map_mut`](Self::map_mut); it converts from and into a
/// serde_json `Map<String, Value>`, and compares, prints and serialises as that map does.
///
/// A received one is kept as its JSON text (a slice of the message, like the action's
/// [`Str`] fields) and parsed only when it is read: a connector hands most actions on
/// without reading their metadata, and building the map as it decoded cost five of the
/// nine allocations a `send` request cost (a node, each key and each value) and about 15%
/// of its time. A read of received metadata (`get`, `map`) parses that text each time;
/// `map_mut` parses it once and keeps the map.
///
/// ```
/// use relay_machine::wire::{Metadata, SendAction};
/// use serde_json::json;
///
/// // Built in code: from pairs, or from a serde_json map with `.into()`.
/// let mut metadata: Metadata = [("scope_id", "T1")].into_iter().collect();
/// metadata.insert("thread_id".into(), json!("t-1"));
/// let send = SendAction { chat_id: "c".into(), content: "hi".into(), metadata, ..Default::default() };
///
/// // Read a key, as the application that receives the action does.
/// let received: SendAction = serde_json::from_value(json!({
///     "chat_id": "c", "content": "hi", "metadata": {"scope_id": "T1", "thread_id": "t-1"}
/// }))?;
/// assert_eq!(received.metadata.get_str("scope_id").as_deref(), Some("T1"));
/// assert_eq!(received.metadata, send.metadata);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone)]
pub struct Metadata(Repr);

#[derive(Clone)]
enum Repr {
    /// A received object's text, not parsed yet. The codec keeps only text that serde_json
    /// reads as a map (see [`Metadata::received`]).
    Raw(Str),
    /// The metadata as a map: built in code, or parsed to be changed.
    Map(Map<String, Value>),
}

impl Default for Metadata {
    fn default() -> Self {
        Self(Repr::Map(Map::new()))
    }
}

impl Metadata {
    /// Empty metadata.
    pub fn new() -> Self {
        Self::default()
    }

    /// Metadata received as the JSON object `raw`, parsed on first read. The caller (the
    /// codec's fast path) has checked that serde_json reads `raw` as a map: an object
    /// whose keys and values are strings, their escapes well-formed.
    pub(crate) fn received(raw: Str) -> Self {
        Self(Repr::Raw(raw))
    }

    /// The value of `key`, if there is one.
    pub fn get(&self, key: &str) -> Option<Value> {
        match self.map() {
            Cow::Borrowed(map) => map.get(key).cloned(),
            Cow::Owned(mut map) => map.remove(key),
        }
    }

    /// The string value of `key`, if there is one and it is a string: the usual reading
    /// of a tenant discriminator (`metadata.get_str("scope_id")`).
    pub fn get_str(&self, key: &str) -> Option<String> {
        if let Value::String(text) = self.get(key)? {
            Some(text)
        } else {
            None
        }
    }

    /// Sets `key` to `value`, returning the value it replaces (as `Map::insert`).
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        self.map_mut().insert(key, value)
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.map().is_empty()
    }

    /// The whole map: borrowed, or parsed from the received text.
    pub fn map(&self) -> Cow<'_, Map<String, Value>> {
        match &self.0 {
            Repr::Raw(raw) => Cow::Owned(parse(raw)),
            Repr::Map(map) => Cow::Borrowed(map),
        }
    }

    /// The map, to change it; received text is parsed here once, and released.
    pub fn map_mut(&mut self) -> &mut Map<String, Value> {
        match self.0 {
            Repr::Map(ref mut map) => map,
            Repr::Raw(ref raw) => {
                // Parsed, then taken as a map (this second call matches `Map`).
                self.0 = Repr::Map(parse(raw));
                self.map_mut()
            }
        }
    }

    /// The map, owned.
    pub fn into_map(self) -> Map<String, Value> {
        match self.0 {
            Repr::Raw(raw) => parse(&raw),
            Repr::Map(map) => map,
        }
    }
}

/// The map of received text. The codec admits only text serde_json reads as a map, so the
/// fallback is never taken; were it, the metadata would read as empty rather than panic.
fn parse(raw: &Str) -> Map<String, Value> {
    let map = serde_json::from_slice(raw.as_bytes());
    debug_assert!(map.is_ok(), "metadata text the codec admitted: {raw:?}");
    map.unwrap_or_default()
}

impl From<Map<String, Value>> for Metadata {
    fn from(map: Map<String, Value>) -> Self {
        Self(Repr::Map(map))
    }
}

impl From<Metadata> for Map<String, Value> {
    fn from(metadata: Metadata) -> Self {
        metadata.into_map()
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> Self {
        Self::from(
            entries
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect::<Map<_, _>>(),
        )
    }
}

impl PartialEq for Metadata {
    fn eq(&self, other: &Self) -> bool {
        self.map() == other.map()
    }
}

impl Eq for Metadata {}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.map().fmt(f)
    }
}

impl Serialize for Metadata {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.map().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Map::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    fn received(text: &str) -> Metadata {
        Metadata::received(Str::from(text))
    }

    /// Received text reads, compares, prints and serialises as the map it stands for,
    /// and becomes that map once changed.
    #[test]
    fn received_text_reads_as_its_map() {
        let text = r#"{"scope_id": "T1", "user_id": "caf\u00e9", "scope_id": "T2"}"#;
        let mut metadata = received(text);
        let map: Map<String, Value> = serde_json::from_str(text).unwrap();
        assert_eq!(metadata, Metadata::from(map.clone()));
        assert_eq!(metadata.get("scope_id"), Some(json!("T2")));
        assert_eq!(metadata.get_str("user_id").as_deref(), Some("café"));
        assert_eq!(metadata.get("profile"), None);
        assert!(!metadata.is_empty());
        assert_eq!(format!("{metadata:?}"), format!("{map:?}"));
        assert_eq!(serde_json::to_value(&metadata).unwrap(), Value::Object(map));
        assert_eq!(metadata.insert("profile".into(), "p".into()), None);
        assert!(matches!(metadata.0, Repr::Map(_)));
        assert_eq!(
            metadata.into_map(),
            json!({"scope_id": "T2", "user_id": "café", "profile": "p"})
                .as_object()
                .unwrap()
                .clone()
        );
        assert!(received("{ }").is_empty());
        assert_eq!(received("{}"), Metadata::new());
    }

    #[test]
    fn builds_from_entries() {
        let metadata: Metadata = [("scope_id", "T1")].into_iter().collect();
        assert_eq!(metadata.get_str("scope_id").as_deref(), Some("T1"));
        let back: Metadata = serde_json::from_value(json!({"scope_id": "T1"})).unwrap();
        assert_eq!(back, metadata);
    }
}
