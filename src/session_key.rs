//! Session-key derivation (protocol.md §9): the conformance oracle.
//!
//! The gateway files every conversation under a session key such as
//! `agent:main:discord:group:4455:77`, derived from the event's [`SessionSource`] and its own
//! configuration, and the key never travels to the connector with the event. Yet the connector
//! has to name that same key: when it strips a credential from a forwarded webhook (a Discord
//! interaction token, say) it vaults the credential under the key the gateway *will* derive,
//! and the gateway's later `follow_up` action names the key to spend it. [`session_key`] is that
//! derivation, byte for byte as the reference gateway's `build_session_key`, so a connector
//! binds capabilities under the right name and a gateway built on this crate files sessions
//! where a Hermes gateway would. Connector authors in other languages can use it as a test
//! oracle; the examples of protocol.md §9.5 are its tests.
//!
//! Derive from the source the gateway will see: apply the adapter post-processing of §9.4
//! first ([`apply_slack_top_level_thread`] for Slack; for a Discord interaction, the source
//! [`discord::interaction_event`](crate::discord::interaction_event) builds).
//!
//! What it cannot reproduce:
//! - **WhatsApp alias files.** The reference expands WhatsApp ids through `lid-mapping-*.json`
//!   files on the gateway host and keys on the shortest alias. Only the normalisation of §9.3
//!   is applied here, which is what the reference does when no such file exists (the normal
//!   case for relay deployments).
//! - **Plugin platforms.** A platform registered as a plugin on the gateway host keeps its
//!   name there; here every name outside the built-in list becomes `relay`.
//! - **Unambiguous keys.** Parts are joined with `:` without escaping, as in the reference, so
//!   ids containing `:` can make two different sources share a key (protocol.md §11.2 item
//!   21). Treat a key as an opaque name: compare it whole, never split it.
//! - **The gateway's configuration.** [`SessionKeyOptions`] must mirror it; a connector that
//!   guesses `group_sessions_per_user` wrong derives other keys.
#![deny(clippy::indexing_slicing)]

use std::borrow::Cow;

use crate::wire::{MessageEvent, SessionSource};

/// The platform names the reference gateway knows without plugins (protocol.md §4.2).
pub const BUILTIN_PLATFORMS: [&str; 24] = [
    "local",
    "telegram",
    "discord",
    "whatsapp",
    "whatsapp_cloud",
    "slack",
    "signal",
    "mattermost",
    "matrix",
    "homeassistant",
    "email",
    "sms",
    "dingtalk",
    "api_server",
    "webhook",
    "msgraph_webhook",
    "feishu",
    "wecom",
    "wecom_callback",
    "weixin",
    "bluebubbles",
    "qqbot",
    "yuanbao",
    "relay",
];

/// The gateway configuration that shapes session keys (protocol.md §9.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionKeyOptions {
    /// In a group chat outside a thread, give each participant their own session
    /// (gateway default: `true`).
    pub group_sessions_per_user: bool,
    /// Inside a thread, give each participant their own session (gateway default: `false`:
    /// a thread reads as one conversation).
    pub thread_sessions_per_user: bool,
    /// Whether the gateway multiplexes profiles, which selects the key's namespace.
    pub profile: ProfileMode,
}

impl Default for SessionKeyOptions {
    /// The reference gateway's defaults: per-user group sessions, shared threads, one profile.
    fn default() -> Self {
        Self {
            group_sessions_per_user: true,
            thread_sessions_per_user: false,
            profile: ProfileMode::Single,
        }
    }
}

/// How the gateway picks the profile whose namespace prefixes a key.
///
/// Modelled on the gateway's own decision rather than as a bare profile name, because the
/// same event gets different keys on a single-profile and on a multiplexing gateway: a
/// single-profile gateway ignores `source.profile` entirely.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ProfileMode {
    /// The gateway serves one profile: every key is in the `agent:main` namespace, whatever
    /// `source.profile` says.
    #[default]
    Single,
    /// The gateway multiplexes profiles: the identity's pinned profile when it has one, else
    /// the event's `source.profile`, else the default profile.
    Multiplex {
        /// The profile pinned to the identity the event arrived on, if any.
        pinned: Option<String>,
    },
}

