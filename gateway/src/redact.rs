//! Secrets removed from upstream text before it reaches a client or a log.
//!
//! An upstream may echo what it was sent: a provider key in a 401 message, an `Authorization`
//! header in a proxy's error page, another backend's key through a shared relay. Every upstream
//! error message passes [`Redactor::message`] (patterns that look like credentials, then the exact
//! secret values this config holds, then the length cap, in that order, so that a cut can never
//! leave a secret's head behind); every relayed body and stream chunk passes
//! [`Redactor::relayed`] (the exact values only: a model may legitimately write `Bearer abc...` in
//! an answer, but never the gateway's own keys).

use std::borrow::Cow;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, MatchKind};
use regex::Regex;

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// Secret values shorter than this are not searched for: they would match ordinary words.
const MIN_SECRET_LEN: usize = 8;

/// Characters of an upstream's error message kept after redaction.
pub const MAX_MESSAGE_CHARS: usize = 500;

/// Text shaped like a credential, whatever its value: bearer tokens, `sk-` style API keys, header
/// or field assignments of keys and tokens, AWS access key ids and Google API keys.
static PATTERNS: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)(?P<keep>\bbearer\s+|\b(?:x-api-key|x-goog-api-key|api[_-]?key|authorization|access[_-]?token|secret)",
        r#"["']?\s*[:=]\s*["']?(?:bearer\s+)?)[A-Za-z0-9._~+/=\-]{6,}"#,
        r"|\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{8,}",
        r"|\bAKIA[0-9A-Z]{16}\b",
        r"|\bAIza[0-9A-Za-z_\-]{35}",
    ))
    .ok()
});

/// The secret values of one config and the patterns above. Cheap to share; built with the runtime.
#[derive(Debug, Default)]
pub struct Redactor {
    /// The exact values, longest match first; `None` when there are none.
    secrets: Option<AhoCorasick>,
}

impl Redactor {
    /// Knows `secrets` (values shorter than eight bytes or not UTF-8 are skipped, see above).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a [u8]>) -> Redactor {
        let mut values: Vec<&str> = secrets
            .into_iter()
            .filter_map(|value| std::str::from_utf8(value).ok())
            .map(str::trim)
            .filter(|value| value.len() >= MIN_SECRET_LEN)
            .collect();
        values.sort_unstable();
        values.dedup();
        let secrets = (!values.is_empty())
            .then(|| AhoCorasick::builder().match_kind(MatchKind::LeftmostLongest).build(&values).ok())
            .flatten();
        Redactor { secrets }
    }

    /// An upstream's error text as it may be shown: secrets and credential-like text replaced,
    /// then cut to [`MAX_MESSAGE_CHARS`].
    pub fn message(&self, text: &str) -> String {
        let clean = self.scrub(text);
        match clean.char_indices().nth(MAX_MESSAGE_CHARS) {
            Some((cut, _)) => format!("{}...", &clean[..cut]),
            None => clean,
        }
    }

    /// Text recorded on a span (a route's captured prompts and replies): secrets and
    /// credential-like text replaced, then cut to at most `max_bytes` at a character boundary.
    pub fn content(&self, text: &str, max_bytes: usize) -> String {
        let mut clean = self.scrub(text);
        truncate_to(&mut clean, max_bytes);
        clean
    }

    /// Credential shapes, then the config's secret values, replaced.
    fn scrub(&self, text: &str) -> String {
        // Patterns first: once a value is `[REDACTED]`, `Bearer [REDACTED]` would make the
        // pattern take `Bearer` for the token.
        let shaped = match PATTERNS.as_ref() {
            Some(patterns) => patterns.replace_all(text, |caps: &regex::Captures<'_>| {
                format!("{}{REDACTED}", caps.name("keep").map_or("", |keep| keep.as_str()))
            }),
            None => Cow::Borrowed(text),
        };
        String::from_utf8_lossy(&self.exact(shaped.as_bytes())).into_owned()
    }

    /// Relayed bytes (a reply body, a stream chunk) with the config's secret values replaced;
    /// borrowed unchanged when none occurs, which is the fast path of every reply.
    pub fn relayed<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        self.exact(bytes)
    }

    fn exact<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        match &self.secrets {
            Some(secrets) if secrets.is_match(bytes) => {
                Cow::Owned(secrets.replace_all_bytes(bytes, &vec![REDACTED; secrets.patterns_len()]))
            }
            _ => Cow::Borrowed(bytes),
        }
    }
}

/// Cuts `text` to at most `max_bytes`, at a character boundary.
pub fn truncate_to(text: &mut String, max_bytes: usize) {
    if text.len() > max_bytes {
        let cut = (0..=max_bytes).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        text.truncate(cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "prov-key-0123456789abcdef";

    fn redactor() -> Redactor {
        Redactor::new([KEY.as_bytes(), b"short", b"other-secret-value"])
    }

    #[test]
    fn known_values_are_replaced_wherever_they_appear() {
        let text = format!("Incorrect API key provided: {KEY}; retry with other-secret-value");
        assert_eq!(
            redactor().message(&text),
            "Incorrect API key provided: [REDACTED]; retry with [REDACTED]"
        );
        assert_eq!(redactor().message("short words stay"), "short words stay");
    }

    #[test]
    fn credential_patterns_are_replaced_even_when_unknown() {
        let r = Redactor::default();
        assert_eq!(
            r.message("sent Authorization: Bearer abcdef.ghijkl-123"),
            "sent Authorization: Bearer [REDACTED]"
        );
        assert_eq!(r.message(r#"{"x-api-key": "zzzzzzzzzzzz"}"#), r#"{"x-api-key": "[REDACTED]"}"#);
        assert_eq!(r.message("key sk-ant-api03-abcdefghijk is bad"), "key [REDACTED] is bad");
        assert_eq!(r.message("id AKIAABCDEFGHIJKLMNOP."), "id [REDACTED].");
        assert_eq!(r.message("a bearer of bad news"), "a bearer of bad news");
        let known = redactor();
        assert_eq!(
            known.message(&format!("Authorization: Bearer {KEY}")),
            "Authorization: Bearer [REDACTED]"
        );
    }

    #[test]
    fn redaction_comes_before_the_cut() {
        // The key straddles the cap: without redaction first, all but its tail would survive.
        let text = format!("{}{KEY} and more", "x".repeat(MAX_MESSAGE_CHARS - 5));
        let shown = redactor().message(&text);
        assert!(!shown.contains(&KEY[..5]), "{shown}");
        assert!(shown.ends_with("..."), "{shown}");
        assert_eq!(shown.chars().count(), MAX_MESSAGE_CHARS + 3);
    }

    #[test]
    fn relayed_bytes_are_borrowed_unless_a_secret_occurs() {
        let r = redactor();
        assert!(matches!(r.relayed(b"{\"content\":\"Bearer abcdefgh\"}"), Cow::Borrowed(_)));
        let echoed = format!("{{\"content\":\"{KEY}\"}}");
        assert_eq!(&r.relayed(echoed.as_bytes())[..], b"{\"content\":\"[REDACTED]\"}");
    }
}
