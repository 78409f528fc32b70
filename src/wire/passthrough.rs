//! Provider webhooks forwarded by the connector (protocol.md §2.12, §6.5).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Str;

/// A provider webhook (e.g. a Discord interaction) that the connector verified and
/// acknowledged at its edge, forwarded with its original body.
///
/// The body is decoded with strict standard base64 (padding required, no stray
/// characters). A malformed body does not fail the frame: [`body`](Self::body) holds the
/// typed error together with the text that was received, and every other field is still
/// there, so the application can log it and the buffered delivery can still be acked.
///
/// Its strings are [`Str`]s, as an event's are: short ones inline, longer ones slices of
/// the received message, so a forward decodes with an allocation for its header list and
/// its body, not one per string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassthroughForward {
    /// Provider (`discord`, `twilio`, ...).
    #[serde(default)]
    pub platform: Str,
    /// Bot identity the webhook was addressed to.
    #[serde(default, rename = "botId")]
    pub bot_id: Str,
    /// Original HTTP method.
    #[serde(default)]
    pub method: Str,
    /// Original request path.
    #[serde(default)]
    pub path: Str,
    /// Request headers as `[name, value]` pairs, in arrival order.
    #[serde(default)]
    pub headers: Vec<(Str, Str)>,
    /// The decoded request body, or why `bodyB64` could not be decoded.
    #[serde(default = "empty_body", rename = "bodyB64", with = "body_b64")]
    pub body: Result<Bytes, BodyError>,
    /// Multiplex target profile, to be stamped on the resulting event's source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Str>,
}

fn empty_body() -> Result<Bytes, BodyError> {
    Ok(Bytes::new())
}

impl PassthroughForward {
    /// A forward of `body` for `platform`, everything else empty.
    pub fn new(platform: impl Into<Str>, body: impl Into<Bytes>) -> Self {
        Self {
            platform: platform.into(),
            bot_id: Str::new(),
            method: Str::new(),
            path: Str::new(),
            headers: Vec::new(),
            body: Ok(body.into()),
            profile: None,
        }
    }

    /// The value of the first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a forward's `bodyB64` is not valid standard base64.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bodyB64 is not valid standard base64: {reason}")]
pub struct BodyError {
    /// What is wrong with it.
    pub reason: Base64Error,
    /// The `bodyB64` text as received, so the frame re-encodes unchanged.
    pub encoded: String,
}

/// The ways a base64 text can be malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Base64Error {
    /// A byte outside the standard alphabet (this includes whitespace and the URL-safe
    /// `-` and `_`, which the reference silently drops).
    #[error("invalid byte 0x{byte:02x} at offset {offset}")]
    InvalidByte {
        /// Offset of the byte in the text.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// The text's length is impossible for base64 (padding missing or extra symbols).
    #[error("invalid length {len}")]
    InvalidLength {
        /// Number of symbols seen.
        len: usize,
    },
    /// The last symbol has bits set that encode nothing (a non-canonical encoding).
    #[error("non-canonical last symbol 0x{byte:02x} at offset {offset}")]
    InvalidLastSymbol {
        /// Offset of the symbol.
        offset: usize,
        /// The symbol.
        byte: u8,
    },
    /// Padding is missing or malformed.
    #[error("missing or malformed padding")]
    InvalidPadding,
}

/// Decodes strict, padded, standard-alphabet base64.
pub fn decode_base64(text: &str) -> Result<Bytes, Base64Error> {
    decode_base64_bytes(text.as_bytes())
}

/// [`decode_base64`] of the bytes of a text, for the codec's reader, which has them as
/// bytes (base64 is ASCII: anything else is an invalid byte).
pub(crate) fn decode_base64_bytes(text: &[u8]) -> Result<Bytes, Base64Error> {
    // The fast path takes every valid text, into a vector of exactly the decoded length,
    // which `Bytes` then takes over as it is (a vector with spare capacity, what `decode`
    // returns, would cost `Bytes` a second allocation for its reference count).
    if let Some(body) = super::base64_decode::decode(text) {
        return Ok(Bytes::from(body));
    }
    // Only malformed text gets here: the `base64` crate says what is wrong with it.
    STANDARD.decode(text).map(Bytes::from).map_err(|e| match e {
        base64::DecodeError::InvalidByte(offset, byte) => Base64Error::InvalidByte { offset, byte },
        base64::DecodeError::InvalidLength(len) => Base64Error::InvalidLength { len },
        base64::DecodeError::InvalidLastSymbol(offset, byte) => {
            Base64Error::InvalidLastSymbol { offset, byte }
        }
        base64::DecodeError::InvalidPadding => Base64Error::InvalidPadding,
    })
}

mod body_b64 {
    use super::*;

    pub(super) fn serialize<S: Serializer>(
        body: &Result<Bytes, BodyError>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match body {
            // Encoded straight into the output, without an intermediate string.
            Ok(bytes) => s.collect_str(&base64::display::Base64Display::new(bytes, &STANDARD)),
            Err(e) => s.serialize_str(&e.encoded),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Result<Bytes, BodyError>, D::Error> {
        let text = crate::wire::tagged::Text::deserialize(d)?;
        Ok(decode_base64(text.as_str()).map_err(|reason| BodyError {
            reason,
            encoded: text.as_str().to_owned(),
        }))
    }
}

#[cfg(test)]
mod exact_length {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The exact-length decoding gives what `base64`'s own `decode` gives, error or body,
    /// for every kind of text: each padding, lengths off by one, stray characters.
    #[test]
    fn decoding_into_an_exact_vector_agrees_with_decode() {
        let mut texts: Vec<String> = [
            "", "=", "==", "===", "a", "ab", "abc", "abcd", "ab==", "abc=", "a===", "ab=c", "aGk=",
            "aGk", "aGk==", "aGk=\n", " aGk=", "aG k=", "aGl=", "////", "-_-_",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for len in 0..40 {
            let body: Vec<u8> = (0..len).map(|i| (i * 37 % 256) as u8).collect();
            let text = STANDARD.encode(&body);
            texts.push(text.trim_end_matches('=').to_owned());
            texts.push(format!("{text}="));
            texts.push(text);
        }
        for text in &texts {
            let expected = STANDARD.decode(text);
            match decode_base64(text) {
                Ok(body) => assert_eq!(Ok(body.to_vec()), expected, "{text:?}"),
                Err(_) => assert!(expected.is_err(), "{text:?}"),
            }
        }
    }
}
