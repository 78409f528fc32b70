//! Relay URL normalisation (protocol.md §1.2).
//!
//! The configured relay URL is turned into the WebSocket dial target with [`dial_url`], and
//! into the base of the connector's HTTP routes with [`http_base`].
//!
//! This fixes three weaknesses of the reference (protocol.md §11.2 item 15): the scheme is
//! matched case-insensitively, a missing scheme is an error rather than a broken URL, and a
//! query string is kept with `/relay` added to the path before it.
//!
//! This is normalisation, not validation: apart from the scheme and a non-empty host, the URL
//! is passed through as written, and the WebSocket client's own parser has the final word.

/// Why a relay URL could not be normalised.
///
/// The messages deliberately do not quote the URL, which may hold credentials (user info or a
/// query parameter) that should not end up in logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The URL is empty or whitespace only.
    #[error("relay URL is empty")]
    Empty,
    /// The URL does not start with `scheme://`.
    #[error("relay URL has no scheme; expected ws://, wss://, http:// or https://")]
    MissingScheme,
    /// The scheme (as written) is not one of `ws`, `wss`, `http` or `https`.
    #[error("relay URL scheme `{0}` is not supported; expected ws, wss, http or https")]
    UnsupportedScheme(String),
    /// Nothing names the host between `scheme://` and the path.
    #[error("relay URL has no host")]
    EmptyHost,
}

/// The WebSocket URL the gateway dials for a configured relay URL (protocol.md §1.2).
///
/// Surrounding whitespace is trimmed; `http`/`https` become `ws`/`wss` and the scheme is
/// written in lower case; every trailing `/` of the path is removed and `/relay` appended
/// unless the path already ends with it. A query string is kept after the path. A fragment is
/// dropped, because WebSocket URIs cannot have one (RFC 6455 §3). The result is a fixed point:
/// normalising it again returns it unchanged.
///
/// ```text
/// https://connector.example        -> wss://connector.example/relay
/// HTTP://127.0.0.1:8080/           -> ws://127.0.0.1:8080/relay
/// https://c.example/base?x=1#frag  -> wss://c.example/base/relay?x=1
/// ```
///
/// # Errors
///
/// A [`UrlError`] if the URL is empty, has no scheme or an unsupported one, or has no host.
pub fn dial_url(configured: &str) -> Result<String, UrlError> {
    let url = Parsed::new(configured)?;
    let scheme = if url.secure { "wss" } else { "ws" };
    Ok(format!(
        "{scheme}://{}{}/relay{}",
        url.authority, url.base_path, url.query
    ))
}

/// The base URL of the connector's HTTP routes (`{base}/relay/media`, `{base}/relay/policy`,
/// ...) for a relay URL (protocol.md §1.2, Appendix B).
///
/// This is the reverse of [`dial_url`]: `ws`/`wss` become `http`/`https` and the trailing
/// `/relay` is removed. It accepts anything `dial_url` accepts and normalises it first, so the
/// configured value and its dial URL give the same base. The query string is dropped: the base
/// is a prefix that route paths are appended to, so it cannot carry one.
///
/// ```text
/// wss://connector.example/relay   -> https://connector.example
/// ws://127.0.0.1:8080/base/relay  -> http://127.0.0.1:8080/base
/// ```
///
/// # Errors
///
/// The same as [`dial_url`].
pub fn http_base(url: &str) -> Result<String, UrlError> {
    let url = Parsed::new(url)?;
    let scheme = if url.secure { "https" } else { "http" };
    Ok(format!("{scheme}://{}{}", url.authority, url.base_path))
}

/// A relay URL split into the pieces both mappings need, borrowed from the input.
struct Parsed<'a> {
    /// `wss`/`https` rather than `ws`/`http`.
    secure: bool,
    authority: &'a str,
    /// The path without its trailing `/`s and without a final `/relay`.
    base_path: &'a str,
    /// `?` and the query, or empty when there is no `?`.
    query: &'a str,
}

