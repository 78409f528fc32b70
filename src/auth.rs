//! Upgrade bearer tokens (protocol.md §8).
//!
//! The gateway sends `Authorization: Bearer <token>` on every WebSocket upgrade, with a token
//! minted fresh for that dial by [`mint_token`]. The connector looks up the gateway's secrets
//! with [`peek_gateway_id`], checks the token with [`verify_token`], and on failure completes the
//! upgrade and closes with code 4401 and the reason given by [`TokenError::close_reason`].
//!
//! A token is `base64url_nopad(signed ":" hex(HMAC-SHA256(secret, signed)))` with
//! `signed = gateway_id ":" exp`, where `exp` is a unix time in seconds and `0` means "never
//! expires".
//!
//! Wall-clock time is always an argument: nothing here reads the system clock.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::wire::close;

/// Name of the HTTP header that carries the bearer, as sent by the gateway on the upgrade.
pub const HEADER_NAME: &str = "Authorization";

/// The token lifetime the reference gateway uses, in seconds.
pub const DEFAULT_TTL_SECS: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

/// URL-safe alphabet. Encoding omits padding, as the reference does (it matches Node's
/// `base64url`); decoding accepts the token with or without its `=` padding, which is what
/// "restore padding, then decode" in the reference amounts to.
const TOKEN_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Length in bytes of an HMAC-SHA256 tag.
const SIG_LEN: usize = 32;

/// Why a bearer token was rejected.
///
/// Every variant except [`TokenError::Expired`] means the credential is missing, forged or
/// revoked; use [`TokenError::close_reason`] for the 4401 close reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is not base64url, or does not decode to UTF-8 text.
    #[error("token is not base64url-encoded UTF-8")]
    BadEncoding,
    /// The decoded token is not `gateway_id:exp:sig` with a non-empty gateway id.
    #[error("token is not of the form gateway_id:exp:signature")]
    Malformed,
    /// The `exp` field is not an unsigned decimal integer.
    #[error("token expiry is not an unsigned decimal integer")]
    BadExpiry,
    /// The rotation list holds no usable (non-blank) secret for this gateway.
    #[error("no usable secret is configured for this gateway")]
    NoSecret,
    /// The signature is not 64 hex digits, or matches none of the secrets.
    #[error("token signature does not match any secret")]
    BadSignature,
    /// The signature is valid but the token's expiry time has passed.
    #[error("token expired at unix time {expires_at}")]
    Expired {
        /// The token's `exp`, in unix seconds.
        expires_at: u64,
    },
}

impl TokenError {
    /// The close reason a connector sends with close code 4401 ([`close::UNAUTHORIZED`]) for
    /// this error.
    ///
    /// `"expired"` ([`close::REASON_EXPIRED`]) tells the gateway that its secret is still good
    /// and only the token is too old, so it re-dials with a fresh token; `"unauthorized"`
    /// means the credential itself was rejected.
    #[must_use]
    pub const fn close_reason(&self) -> &'static str {
        match self {
            Self::Expired { .. } => close::REASON_EXPIRED,
            Self::BadEncoding
            | Self::Malformed
            | Self::BadExpiry
            | Self::NoSecret
            | Self::BadSignature => "unauthorized",
        }
    }
}

/// The authenticated content of a token that passed [`verify_token`].
///
/// Displays as `gateway gw-1, expires at unix 1700000000` (or `..., never expires`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The gateway id the token was minted for.
    pub gateway_id: String,
    /// When the token stops being valid, in unix seconds; `None` if it never expires.
    pub expires_at: Option<u64>,
}

impl std::fmt::Display for VerifiedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.expires_at {
            Some(exp) => write!(f, "gateway {}, expires at unix {exp}", self.gateway_id),
            None => write!(f, "gateway {}, never expires", self.gateway_id),
        }
    }
}