impl ProfileMode {
    /// The profile an event from `source` is keyed under, or `None` for the default profile.
    /// Empty names count as absent, as they do in the reference.
    pub fn effective_profile<'a>(&'a self, source: &'a SessionSource) -> Option<&'a str> {
        match self {
            ProfileMode::Single => None,
            ProfileMode::Multiplex { pinned } => {
                non_empty(pinned.as_deref()).or_else(|| non_empty(source.profile.as_deref()))
            }
        }
    }
}

/// The session key the gateway derives for an event from `source` (protocol.md §9.2).
///
/// ```
/// use relay_machine::session_key::{session_key, SessionKeyOptions};
/// use relay_machine::wire::SessionSource;
///
/// let mut source = SessionSource::new("discord", "group", "4455");
/// source.user_id = Some("77".into());
/// assert_eq!(
///     session_key(&source, &SessionKeyOptions::default()),
///     "agent:main:discord:group:4455:77"
/// );
/// ```
pub fn session_key(source: &SessionSource, options: &SessionKeyOptions) -> String {
    let platform = canonical_platform(&source.platform);
    let whatsapp = platform == "whatsapp";
    let is_dm = source.chat_type == "dm";

    let chat: Cow<'_, str> = if is_dm && whatsapp {
        Cow::Owned(normalize_whatsapp_id(&source.chat_id))
    } else {
        Cow::Borrowed(&source.chat_id)
    };

    // A real thread always wins. Outside DMs, a channel message whose reply will open a
    // thread is keyed on that thread already, so the message and the in-thread follow-ups
    // share one session; its slot is normalised to `thread` for the same reason.
    let real_thread = non_empty(source.thread_id.as_deref());
    let prospective = if real_thread.is_none() && !is_dm {
        non_empty(source.prospective_thread_id.as_deref())
    } else {
        None
    };
    let thread = real_thread.or(prospective);
    let slot = if prospective.is_some() {
        "thread"
    } else {
        source.chat_type.as_str()
    };

    let isolate_user = if is_dm {
        // A DM without a chat id falls back to the sender, so such DMs never share a session.
        chat.is_empty()
    } else {
        options.group_sessions_per_user && (thread.is_none() || options.thread_sessions_per_user)
    };
    let participant = if isolate_user {
        participant(source, whatsapp)
    } else {
        None
    };

    let namespace = namespace(options.profile.effective_profile(source));
    let mut parts: Vec<&str> = vec![namespace.as_ref(), platform, slot];
    if platform == "slack" {
        // Slack channel ids are unique per workspace only; Discord's guild is deliberately
        // not part of the key (key compatibility in the reference).
        if let Some(scope) = non_empty(source.scope_id.as_deref()) {
            parts.push(scope);
        }
    }
    if !chat.is_empty() {
        parts.push(&chat);
    }
    let user_part = participant.as_deref().filter(|p| !p.is_empty());
    // DMs put the participant before the thread; groups and threads put it after.
    let tail = if is_dm {
        [user_part, thread]
    } else {
        [thread, user_part]
    };
    parts.extend(tail.into_iter().flatten());
    parts.join(":")
}

/// The platform name the gateway files `name` under: a built-in name as is, else the
/// built-in name it matches after trimming and lower-casing (the reference's lookup
/// fallback), else `relay`.
///
/// The same rule decides whether a forward is a Discord forward in
/// [`discord::interaction_event`](crate::discord::interaction_event), so the two never
/// disagree about case (protocol.md §11.2 item 24).
pub fn canonical_platform(name: &str) -> &'static str {
    if let Some(exact) = BUILTIN_PLATFORMS.iter().find(|p| **p == name) {
        return exact;
    }
    let lowered = py_trim(name).to_lowercase();
    BUILTIN_PLATFORMS
        .iter()
        .find(|p| **p == lowered)
        .copied()
        .unwrap_or("relay")
}