impl<'a> Parsed<'a> {
    fn new(input: &'a str) -> Result<Self, UrlError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(UrlError::Empty);
        }
        // Only `scheme://` counts as a scheme, so that `host:8080/x` reads as "no scheme"
        // rather than as the scheme `host`.
        let (scheme, rest) = input
            .split_once("://")
            .filter(|(scheme, _)| is_scheme(scheme))
            .ok_or(UrlError::MissingScheme)?;
        let secure = if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("wss") {
            true
        } else if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("ws") {
            false
        } else {
            return Err(UrlError::UnsupportedScheme(scheme.to_owned()));
        };

        // RFC 3986 order: the fragment starts at the first `#`, the query at the first `?`
        // before it, and the authority ends at the first `/` before that.
        // Trim again: whitespace before a dropped fragment would otherwise end the result, and
        // the next normalisation would trim it away, breaking idempotence.
        let rest = rest
            .split_once('#')
            .map_or(rest, |(before, _)| before)
            .trim_end();
        let (rest, query) = rest.find('?').map_or((rest, ""), |at| rest.split_at(at));
        let (authority, path) = rest.find('/').map_or((rest, ""), |at| rest.split_at(at));
        if host(authority).is_empty() {
            return Err(UrlError::EmptyHost);
        }

        let path = path.trim_end_matches('/');
        let base_path = path.strip_suffix("/relay").unwrap_or(path);
        Ok(Self {
            secure,
            authority,
            base_path,
            query,
        })
    }
}

