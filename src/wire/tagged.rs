//! One deserializer for the two internally tagged objects of the protocol: frames
//! (tagged by `type`) and outbound actions (tagged by `op`).
//!
//! serde's own internally tagged enums buffer every object into an intermediate tree
//! before looking at the tag. Every known peer writes the tag as the first key, so we
//! read the first key and, when it is the tag, hand the rest of the same map straight to
//! the variant's derived deserializer: one pass, no intermediate tree, strings borrowed
//! from the input. Only an object whose tag comes later is buffered into a
//! `serde_json::Value` first.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserializer;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A type whose JSON form is an object with a string tag selecting the variant.
pub(crate) trait Tagged: Sized {
    /// The tag's key (`type` or `op`).
    const TAG: &'static str;
    /// What `serde` says it expected when the input is not an object.
    const EXPECTING: &'static str;
    /// Builds the variant named `tag` from the rest of the object.
    fn from_tag<'de, D: Deserializer<'de>>(tag: &str, body: D) -> Result<Self, D::Error>;
}

/// Why a JSON object could not even be dispatched. Kept apart from serde errors so the
/// codec can report them as their own error kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// The object has no tag key.
    MissingTag,
    /// The tag's value is not a string.
    TagNotString,
}

impl Shape {
    pub(crate) fn describe(self, tag: &str) -> String {
        match self {
            Shape::MissingTag => format!("missing field `{tag}`"),
            Shape::TagNotString => format!("field `{tag}` is not a string"),
        }
    }
}

/// Deserializes `T` and turns a shape problem into an ordinary serde error.
pub(crate) fn deserialize<'de, T: Tagged, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    match d.deserialize_map(TaggedVisitor::<T>(PhantomData))? {
        Ok(v) => Ok(v),
        Err(shape) => Err(de::Error::custom(shape.describe(T::TAG))),
    }
}

/// Deserializes `T` from one JSON text, keeping shape problems distinct.
pub(crate) fn from_str<T: Tagged>(text: &str) -> Result<Result<T, Shape>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = de.deserialize_map(TaggedVisitor::<T>(PhantomData))?;
    de.end()?;
    Ok(value)
}

struct TaggedVisitor<T>(PhantomData<T>);

impl<'de, T: Tagged> Visitor<'de> for TaggedVisitor<T> {
    type Value = Result<T, Shape>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let Some(first) = map.next_key::<KeyName<'de>>()? else {
            return Ok(Err(Shape::MissingTag));
        };
        if first.as_str() == T::TAG {
            return match map.next_value::<Tag<'de>>()? {
                Tag::Name(name) => {
                    T::from_tag(name.as_str(), MapAccessDeserializer::new(map)).map(Ok)
                }
                Tag::NotString => {
                    drain(map)?;
                    Ok(Err(Shape::TagNotString))
                }
            };
        }
        // Slow path: buffer the object until the tag shows up.
        let mut fields = Map::new();
        let value = map.next_value::<Value>()?;
        fields.insert(first.into_owned(), value);
        while let Some((key, value)) = map.next_entry::<String, Value>()? {
            fields.insert(key, value);
        }
        let tag = match fields.get(T::TAG) {
            None => return Ok(Err(Shape::MissingTag)),
            Some(Value::String(tag)) => tag.clone(),
            Some(_) => return Ok(Err(Shape::TagNotString)),
        };
        T::from_tag(&tag, Value::Object(fields))
            .map(Ok)
            .map_err(de::Error::custom)
    }
}

fn drain<'de, M: MapAccess<'de>>(mut map: M) -> Result<(), M::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// A string that is borrowed from the input when it can be.
pub(crate) enum Text<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Text<'_> {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Text::Borrowed(s) => s,
            Text::Owned(s) => s,
        }
    }

    fn into_owned(self) -> String {
        match self {
            Text::Borrowed(s) => s.to_owned(),
            Text::Owned(s) => s,
        }
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Text::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Text::Owned(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Text::Owned(v))
    }
}

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor)
    }
}