/// A WhatsApp id reduced to its stable numeric part (protocol.md §9.3): trimmed, the first
/// `+` removed, cut at the first `:` (device) and at the first `@` (server);
/// `"+60123456789:47@s.whatsapp.net"` → `"60123456789"`.
///
/// The reference then expands aliases through files on the gateway host; without such files
/// (the normal case) its result is this value.
pub fn normalize_whatsapp_id(value: &str) -> String {
    // The reference removes the first `+` wherever it is, not only a leading one.
    let without_plus = py_trim(value).replacen('+', "", 1);
    let device_cut = without_plus
        .split_once(':')
        .map_or(without_plus.as_str(), |(head, _)| head);
    let server_cut = device_cut
        .split_once('@')
        .map_or(device_cut, |(head, _)| head);
    server_cut.to_owned()
}

/// Applies the Slack top-level rule of protocol.md §9.4 and returns whether it changed the
/// event: a Slack event without a thread but with a message id (the event's, else the
/// source's) is keyed as its own thread, so each top-level message gets its own session.
///
/// The gateway does this when its Slack knobs `reply_in_thread` and
/// `dm_top_level_threads_as_sessions` are both on, which is their default; call it only then.
/// It applies to channel messages as well as DMs, as the reference's does.
pub fn apply_slack_top_level_thread(event: &mut MessageEvent) -> bool {
    if canonical_platform(&event.source.platform) != "slack"
        || non_empty(event.source.thread_id.as_deref()).is_some()
    {
        return false;
    }
    let message_id = non_empty(event.message_id.as_deref())
        .or_else(|| non_empty(event.source.message_id.as_deref()))
        .map(str::to_owned);
    match message_id {
        Some(id) => {
            event.source.thread_id = Some(id.into());
            true
        }
        None => false,
    }
}

/// The key's first two parts for `profile`: the default profile is `agent:main` (every
/// historical key); a profile literally named `main` is marked `agent:main~` so it cannot
/// share the default's sessions.
fn namespace(profile: Option<&str>) -> Cow<'static, str> {
    match profile {
        None | Some("default") => Cow::Borrowed("agent:main"),
        Some("main") => Cow::Borrowed("agent:main~"),
        Some(other) => Cow::Owned(format!("agent:{other}")),
    }
}

/// The sender id that isolates a user: the stable alternate id when there is one. WhatsApp
/// ids are normalised so the phone and device forms of one member do not split their session
/// (an id that normalises to nothing is kept raw, as in the reference).
fn participant(source: &SessionSource, whatsapp: bool) -> Option<Cow<'_, str>> {
    let id = non_empty(source.user_id_alt.as_deref()).or(non_empty(source.user_id.as_deref()))?;
    if whatsapp {
        let normalized = normalize_whatsapp_id(id);
        if !normalized.is_empty() {
            return Some(Cow::Owned(normalized));
        }
    }
    Some(Cow::Borrowed(id))
}

/// `Some` only for a non-empty string: the reference tests ids for truthiness.
fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

