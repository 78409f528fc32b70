//! The content digest of a buffered delivery (protocol.md §6.4, docs/durability.md): what
//! tells a redelivery (same `bufferId`, same content) from an id reused for other content.
//!
//! The value is walked through serde, as its JSON form would be, but every string, number
//! and field name is fed straight into the fast hasher with no text formatting or
//! escaping: only an `inbound`'s own fields, tagged by kind and prefixed by their length,
//! so no two different contents feed the same sequence (`"ab","c"` is not `"a","bc"`, an
//! absent field is not an empty one, a field's name goes with its value). It need not resist a peer
//! that could as well resend the id, only never confuse contents by construction.

use std::fmt;
use std::hash::{BuildHasher, Hasher};

use serde::ser::{self, Serialize};

use crate::hash::FxHasher;
use crate::wire::{MessageEvent, SessionSource};

/// The digest of `value`: a fixed seed, so the same content gives the same digest in every
/// process. Allocates nothing.
pub(crate) fn digest(value: &(impl Serialize + ?Sized)) -> u64 {
    let mut hasher = Digest(crate::hash::SeededFx::default().build_hasher());
    // The digest serialiser never fails; a value whose own `Serialize` fails part-way
    // still digests to the same value every time.
    let _ = value.serialize(&mut hasher);
    hasher.0.finish()
}

/// [`digest`] of an inbound's event, its strings hashed as bytes (a `Str` serialised
/// through serde is checked as UTF-8 first, which cost as much as the hashing). Every
/// field goes in, in a fixed order, after one word of which optional ones are present
/// (and the flags), so no two events feed the same sequence; the nested and rarely set
/// ones go through serde, and only when present. The patterns name every field: one
/// added to the event fails to compile here until it is digested.
pub(crate) fn inbound_digest(event: &MessageEvent) -> u64 {
    let MessageEvent {
        text,
        message_type,
        message_id,
        reply_to_message_id,
        reply_to,
        media_urls,
        media,
        context,
        context_error,
        prompt_response,
        source,
    } = event;
    let SessionSource {
        platform,
        chat_id,
        chat_name,
        chat_type,
        user_id,
        user_name,
        user_display_name,
        user_handle,
        thread_id,
        chat_topic,
        user_id_alt,
        chat_id_alt,
        scope_id,
        parent_chat_id,
        message_id: source_message_id,
        profile,
        auto_thread_created,
        auto_thread_initial_name,
        prospective_thread_id,
        is_bot,
        one_to_one_verified,
        message_is_edit,
    } = source;
    let optional = [
        message_id,
        reply_to_message_id,
        chat_name,
        user_id,
        user_name,
        user_display_name,
        user_handle,
        thread_id,
        chat_topic,
        user_id_alt,
        chat_id_alt,
        scope_id,
        parent_chat_id,
        source_message_id,
        profile,
        auto_thread_initial_name,
        prospective_thread_id,
    ];
    // One word says which optional strings and rare fields are present and holds every
    // flag: it decides what follows, so an absent field is never confused with the next
    // present one, and the many absent ones cost no round each.
    let mut shape = 0u64;
    for (bit, text) in optional.iter().enumerate() {
        shape |= u64::from(text.is_some()) << bit;
    }
    let rare = [
        reply_to.is_some(),
        !media_urls.is_empty(),
        !media.is_empty(),
        !context.is_empty(),
        prompt_response.is_some(),
    ];
    for (bit, present) in rare.into_iter().enumerate() {
        shape |= u64::from(present) << (optional.len() + bit);
    }
    let flags = [context_error, is_bot, one_to_one_verified, message_is_edit];
    for (i, flag) in flags.into_iter().enumerate() {
        // Two bits each: 0 absent, 1 false, 2 true.
        shape |= u64::from(flag.map_or(0, |b| 1 + u8::from(b))) << (32 + 2 * i);
    }
    shape |= u64::from(*auto_thread_created) << 40;
    let mut hasher = Digest(crate::hash::SeededFx::default().build_hasher());
    hasher.0.write_u64(shape);
    for text in [text, platform, chat_id, chat_type] {
        hasher.bytes(tag::STR, text.as_bytes());
    }
    for text in optional.into_iter().flatten() {
        hasher.bytes(tag::SOME, text.as_bytes());
    }
    // The digest serialiser never fails.
    let _ = message_type.serialize(&mut hasher);
    if let Some(reply_to) = reply_to {
        let _ = reply_to.serialize(&mut hasher);
    }
    if !media_urls.is_empty() {
        let _ = media_urls.serialize(&mut hasher);
    }
    if !media.is_empty() {
        let _ = media.serialize(&mut hasher);
    }
    if !context.is_empty() {
        let _ = context.serialize(&mut hasher);
    }
    if let Some(prompt_response) = prompt_response {
        let _ = prompt_response.serialize(&mut hasher);
    }
    hasher.0.finish()
}