/// Mints the upgrade bearer token for one dial (protocol.md §8.1).
///
/// The token expires `ttl_secs` after `now_unix_secs`; a `ttl_secs` of zero or less mints a
/// token that never expires. Mint a fresh token for every dial.
#[must_use]
pub fn mint_token(gateway_id: &str, secret: &str, ttl_secs: i64, now_unix_secs: u64) -> String {
    let exp = if ttl_secs > 0 {
        now_unix_secs.saturating_add(ttl_secs.unsigned_abs())
    } else {
        0
    };
    let signed = format!("{gateway_id}:{exp}");
    let mut mac = keyed_mac(secret);
    mac.update(signed.as_bytes());
    let sig = to_hex(&mac.finalize().into_bytes());
    TOKEN_BASE64.encode(format!("{signed}:{sig}"))
}

/// Formats the value of the `Authorization` header ([`HEADER_NAME`]) for `token`:
/// `Bearer <token>`.
#[must_use]
pub fn authorization_header(token: &str) -> String {
    format!("Bearer {token}")
}

/// The token of an `Authorization` header value ([`HEADER_NAME`]) of the form
/// `Bearer <token>`, the inverse of [`authorization_header`]; `None` when the value is not a
/// bearer.
///
/// The scheme is matched ASCII case-insensitively (`bearer` and `BEARER` too, as HTTP auth
/// schemes are) and must be followed by exactly one space. The token is everything after
/// that space, returned as sent: it may be empty or malformed, and [`verify_token`] judges
/// it.
///
/// ```
/// use relay_machine::auth::bearer_token;
///
/// assert_eq!(bearer_token("Bearer abc"), Some("abc"));
/// assert_eq!(bearer_token("bearer abc"), Some("abc"));
/// assert_eq!(bearer_token("Basic abc"), None);
/// ```
#[must_use]
pub fn bearer_token(header_value: &str) -> Option<&str> {
    let (scheme, token) = header_value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("Bearer").then_some(token)
}

/// Returns the gateway id a token claims, without checking its signature or expiry.
///
/// A connector calls this first to find that gateway's secrets, then calls [`verify_token`].
/// The id is unauthenticated until `verify_token` succeeds: use it only for that lookup.
///
/// # Errors
///
/// [`TokenError::BadEncoding`], [`TokenError::Malformed`] or [`TokenError::BadExpiry`] if the
/// token is not well formed; a token this accepts never fails `verify_token` for those reasons.
pub fn peek_gateway_id(token: &str) -> Result<String, TokenError> {
    let raw = decode(token)?;
    Ok(split(&raw)?.gateway_id.to_owned())
}

/// Verifies an upgrade bearer token on the connector side (protocol.md §8.2).
///
/// `secrets` is the gateway's rotation list, primary first; blank (empty or whitespace-only)
/// entries are skipped, the others are used byte for byte as HMAC keys. The signature is
/// compared in constant time against each secret in turn.
///
/// # Errors
///
/// A [`TokenError`] saying why the token is rejected. Only a token with a valid signature can
/// produce [`TokenError::Expired`].
pub fn verify_token(
    token: &str,
    secrets: &[&str],
    now_unix_secs: u64,
) -> Result<VerifiedToken, TokenError> {
    let raw = decode(token)?;
    let parts = split(&raw)?;

    let mut usable = secrets.iter().filter(|s| !s.trim().is_empty()).peekable();
    if usable.peek().is_none() {
        return Err(TokenError::NoSecret);
    }
    // Hex decoding is not constant time, but it only looks at the attacker's own input; the
    // comparison against the expected tag, which does depend on the secret, is `verify_slice`.
    let sig = from_hex(parts.sig).ok_or(TokenError::BadSignature)?;
    let signed_by_known_secret = usable.any(|secret| {
        let mut mac = keyed_mac(secret);
        mac.update(parts.signed.as_bytes());
        mac.verify_slice(&sig).is_ok()
    });
    if !signed_by_known_secret {
        return Err(TokenError::BadSignature);
    }

    // The reference checks expiry before the signature. We check it after: "expired" tells the
    // gateway that its secret is still valid and it should simply re-dial, so it must only ever
    // be said about a token that was really signed with that secret. Otherwise a forged or
    // revoked credential with an old `exp` would be reported as merely stale.
    if parts.exp != 0 && now_unix_secs > parts.exp {
        return Err(TokenError::Expired {
            expires_at: parts.exp,
        });
    }
    Ok(VerifiedToken {
        gateway_id: parts.gateway_id.to_owned(),
        expires_at: (parts.exp != 0).then_some(parts.exp),
    })
}