/// Trims what Python's `str.strip()` trims: Unicode whitespace plus the four ASCII
/// separator controls (U+001C..U+001F) that Python also counts as whitespace.
pub(crate) fn py_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::wire::Str;

    fn src(platform: &str, chat_type: &str, chat: &str) -> SessionSource {
        SessionSource::new(platform, chat_type, chat)
    }

    fn with(mut s: SessionSource, f: impl FnOnce(&mut SessionSource)) -> SessionSource {
        f(&mut s);
        s
    }

    fn user(s: SessionSource, id: &str) -> SessionSource {
        with(s, |s| s.user_id = Some(id.into()))
    }

    fn multiplex(pinned: Option<&str>) -> SessionKeyOptions {
        SessionKeyOptions {
            profile: ProfileMode::Multiplex {
                pinned: pinned.map(str::to_owned),
            },
            ..SessionKeyOptions::default()
        }
    }

    /// protocol.md §9.5, all sixteen rows, exact strings.
    #[test]
    fn worked_examples_of_section_9_5() {
        let defaults = SessionKeyOptions::default();
        let no_group_isolation = SessionKeyOptions {
            group_sessions_per_user: false,
            ..SessionKeyOptions::default()
        };
        let per_user_threads = SessionKeyOptions {
            thread_sessions_per_user: true,
            ..SessionKeyOptions::default()
        };
        let example_1 = user(src("discord", "dm", "111"), "42");
        let example_2 = with(user(src("discord", "group", "chanA"), "userX"), |s| {
            s.scope_id = Some("G1".into())
        });
        let cases: Vec<(u32, SessionSource, SessionKeyOptions, &str)> = vec![
            (
                1,
                example_1.clone(),
                defaults.clone(),
                "agent:main:discord:dm:111",
            ),
            (
                2,
                example_2.clone(),
                defaults.clone(),
                "agent:main:discord:group:chanA:userX",
            ),
            (
                3,
                example_2,
                no_group_isolation,
                "agent:main:discord:group:chanA",
            ),
            (
                4,
                with(
                    user(src("discord", "thread", "channel-1"), "human-1"),
                    |s| {
                        s.thread_id = Some("thread-1".into());
                        s.scope_id = Some("guild-1".into());
                        s.parent_chat_id = Some("parent-1".into());
                    },
                ),
                defaults.clone(),
                "agent:main:discord:thread:channel-1:thread-1",
            ),
            (
                5,
                with(user(src("discord", "thread", "th9"), "u1"), |s| {
                    s.thread_id = Some("th9".into())
                }),
                per_user_threads,
                "agent:main:discord:thread:th9:th9:u1",
            ),
            (
                6,
                with(user(src("discord", "group", "chanP"), "u7"), |s| {
                    s.prospective_thread_id = Some("th-B".into())
                }),
                defaults.clone(),
                "agent:main:discord:thread:chanP:th-B",
            ),
            (
                7,
                with(user(src("slack", "group", "C1"), "UROOT"), |s| {
                    s.scope_id = Some("T1".into())
                }),
                defaults.clone(),
                "agent:main:slack:group:T1:C1:UROOT",
            ),
            (
                8,
                with(user(src("slack", "group", "C1"), "UGROK"), |s| {
                    s.scope_id = Some("T1".into());
                    s.thread_id = Some("99.000".into());
                }),
                defaults.clone(),
                "agent:main:slack:group:T1:C1:99.000",
            ),
            (
                9,
                with(src("slack", "dm", "D0B"), |s| {
                    s.scope_id = Some("T7".into());
                    s.thread_id = Some("1786134543.728879".into());
                }),
                defaults.clone(),
                "agent:main:slack:dm:T7:D0B:1786134543.728879",
            ),
            (
                10,
                with(user(src("telegram", "forum", "-100123"), "5"), |s| {
                    s.thread_id = Some("77".into())
                }),
                defaults.clone(),
                "agent:main:telegram:forum:-100123:77",
            ),
            (
                11,
                with(user(src("signal", "dm", ""), "+15550001"), |s| {
                    s.user_id_alt = Some("uuid-abc".into())
                }),
                defaults.clone(),
                "agent:main:signal:dm:uuid-abc",
            ),
            (
                12,
                src("telegram", "dm", ""),
                defaults.clone(),
                "agent:main:telegram:dm",
            ),
            (
                13,
                src("whatsapp", "dm", "+60123456789:47@s.whatsapp.net"),
                defaults.clone(),
                "agent:main:whatsapp:dm:60123456789",
            ),
            (
                14,
                example_1.clone(),
                multiplex(Some("reviewer")),
                "agent:reviewer:discord:dm:111",
            ),
            (
                15,
                example_1,
                multiplex(Some("main")),
                "agent:main~:discord:dm:111",
            ),
            (
                16,
                user(src("made-up-platform", "channel", "c9"), "u9"),
                defaults,
                "agent:main:relay:channel:c9:u9",
            ),
        ];
        assert_eq!(cases.len(), 16);
        for (n, source, options, expected) in cases {
            assert_eq!(session_key(&source, &options), expected, "example #{n}");
        }
    }

    /// The three keys at the end of protocol.md §10.2, from the sources the Discord
    /// conversion builds.
    #[test]
    fn discord_interaction_keys_of_section_10_2() {
        let options = SessionKeyOptions::default();
        let guild = with(user(src("discord", "group", "4455"), "77"), |s| {
            s.scope_id = Some("1000".into())
        });
        assert_eq!(
            session_key(&guild, &options),
            "agent:main:discord:group:4455:77"
        );
        let thread = with(user(src("discord", "thread", "8888"), "77"), |s| {
            s.scope_id = Some("1000".into());
            s.thread_id = Some("8888".into());
            s.parent_chat_id = Some("4455".into());
        });
        assert_eq!(
            session_key(&thread, &options),
            "agent:main:discord:thread:8888:8888"
        );
        let dm = user(src("discord", "dm", "5151"), "77");
        assert_eq!(session_key(&dm, &options), "agent:main:discord:dm:5151");
    }

    #[test]
    fn the_profile_comes_from_the_pin_then_the_source_and_only_when_multiplexing() {
        let source = with(src("discord", "dm", "111"), |s| {
            s.profile = Some("reviewer".into())
        });
        // A single-profile gateway ignores source.profile.
        assert_eq!(
            session_key(&source, &SessionKeyOptions::default()),
            "agent:main:discord:dm:111"
        );
        assert_eq!(
            session_key(&source, &multiplex(None)),
            "agent:reviewer:discord:dm:111"
        );
        assert_eq!(
            session_key(&source, &multiplex(Some("ops"))),
            "agent:ops:discord:dm:111"
        );
        // Empty names count as absent; "default" is the legacy namespace.
        assert_eq!(
            session_key(&source, &multiplex(Some(""))),
            "agent:reviewer:discord:dm:111"
        );
        let unnamed = with(source.clone(), |s| s.profile = Some(Str::new()));
        assert_eq!(
            session_key(&unnamed, &multiplex(None)),
            "agent:main:discord:dm:111"
        );
        assert_eq!(
            session_key(&source, &multiplex(Some("default"))),
            "agent:main:discord:dm:111"
        );
    }

    #[test]
    fn platform_lookup_is_exact_then_trimmed_lower_case_then_relay() {
        assert_eq!(canonical_platform("discord"), "discord");
        assert_eq!(canonical_platform("Discord"), "discord");
        assert_eq!(canonical_platform(" SLACK\n"), "slack");
        assert_eq!(canonical_platform("whatsapp_cloud"), "whatsapp_cloud");
        assert_eq!(canonical_platform("twilio"), "relay");
        assert_eq!(canonical_platform(""), "relay");
        assert_eq!(canonical_platform("   "), "relay");
        // The normalised name is what goes into the key, and it selects the Slack rules.
        let source = with(user(src("Slack", "group", "C1"), "U1"), |s| {
            s.scope_id = Some("T1".into())
        });
        assert_eq!(
            session_key(&source, &SessionKeyOptions::default()),
            "agent:main:slack:group:T1:C1:U1"
        );
    }

    #[test]
    fn scope_is_part_of_slack_keys_only() {
        let discord = with(user(src("discord", "group", "C1"), "U1"), |s| {
            s.scope_id = Some("T1".into())
        });
        let slack = with(discord.clone(), |s| s.platform = "slack".into());
        let options = SessionKeyOptions::default();
        assert_eq!(
            session_key(&discord, &options),
            "agent:main:discord:group:C1:U1"
        );
        assert_eq!(
            session_key(&slack, &options),
            "agent:main:slack:group:T1:C1:U1"
        );
        let unscoped = with(slack, |s| s.scope_id = Some(Str::new()));
        assert_eq!(
            session_key(&unscoped, &options),
            "agent:main:slack:group:C1:U1"
        );
    }

    #[test]
    fn dm_rules() {
        let options = SessionKeyOptions::default();
        // With a chat id, the sender is not part of a DM key...
        let dm = with(user(src("telegram", "dm", "9"), "5"), |s| {
            s.user_id_alt = Some("alt".into())
        });
        assert_eq!(session_key(&dm, &options), "agent:main:telegram:dm:9");
        // ...and per-user options do not change that.
        let isolating = SessionKeyOptions {
            group_sessions_per_user: true,
            thread_sessions_per_user: true,
            ..SessionKeyOptions::default()
        };
        assert_eq!(session_key(&dm, &isolating), "agent:main:telegram:dm:9");
        // Without a chat id, the sender (user_id when there is no alt) stands in for it,
        // before the thread.
        let chatless = with(user(src("telegram", "dm", ""), "5"), |s| {
            s.thread_id = Some("t1".into())
        });
        assert_eq!(
            session_key(&chatless, &options),
            "agent:main:telegram:dm:5:t1"
        );
        // DMs ignore prospective threads.
        let prospective = with(src("discord", "dm", "111"), |s| {
            s.prospective_thread_id = Some("th".into())
        });
        assert_eq!(
            session_key(&prospective, &options),
            "agent:main:discord:dm:111"
        );
    }

    #[test]
    fn threads_real_and_prospective() {
        let options = SessionKeyOptions::default();
        // A real thread wins over a prospective one and keeps the chat type as its slot.
        let both = with(user(src("discord", "group", "c"), "u"), |s| {
            s.thread_id = Some("real".into());
            s.prospective_thread_id = Some("future".into());
        });
        assert_eq!(
            session_key(&both, &options),
            "agent:main:discord:group:c:real"
        );
        // An empty thread id is no thread: the prospective one applies.
        let empty = with(both.clone(), |s| s.thread_id = Some(Str::new()));
        assert_eq!(
            session_key(&empty, &options),
            "agent:main:discord:thread:c:future"
        );
        // Per-user threads put the participant after the thread, prospective ones too.
        let per_user = SessionKeyOptions {
            thread_sessions_per_user: true,
            ..SessionKeyOptions::default()
        };
        assert_eq!(
            session_key(&empty, &per_user),
            "agent:main:discord:thread:c:future:u"
        );
        // thread_sessions_per_user does not isolate when group isolation is off.
        let neither = SessionKeyOptions {
            group_sessions_per_user: false,
            thread_sessions_per_user: true,
            ..SessionKeyOptions::default()
        };
        assert_eq!(
            session_key(&empty, &neither),
            "agent:main:discord:thread:c:future"
        );
    }

    #[test]
    fn group_without_user_or_chat() {
        let options = SessionKeyOptions::default();
        assert_eq!(
            session_key(&src("discord", "group", "c"), &options),
            "agent:main:discord:group:c"
        );
        let anonymous = with(src("discord", "group", ""), |s| {
            s.user_id = Some(Str::new())
        });
        assert_eq!(
            session_key(&anonymous, &options),
            "agent:main:discord:group"
        );
        // user_id_alt is preferred, an empty one is not.
        let alt = with(user(src("signal", "group", "g"), "+1555"), |s| {
            s.user_id_alt = Some("uuid".into())
        });
        assert_eq!(
            session_key(&alt, &options),
            "agent:main:signal:group:g:uuid"
        );
        let empty_alt = with(alt, |s| s.user_id_alt = Some(Str::new()));
        assert_eq!(
            session_key(&empty_alt, &options),
            "agent:main:signal:group:g:+1555"
        );
    }

    #[test]
    fn whatsapp_normalisation() {
        assert_eq!(
            normalize_whatsapp_id(" +60123456789:47@s.whatsapp.net "),
            "60123456789"
        );
        assert_eq!(normalize_whatsapp_id("60123456789@lid"), "60123456789");
        assert_eq!(normalize_whatsapp_id("++1"), "+1");
        assert_eq!(normalize_whatsapp_id("12+34"), "1234");
        assert_eq!(normalize_whatsapp_id("@s.whatsapp.net"), "");
        assert_eq!(normalize_whatsapp_id(""), "");
        let options = SessionKeyOptions::default();
        // Group chat ids are not normalised; participants are.
        let group = user(
            src("whatsapp", "group", "120363@g.us"),
            "+60123456789:3@s.whatsapp.net",
        );
        assert_eq!(
            session_key(&group, &options),
            "agent:main:whatsapp:group:120363@g.us:60123456789"
        );
        // A participant that normalises to nothing is kept raw.
        let raw = user(src("whatsapp", "group", "g"), "@lid");
        assert_eq!(
            session_key(&raw, &options),
            "agent:main:whatsapp:group:g:@lid"
        );
        // A DM chat id that normalises to nothing falls back to the (normalised) sender.
        let chatless = user(
            src("whatsapp", "dm", "@s.whatsapp.net"),
            "+4912@s.whatsapp.net",
        );
        assert_eq!(
            session_key(&chatless, &options),
            "agent:main:whatsapp:dm:4912"
        );
        // whatsapp_cloud is another platform: no normalisation.
        let cloud = src("whatsapp_cloud", "dm", "+4912");
        assert_eq!(
            session_key(&cloud, &options),
            "agent:main:whatsapp_cloud:dm:+4912"
        );
    }

    #[test]
    fn ids_with_colons_are_ambiguous_as_in_the_reference() {
        let options = SessionKeyOptions::default();
        let a = user(src("discord", "group", "a:b"), "c");
        let b = user(src("discord", "group", "a"), "b:c");
        assert_eq!(session_key(&a, &options), session_key(&b, &options));
    }

    #[test]
    fn slack_top_level_messages_become_their_own_thread() {
        let mut event = MessageEvent {
            message_id: Some("1700.1".into()),
            source: with(src("slack", "group", "C1"), |s| {
                s.scope_id = Some("T1".into());
                s.message_id = Some("1700.2".into());
            }),
            ..MessageEvent::default()
        };
        assert!(apply_slack_top_level_thread(&mut event));
        // The event-level id is preferred.
        assert_eq!(event.source.thread_id.as_deref(), Some("1700.1"));
        assert_eq!(
            session_key(&event.source, &SessionKeyOptions::default()),
            "agent:main:slack:group:T1:C1:1700.1"
        );
        // A real thread is kept.
        assert!(!apply_slack_top_level_thread(&mut event));
        assert_eq!(event.source.thread_id.as_deref(), Some("1700.1"));
        // The source's id is the fallback, and DMs are affected too.
        let mut dm = MessageEvent {
            source: with(src("slack", "dm", "D1"), |s| {
                s.message_id = Some("1700.3".into());
                s.thread_id = Some(Str::new());
            }),
            ..MessageEvent::default()
        };
        assert!(apply_slack_top_level_thread(&mut dm));
        assert_eq!(dm.source.thread_id.as_deref(), Some("1700.3"));
        // No id, or another platform: unchanged.
        let mut idless = MessageEvent {
            source: src("slack", "group", "C1"),
            ..MessageEvent::default()
        };
        assert!(!apply_slack_top_level_thread(&mut idless));
        assert_eq!(idless.source.thread_id, None);
        let mut discord = MessageEvent {
            message_id: Some("m".into()),
            source: src("discord", "group", "C1"),
            ..MessageEvent::default()
        };
        assert!(!apply_slack_top_level_thread(&mut discord));
        assert_eq!(discord.source.thread_id, None);
    }

    #[test]
    fn python_strip_trims_separator_controls_too() {
        assert_eq!(py_trim("\u{1c}\t x \u{3000}\u{1f}"), "x");
        assert_eq!(py_trim("\u{200b}x"), "\u{200b}x");
    }
}