/// RFC 3986 §3.1: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_scheme(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// The host of an authority (`[userinfo@]host[:port]`), brackets stripped from an IPv6
/// literal.
fn host(authority: &str) -> &str {
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host_port)| host_port);
    match host_port.strip_prefix('[') {
        Some(literal) => literal.split_once(']').map_or("", |(ip, _)| ip),
        None => host_port
            .split_once(':')
            .map_or(host_port, |(host, _)| host),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    /// (configured, dial URL, HTTP base)
    const OK: &[(&str, &str, &str)] = &[
        // protocol.md §1.2 table
        (
            "https://connector.example",
            "wss://connector.example/relay",
            "https://connector.example",
        ),
        (
            "http://127.0.0.1:8080/",
            "ws://127.0.0.1:8080/relay",
            "http://127.0.0.1:8080",
        ),
        (
            "wss://connector.example/relay",
            "wss://connector.example/relay",
            "https://connector.example",
        ),
        (
            "wss://connector.example/relay///",
            "wss://connector.example/relay",
            "https://connector.example",
        ),
        (
            "https://connector.example/base",
            "wss://connector.example/base/relay",
            "https://connector.example/base",
        ),
        // Weakness rows, fixed: case-insensitive scheme, query kept.
        (
            "HTTPS://connector.example",
            "wss://connector.example/relay",
            "https://connector.example",
        ),
        (
            "https://c.example/relay?x=1",
            "wss://c.example/relay?x=1",
            "https://c.example",
        ),
        // Further cases.
        (
            "https://c.example/base?x=1",
            "wss://c.example/base/relay?x=1",
            "https://c.example/base",
        ),
        (
            "https://c.example?x=1&y=a/b",
            "wss://c.example/relay?x=1&y=a/b",
            "https://c.example",
        ),
        (
            "https://c.example/base/?x=1#frag",
            "wss://c.example/base/relay?x=1",
            "https://c.example/base",
        ),
        (
            "https://c.example/base#frag?notquery",
            "wss://c.example/base/relay",
            "https://c.example/base",
        ),
        (
            "  \thttps://c.example/ \n",
            "wss://c.example/relay",
            "https://c.example",
        ),
        ("ws://h:1/relay///", "ws://h:1/relay", "http://h:1"),
        (
            "http://[::1]:8080/",
            "ws://[::1]:8080/relay",
            "http://[::1]:8080",
        ),
        (
            "WSS://connector.example/relay",
            "wss://connector.example/relay",
            "https://connector.example",
        ),
        (
            "https://h/a/?x=1 #frag",
            "wss://h/a/relay?x=1",
            "https://h/a",
        ),
        ("https://h?", "wss://h/relay?", "https://h"),
        ("Ws://h", "ws://h/relay", "http://h"),
        ("hTTp://h//", "ws://h/relay", "http://h"),
        // A host named `relay` is not a `/relay` path (the reference would keep `wss://relay`).
        ("wss://relay", "wss://relay/relay", "https://relay"),
        (
            "wss://h/relay/relay",
            "wss://h/relay/relay",
            "https://h/relay",
        ),
        ("wss://h/xrelay", "wss://h/xrelay/relay", "https://h/xrelay"),
        (
            "https://user:pw@h:443/a",
            "wss://user:pw@h:443/a/relay",
            "https://user:pw@h:443/a",
        ),
    ];

    const ERR: &[(&str, UrlError)] = &[
        ("", UrlError::Empty),
        (" \t\n", UrlError::Empty),
        ("connector.example", UrlError::MissingScheme),
        ("connector.example/relay", UrlError::MissingScheme),
        ("localhost:8080", UrlError::MissingScheme),
        ("//connector.example", UrlError::MissingScheme),
        ("://connector.example", UrlError::MissingScheme),
        ("c.example/?next=https://x", UrlError::MissingScheme),
        ("https://", UrlError::EmptyHost),
        ("https:///relay", UrlError::EmptyHost),
        ("https://?x=1", UrlError::EmptyHost),
        ("https://:8080/", UrlError::EmptyHost),
        ("https://user@/", UrlError::EmptyHost),
        ("http://[]:8080", UrlError::EmptyHost),
        ("http://[::1", UrlError::EmptyHost),
    ];

    #[test]
    fn dial_urls() {
        for (configured, dial, _) in OK {
            assert_eq!(dial_url(configured).unwrap(), *dial, "{configured:?}");
        }
    }

    #[test]
    fn http_bases() {
        for (configured, dial, base) in OK {
            assert_eq!(http_base(configured).unwrap(), *base, "{configured:?}");
            assert_eq!(http_base(dial).unwrap(), *base, "{dial:?}");
        }
    }

    #[test]
    fn idempotent() {
        for (configured, _, _) in OK {
            let once = dial_url(configured).unwrap();
            assert_eq!(dial_url(&once).unwrap(), once, "{configured:?}");
        }
    }

    /// Strings glued from URL-ish pieces: no panic, and every success is a fixed point that
    /// maps to the same HTTP base.
    #[test]
    fn generated_urls_are_idempotent() {
        const PIECES: [&str; 24] = [
            "http", "HTTPS", "ws", "wSs", "ftp", "://", ":", "/", "//", "relay", "/relay", "?",
            "#", "@", "[", "]", "::1", "h", "x=1", " ", "\t", "é", "8080", ".",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % 1024).unwrap()
        };
        let mut successes = 0;
        for _ in 0..5000 {
            let len = next() % 12;
            // Most inputs get a real scheme, so that the later pieces are exercised.
            let prefix = ["http://", "HTTPS://", "ws://", " wSs://", ""][next() % 5];
            let rest: String = (0..len).map(|_| PIECES[next() % PIECES.len()]).collect();
            let input = format!("{prefix}{rest}");
            let Ok(once) = dial_url(&input) else {
                continue;
            };
            successes += 1;
            assert_eq!(dial_url(&once).unwrap(), once, "{input:?}");
            assert_eq!(http_base(&input), http_base(&once), "{input:?}");
        }
        assert!(
            successes > 100,
            "only {successes} generated URLs were accepted"
        );
    }

    #[test]
    fn errors() {
        for (configured, err) in ERR {
            assert_eq!(dial_url(configured).as_ref(), Err(err), "{configured:?}");
            assert_eq!(http_base(configured).as_ref(), Err(err), "{configured:?}");
        }
    }

    #[test]
    fn unsupported_schemes_are_reported_as_written() {
        for scheme in ["ftp", "FTP", "wsss", "file", "h2c"] {
            let url = format!("{scheme}://host/");
            assert_eq!(
                dial_url(&url),
                Err(UrlError::UnsupportedScheme(scheme.to_owned()))
            );
        }
    }

    #[test]
    fn error_messages_do_not_leak_the_url() {
        let err = dial_url("ftp://user:secret@host/").unwrap_err();
        assert!(!err.to_string().contains("secret"));
        assert_eq!(
            err.to_string(),
            "relay URL scheme `ftp` is not supported; expected ws, wss, http or https"
        );
    }
}