/// The fields of a decoded token, borrowed from its text.
struct Parts<'a> {
    /// `gateway_id:exp` exactly as received: the bytes the signature covers.
    signed: &'a str,
    gateway_id: &'a str,
    exp: u64,
    sig: &'a str,
}

fn decode(token: &str) -> Result<String, TokenError> {
    let bytes = TOKEN_BASE64
        .decode(token)
        .map_err(|_| TokenError::BadEncoding)?;
    String::from_utf8(bytes).map_err(|_| TokenError::BadEncoding)
}

/// Splits from the right, because the gateway id may itself contain `:`.
fn split(raw: &str) -> Result<Parts<'_>, TokenError> {
    let (signed, sig) = raw.rsplit_once(':').ok_or(TokenError::Malformed)?;
    let (gateway_id, exp) = signed.rsplit_once(':').ok_or(TokenError::Malformed)?;
    // The reference would accept an empty id, but a gateway only sends a token when it has a
    // non-empty id (protocol.md §1.3), so an empty one can only be a broken or forged token.
    if gateway_id.is_empty() {
        return Err(TokenError::Malformed);
    }
    // Digits only: `u64::from_str` alone would also take a leading `+`.
    if exp.is_empty() || !exp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TokenError::BadExpiry);
    }
    let exp = exp.parse().map_err(|_| TokenError::BadExpiry)?;
    Ok(Parts {
        signed,
        gateway_id,
        exp,
        sig,
    })
}

fn keyed_mac(secret: &str) -> HmacSha256 {
    // HMAC is defined for keys of any length (long keys are hashed first), so
    // `new_from_slice` cannot fail; the arm only exists to keep this function panic-free.
    // Should it ever be taken, the all-zero key verifies no real token.
    match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => <HmacSha256 as hmac::digest::KeyInit>::new(&Default::default()),
    }
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(2 * bytes.len()), |mut out, b| {
            // Writing to a `String` cannot fail.
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// Decodes exactly `2 * SIG_LEN` hex digits. Upper-case digits are accepted because the
/// reference compares decoded bytes, not text.
fn from_hex(text: &str) -> Option<[u8; SIG_LEN]> {
    if text.len() != 2 * SIG_LEN {
        return None;
    }
    let mut out = [0u8; SIG_LEN];
    for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        *byte = (hex_value(*hi)? << 4) | hex_value(*lo)?;
    }
    Some(out)
}

const fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

    use super::*;

    const NOW: u64 = 1_700_000_000;

    /// `(gateway_id, secret, now, ttl, sig, token)` from protocol.md §8.3.
    const VECTORS: [(&str, &str, u64, i64, &str, &str); 3] = [
        (
            "gw-1",
            "secret",
            NOW,
            300,
            "383d024c9f9a8c684b6baa451373c34c148084fee95320c6d4c8e3340e715718",
            "Z3ctMToxNzAwMDAwMzAwOjM4M2QwMjRjOWY5YThjNjg0YjZiYWE0NTEzNzNjMzRjMTQ4MDg0ZmVlOTUzMjBjNmQ0YzhlMzM0MGU3MTU3MTg",
        ),
        (
            "gw-1",
            "secret",
            NOW,
            0,
            "513c6cc39b9abf2fa7587e190f5851db200c73400d140e56b10411deeb021b85",
            "Z3ctMTowOjUxM2M2Y2MzOWI5YWJmMmZhNzU4N2UxOTBmNTg1MWRiMjAwYzczNDAwZDE0MGU1NmIxMDQxMWRlZWIwMjFiODU",
        ),
        (
            "gw:with:colons",
            "s3cr3t",
            NOW,
            300,
            "b56ad2fd7d1018e286ff420d4b3717b047e02e0edff4ae3e09b5b4aefc0cc612",
            "Z3c6d2l0aDpjb2xvbnM6MTcwMDAwMDMwMDpiNTZhZDJmZDdkMTAxOGUyODZmZjQyMGQ0YjM3MTdiMDQ3ZTAyZTBlZGZmNGFlM2UwOWI1YjRhZWZjMGNjNjEy",
        ),
    ];

    fn encode(raw: &str) -> String {
        TOKEN_BASE64.encode(raw)
    }

    fn decoded(token: &str) -> String {
        decode(token).unwrap()
    }

    #[test]
    fn vectors_mint_exactly() {
        for (id, secret, now, ttl, sig, token) in VECTORS {
            let minted = mint_token(id, secret, ttl, now);
            assert_eq!(minted, token, "{id}/{ttl}");
            assert!(decoded(&minted).ends_with(&format!(":{sig}")));
        }
    }

    #[test]
    fn vectors_verify() {
        for (id, secret, now, ttl, _, token) in VECTORS {
            let expires_at = (ttl > 0).then_some(now + 300);
            assert_eq!(
                verify_token(token, &[secret], now),
                Ok(VerifiedToken {
                    gateway_id: id.to_owned(),
                    expires_at
                })
            );
            assert_eq!(peek_gateway_id(token).unwrap(), id);
        }
    }

    #[test]
    fn vector_signed_strings() {
        assert_eq!(
            decoded(VECTORS[0].5).rsplit_once(':').unwrap().0,
            "gw-1:1700000300"
        );
        assert_eq!(decoded(VECTORS[1].5).rsplit_once(':').unwrap().0, "gw-1:0");
        assert_eq!(
            decoded(VECTORS[2].5).rsplit_once(':').unwrap().0,
            "gw:with:colons:1700000300"
        );
    }

    #[test]
    fn header() {
        assert_eq!(HEADER_NAME, "Authorization");
        assert_eq!(authorization_header("abc"), "Bearer abc");
    }

    #[test]
    fn bearer_token_parsing() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER abc"), Some("abc"));
        assert_eq!(bearer_token("bEaReR a.b-c_d=="), Some("a.b-c_d=="));
        // One space; anything after it is the token, as sent.
        assert_eq!(bearer_token("Bearer "), Some(""));
        assert_eq!(bearer_token("Bearer  abc"), Some(" abc"));
        assert_eq!(bearer_token("Bearer abc def"), Some("abc def"));
        // Not a bearer.
        for value in [
            "",
            "Bearer",
            "Bearerabc",
            "Bearer\tabc",
            " Bearer abc",
            "Basic abc",
            "Bearers abc",
            "abc",
        ] {
            assert_eq!(bearer_token(value), None, "{value:?}");
        }
        // The inverse of `authorization_header`.
        let token = mint_token("gw:1", "k", 300, NOW);
        assert_eq!(bearer_token(&authorization_header(&token)), Some(&*token));
    }

    #[test]
    fn round_trip() {
        let token = mint_token("gateway-42", "k", 60, NOW);
        let verified = verify_token(&token, &["k"], NOW + 60).unwrap();
        assert_eq!(verified.gateway_id, "gateway-42");
        assert_eq!(verified.expires_at, Some(NOW + 60));
    }

    #[test]
    fn colons_and_unicode_in_gateway_id() {
        for id in ["a:b", ":leading", "trailing:", "::", "ünï:cödé"] {
            let token = mint_token(id, "k", 60, NOW);
            assert_eq!(peek_gateway_id(&token).unwrap(), id);
            assert_eq!(verify_token(&token, &["k"], NOW).unwrap().gateway_id, id);
        }
    }

    #[test]
    fn rotation_list() {
        let token = mint_token("gw", "old", 60, NOW);
        assert!(verify_token(&token, &["new", "old"], NOW).is_ok());
        assert!(verify_token(&token, &["", "  ", "old"], NOW).is_ok());
        assert_eq!(
            verify_token(&token, &["new"], NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn no_usable_secret() {
        let token = mint_token("gw", "k", 60, NOW);
        for secrets in [&[][..], &[""], &["", " \t\n"]] {
            assert_eq!(
                verify_token(&token, secrets, NOW),
                Err(TokenError::NoSecret)
            );
        }
    }

    #[test]
    fn secret_is_used_verbatim() {
        // Blank secrets are skipped, but a usable one is not trimmed before use as a key.
        let token = mint_token("gw", " k ", 60, NOW);
        assert!(verify_token(&token, &[" k "], NOW).is_ok());
        assert_eq!(
            verify_token(&token, &["k"], NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn expiry() {
        let token = mint_token("gw", "k", 300, NOW);
        assert!(verify_token(&token, &["k"], NOW + 300).is_ok());
        let err = verify_token(&token, &["k"], NOW + 301).unwrap_err();
        assert_eq!(
            err,
            TokenError::Expired {
                expires_at: NOW + 300
            }
        );
        assert_eq!(err.close_reason(), "expired");
    }

    #[test]
    fn zero_exp_never_expires() {
        for ttl in [0, -1, i64::MIN] {
            let token = mint_token("gw", "k", ttl, NOW);
            let verified = verify_token(&token, &["k"], u64::MAX).unwrap();
            assert_eq!(verified.expires_at, None);
        }
    }

    #[test]
    fn huge_ttl_saturates() {
        let token = mint_token("gw", "k", i64::MAX, u64::MAX - 1);
        assert_eq!(
            verify_token(&token, &["k"], u64::MAX).unwrap().expires_at,
            Some(u64::MAX)
        );
    }

    #[test]
    fn forged_expired_token_is_unauthorized_not_expired() {
        let token = mint_token("gw", "attacker", 10, NOW);
        let err = verify_token(&token, &["k"], NOW + 1000).unwrap_err();
        assert_eq!(err, TokenError::BadSignature);
        assert_eq!(err.close_reason(), "unauthorized");
    }

    #[test]
    fn tampering_is_rejected() {
        let raw = decoded(&mint_token("gw", "k", 300, NOW));
        let (signed, sig) = raw.rsplit_once(':').unwrap();
        let mut flipped = sig.to_owned().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        let later = NOW + 600;
        let cases = [
            format!("{signed}:{flipped}"),
            format!("gx:{}:{sig}", NOW + 300),
            format!("gw:{later}:{sig}"),
            format!("gw:0:{sig}"),
            format!("{signed}:{}", &sig[..62]),
            format!("{signed}:{sig}00"),
            format!("{signed}:"),
            format!("{signed}:{}", "zz".repeat(32)),
        ];
        for raw in cases {
            assert_eq!(
                verify_token(&encode(&raw), &["k"], NOW),
                Err(TokenError::BadSignature),
                "{raw}"
            );
        }
    }

    #[test]
    fn uppercase_hex_signature_is_accepted() {
        let raw = decoded(&mint_token("gw", "k", 300, NOW));
        let (signed, sig) = raw.rsplit_once(':').unwrap();
        let upper = encode(&format!("{signed}:{}", sig.to_ascii_uppercase()));
        assert!(verify_token(&upper, &["k"], NOW).is_ok());
    }

    #[test]
    fn padded_and_unpadded() {
        // "gw-1:0:<64 hex>" is 71 bytes, so its padded form ends in "=".
        let token = VECTORS[1].5;
        let padded = format!("{token}=");
        assert_eq!(padded.len() % 4, 0);
        assert!(verify_token(token, &["secret"], NOW).is_ok());
        assert!(verify_token(&padded, &["secret"], NOW).is_ok());
        assert_eq!(peek_gateway_id(&padded).unwrap(), "gw-1");
        assert_eq!(
            verify_token(&format!("{token}=="), &["secret"], NOW),
            Err(TokenError::BadEncoding)
        );
    }

    #[test]
    fn bad_encoding() {
        // The standard alphabet's `+` and `/` are not accepted in place of `-` and `_`.
        let standard_alphabet = base64::engine::general_purpose::STANDARD_NO_PAD.encode("gw>?:0:a");
        assert!(standard_alphabet.contains(['+', '/']));
        let non_utf8 = TOKEN_BASE64.encode([0xff, 0xfe, b':', b'0', b':', b'a']);
        for token in [
            "!!!!",
            "a",
            " Z3ctMTowOjUx",
            standard_alphabet.as_str(),
            non_utf8.as_str(),
        ] {
            assert_eq!(
                peek_gateway_id(token),
                Err(TokenError::BadEncoding),
                "{token}"
            );
            assert_eq!(
                verify_token(token, &["k"], NOW),
                Err(TokenError::BadEncoding)
            );
        }
    }

    #[test]
    fn malformed() {
        // An empty token is valid (empty) base64, so it fails on its structure.
        for raw in ["", "nocolons", "one:colon", ":0:abcd", "gw:0"] {
            let token = encode(raw);
            assert_eq!(peek_gateway_id(&token), Err(TokenError::Malformed), "{raw}");
            assert_eq!(
                verify_token(&token, &["k"], NOW),
                Err(TokenError::Malformed)
            );
        }
    }

    #[test]
    fn bad_expiry() {
        for raw in [
            "gw::ab",
            "gw:+5:ab",
            "gw:-5:ab",
            "gw: 5:ab",
            "gw:5.0:ab",
            "gw:18446744073709551616:ab",
        ] {
            let token = encode(raw);
            assert_eq!(peek_gateway_id(&token), Err(TokenError::BadExpiry), "{raw}");
            assert_eq!(
                verify_token(&token, &["k"], NOW),
                Err(TokenError::BadExpiry)
            );
        }
    }

    #[test]
    fn close_reasons() {
        for err in [
            TokenError::BadEncoding,
            TokenError::Malformed,
            TokenError::BadExpiry,
            TokenError::NoSecret,
            TokenError::BadSignature,
        ] {
            assert_eq!(err.close_reason(), "unauthorized");
        }
        assert_eq!(
            TokenError::Expired { expires_at: 1 }.close_reason(),
            "expired"
        );
    }

    /// Pseudo-random printable tokens, raw byte strings wrapped in base64url, and mutations of
    /// a valid token: nothing may panic, and only the untouched token may verify.
    #[test]
    fn fuzz_no_panic() {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let valid = mint_token("gw:1", "k", 300, NOW);
        for i in 0..5000 {
            let len = (next() % 200) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let printable: String = bytes.iter().map(|b| char::from(32 + b % 95)).collect();
            let wrapped = TOKEN_BASE64.encode(&bytes);
            let mut mutated = valid.clone().into_bytes();
            let at = (next() as usize) % mutated.len();
            mutated[at] = b"ABCxyz019-_=:"[(next() % 13) as usize];
            let mutated = String::from_utf8(mutated).unwrap();
            for token in [&printable, &wrapped, &mutated] {
                let _ = peek_gateway_id(token);
                if let Ok(v) = verify_token(token, &["k", ""], NOW + (i % 400)) {
                    assert_eq!(v.gateway_id, "gw:1");
                }
            }
        }
    }
}