/// Kind tags, so that values of different kinds never feed the same words.
mod tag {
    pub(super) const BOOL: u8 = 1;
    pub(super) const INT: u8 = 2;
    pub(super) const UINT: u8 = 3;
    pub(super) const FLOAT: u8 = 4;
    pub(super) const CHAR: u8 = 5;
    pub(super) const STR: u8 = 6;
    pub(super) const BYTES: u8 = 7;
    pub(super) const NONE: u8 = 8;
    pub(super) const SOME: u8 = 9;
    pub(super) const UNIT: u8 = 10;
    pub(super) const VARIANT: u8 = 11;
    pub(super) const SEQ: u8 = 12;
    pub(super) const MAP: u8 = 13;
    pub(super) const STRUCT: u8 = 14;
    pub(super) const END: u8 = 15;
    pub(super) const INT128: u8 = 16;
}

struct Digest(FxHasher);

impl Digest {
    fn tag(&mut self, tag: u8) {
        self.0.write_u8(tag);
    }

    /// A length-prefixed run of bytes: the tag and the length share one word (no length
    /// reaches 2⁵⁶, and tags are never 0, so it is never a lone tag's word either).
    fn bytes(&mut self, tag: u8, bytes: &[u8]) {
        self.0.write_u64(u64::from(tag) << 56 | bytes.len() as u64);
        self.0.write(bytes);
    }
}

/// Never made: the digest serialiser cannot fail, but serde asks for an error type.
#[derive(Debug)]
pub(crate) struct Never;

impl fmt::Display for Never {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("digest")
    }
}

impl std::error::Error for Never {}

impl ser::Error for Never {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Never
    }
}

type Done = Result<(), Never>;