/// An object key (always a string in JSON).
type KeyName<'de> = Text<'de>;

/// The tag's value: a name, or anything else (consumed and reported as a shape error).
enum Tag<'de> {
    Name(Text<'de>),
    NotString,
}

impl<'de> de::Deserialize<'de> for Tag<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TagVisitor)
    }
}

struct TagVisitor;

impl<'de> Visitor<'de> for TagVisitor {
    type Value = Tag<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Tag::Name(Text::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Tag::Name(Text::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Tag::Name(Text::Owned(v)))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Tag::NotString)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Tag::NotString)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Tag::NotString)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Tag::NotString)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Tag::NotString)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Tag::NotString)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        <IgnoredAny as de::Deserialize>::deserialize(d)?;
        Ok(Tag::NotString)
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Tag::NotString)
    }
    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
        drain(map)?;
        Ok(Tag::NotString)
    }
}

/// Serializes a frame as `{"type": tag, ...body}`, tag first as every peer writes it.
#[derive(serde::Serialize)]
pub(crate) struct TypeFirst<'a, B> {
    #[serde(rename = "type")]
    pub(crate) tag: &'a str,
    #[serde(flatten)]
    pub(crate) body: &'a B,
}

/// Serializes an action as `{"op": tag, ...body}`.
#[derive(serde::Serialize)]
pub(crate) struct OpFirst<'a, B> {
    pub(crate) op: &'a str,
    #[serde(flatten)]
    pub(crate) body: &'a B,
}

/// serde's derived structs accept a JSON array as well as an object (fields by position),
/// which would let `"event": []` pass as an empty event. Every struct-typed field goes
/// through these, so only an object is accepted.
pub(crate) fn object<'de, D: Deserializer<'de>, T: de::Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    T::deserialize(ObjectOnly(d))
}

/// [`object`] for an optional field: `null` is `None`.
pub(crate) fn optional_object<'de, D: Deserializer<'de>, T: de::Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Ok(<Option<Obj<T>> as de::Deserialize>::deserialize(d)?.map(|Obj(t)| t))
}

/// [`object`] for each element of an array.
pub(crate) fn objects<'de, D: Deserializer<'de>, T: de::Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    Ok(<Vec<Obj<T>> as de::Deserialize>::deserialize(d)?
        .into_iter()
        .map(|Obj(t)| t)
        .collect())
}

struct Obj<T>(T);

/// A field read with [`optional_object`], for hand-written visitors.
pub(crate) struct OptionalObject<T>(pub(crate) Option<T>);

impl<'de, T: de::Deserialize<'de>> de::Deserialize<'de> for OptionalObject<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        optional_object(d).map(OptionalObject)
    }
}

/// A field read with [`objects`], for hand-written visitors.
pub(crate) struct Objects<T>(pub(crate) Vec<T>);

impl<'de, T: de::Deserialize<'de>> de::Deserialize<'de> for Objects<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        objects(d).map(Objects)
    }
}

/// Which fields of an object a hand-written visitor has read, so that a repeated key is
/// the same error serde's derived visitors give.
#[derive(Default)]
pub(crate) struct Seen(u64);

impl Seen {
    /// Marks field number `bit` (below 64) as read; an error if it was already.
    pub(crate) fn first<E: de::Error>(&mut self, bit: u32, name: &'static str) -> Result<(), E> {
        let mask = 1u64.checked_shl(bit).unwrap_or(0);
        if self.0 & mask != 0 {
            return Err(E::duplicate_field(name));
        }
        self.0 |= mask;
        Ok(())
    }
}

impl<'de, T: de::Deserialize<'de>> de::Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(ObjectOnly(d)).map(Obj)
    }
}

/// Turns every request into `deserialize_map`, so a struct sees only objects.
struct ObjectOnly<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for ObjectOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}