impl ser::Serializer for &mut Digest {
    type Ok = ();
    type Error = Never;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn serialize_bool(self, v: bool) -> Done {
        self.tag(tag::BOOL);
        self.0.write_u8(u8::from(v));
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Done {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Done {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Done {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Done {
        self.tag(tag::INT);
        self.0.write_u64(v as u64);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Done {
        self.bytes(tag::INT128, &v.to_le_bytes());
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Done {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Done {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Done {
        self.serialize_u64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Done {
        self.tag(tag::UINT);
        self.0.write_u64(v);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Done {
        self.bytes(tag::INT128, &v.to_le_bytes());
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Done {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Done {
        self.tag(tag::FLOAT);
        self.0.write_u64(v.to_bits());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Done {
        self.tag(tag::CHAR);
        self.0.write_u64(v.into());
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Done {
        self.bytes(tag::STR, v.as_bytes());
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Done {
        self.bytes(tag::BYTES, v);
        Ok(())
    }
    fn serialize_none(self) -> Done {
        self.tag(tag::NONE);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Done {
        self.tag(tag::SOME);
        value.serialize(self)
    }
    fn serialize_unit(self) -> Done {
        self.tag(tag::UNIT);
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Done {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
    ) -> Done {
        self.tag(tag::VARIANT);
        self.0.write_u64(index.into());
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Done {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        value: &T,
    ) -> Done {
        self.tag(tag::VARIANT);
        self.0.write_u64(index.into());
        value.serialize(self)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self, Never> {
        self.tag(tag::SEQ);
        Ok(self)
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self, Never> {
        self.tag(tag::SEQ);
        Ok(self)
    }
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self, Never> {
        self.tag(tag::SEQ);
        Ok(self)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self, Never> {
        self.tag(tag::VARIANT);
        self.0.write_u64(index.into());
        self.tag(tag::SEQ);
        Ok(self)
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self, Never> {
        self.tag(tag::MAP);
        Ok(self)
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self, Never> {
        self.tag(tag::STRUCT);
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self, Never> {
        self.tag(tag::VARIANT);
        self.0.write_u64(index.into());
        self.tag(tag::STRUCT);
        Ok(self)
    }
}

/// Elements of every compound: each value in turn, then an end tag, so that a compound
/// and what follows it cannot trade elements.
macro_rules! compound {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for &mut Digest {
            type Ok = ();
            type Error = Never;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
                value.serialize(&mut **self)
            }
            fn end(self) -> Done {
                self.tag(tag::END);
                Ok(())
            }
        }
    )*};
}

compound!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for &mut Digest {
    type Ok = ();
    type Error = Never;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Done {
        key.serialize(&mut **self)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        value.serialize(&mut **self)
    }
    fn end(self) -> Done {
        self.tag(tag::END);
        Ok(())
    }
}

/// A struct's fields go in by name (a skipped field is absent, not confused with the
/// next), each name length-prefixed like a string.
macro_rules! fields {
    ($($trait:ident),*) => {$(
        impl ser::$trait for &mut Digest {
            type Ok = ();
            type Error = Never;
            fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Done {
                self.bytes(tag::STR, key.as_bytes());
                value.serialize(&mut **self)
            }
            fn end(self) -> Done {
                self.tag(tag::END);
                Ok(())
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);

#[cfg(test)]
mod tests {
    use super::digest;
    use serde_json::json;

    #[test]
    fn equal_contents_digest_alike_and_different_ones_differ() {
        let a = json!({"text": "hi", "source": {"chat_id": "1", "user_id": "2"}});
        assert_eq!(digest(&a), digest(&a.clone()));
        let others = [
            json!({"text": "hi", "source": {"chat_id": "12", "user_id": ""}}),
            json!({"text": "hi", "source": {"chat_id": "1", "user_id": "2", "x": null}}),
            json!({"text": "hi", "source": {"chat_id": "1", "user_id": 2}}),
            json!({"text": "hi", "source": {"chat_id": "1"}, "user_id": "2"}),
            json!({"text": ["hi"], "source": {"chat_id": "1", "user_id": "2"}}),
        ];
        for other in &others {
            assert_ne!(digest(&a), digest(other), "{other}");
        }
        // Field boundaries: the same bytes split differently.
        assert_ne!(digest(&("ab", "c")), digest(&("a", "bc")));
        assert_ne!(
            digest(&(Some(""), None::<&str>)),
            digest(&(None::<&str>, Some("")))
        );
        assert_ne!(digest(&(vec!["a"], "b")), digest(&(vec!["a", "b"],)));
    }

    #[test]
    fn an_inbound_digest_changes_with_any_field() {
        use crate::wire::{MessageEvent, Str};
        let event = MessageEvent {
            text: "hi".into(),
            ..MessageEvent::default()
        };
        let same = event.clone();
        assert_eq!(super::inbound_digest(&event), super::inbound_digest(&same));
        let mut changes: Vec<MessageEvent> = Vec::new();
        let mut e = event.clone();
        e.text = "hj".into();
        changes.push(e);
        let mut e = event.clone();
        e.source.chat_id = "1".into();
        changes.push(e);
        let mut e = event.clone();
        e.source.user_id = Some(Str::from(""));
        changes.push(e);
        let mut e = event.clone();
        e.source.user_name = Some(Str::from(""));
        changes.push(e);
        let mut e = event.clone();
        e.source.is_bot = Some(false);
        changes.push(e);
        let mut e = event.clone();
        e.media_urls.push("u".into());
        changes.push(e);
        // The same value in the next optional field, or the next flag.
        let mut e = event.clone();
        e.message_id = Some(Str::from("x"));
        changes.push(e);
        let mut e = event.clone();
        e.reply_to_message_id = Some(Str::from("x"));
        changes.push(e);
        let mut e = event.clone();
        e.context_error = Some(false);
        changes.push(e);
        let mut e = event.clone();
        e.source.auto_thread_created = true;
        changes.push(e);
        let mut e = event.clone();
        e.source.prospective_thread_id = Some(Str::from(""));
        changes.push(e);
        for (i, changed) in changes.iter().enumerate() {
            assert_ne!(
                super::inbound_digest(&event),
                super::inbound_digest(changed),
                "{i}"
            );
            for (j, other) in changes.iter().enumerate().skip(i + 1) {
                let (a, b) = (super::inbound_digest(changed), super::inbound_digest(other));
                assert_ne!(a, b, "{i} {j}");
            }
        }
        // Text moved from one field to the next is another event.
        let mut a = event.clone();
        a.source.chat_id = "ab".into();
        let mut b = event;
        b.source.chat_id = "a".into();
        b.source.chat_type = format!("b{}", b.source.chat_type).as_str().into();
        assert_ne!(super::inbound_digest(&a), super::inbound_digest(&b));
    }
}
