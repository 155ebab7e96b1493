//! Guardrails: detectors for personal data and secrets in message text, which policies call
//! (`input.detected` counts each kind in the request's messages; a policy's `redact` names the
//! kinds replaced before the upstream sees them, and `redact_reply` / `deny_reply` what happens
//! to a reply holding them, see [`reply`]). A detector that needs more than a shape checks it:
//! payment card numbers pass the Luhn check, IBANs their mod-97 check digits, phone numbers have
//! 8 to 15 digits. The matched text is never kept, logged or counted by value: what is kept is
//! a [`Hit`], a kind and a count.

pub mod reply;

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::metrics::Metrics;

/// What a detector finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Email,
    Phone,
    PaymentCard,
    Iban,
    ApiKey,
    PrivateKey,
}

impl Kind {
    pub const ALL: [Kind; 6] =
        [Kind::Email, Kind::Phone, Kind::PaymentCard, Kind::Iban, Kind::ApiKey, Kind::PrivateKey];

    /// The name policies use (`input.detected.<name>`, `redact := {"<name>"}`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::PaymentCard => "payment_card",
            Kind::Iban => "iban",
            Kind::ApiKey => "api_key",
            Kind::PrivateKey => "private_key",
        }
    }

    pub fn named(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    fn pattern(self) -> &'static Regex {
        static PATTERNS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
            [
                r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
                r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){2,4}",
                r"\b\d(?:[ -]?\d){12,18}\b",
                r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b",
                r"\b(?:sk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36}|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35})\b",
                // Without its end line, a key runs to the end of the text: its body is the secret.
                r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|[\s\S]*)",
            ]
            .iter()
            .map(|pattern| Regex::new(pattern).unwrap_or_else(|e| unreachable!("a guardrail pattern: {e}")))
            .collect()
        });
        &PATTERNS[self as usize]
    }

    /// Whether a shape match is the real thing.
    fn checks(self, found: &str) -> bool {
        let digits = || found.chars().filter(char::is_ascii_digit).collect::<Vec<_>>();
        match self {
            Kind::Phone => (8..=15).contains(&digits().len()),
            Kind::PaymentCard => luhn(&digits()),
            Kind::Iban => iban(found),
            _ => true,
        }
    }

    /// Where the kind occurs in `text`.
    fn find<'t>(self, text: &'t str) -> impl Iterator<Item = regex::Match<'t>> {
        self.pattern().find_iter(text).filter(move |found| self.checks(found.as_str()))
    }
}

/// The order in which kinds claim text: an IBAN's or a card's digits are not also a phone number.
const PRIORITY: [Kind; 6] =
    [Kind::PrivateKey, Kind::ApiKey, Kind::Iban, Kind::PaymentCard, Kind::Email, Kind::Phone];

/// Every occurrence in `text`, none overlapping another, in order.
fn occurrences(text: &str) -> Vec<(Kind, Range<usize>)> {
    let mut taken: Vec<(Kind, Range<usize>)> = Vec::new();
    for kind in PRIORITY {
        for found in kind.find(text) {
            let range = found.range();
            if !taken.iter().any(|(_, other)| other.start < range.end && range.start < other.end) {
                taken.push((kind, range));
            }
        }
    }
    taken.sort_by_key(|(_, range)| range.start);
    taken
}

fn luhn(digits: &[char]) -> bool {
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, digit)| {
            let d = digit.to_digit(10).unwrap_or(0);
            if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The IBAN check: the country and check digits moved to the end, letters as numbers, mod 97 = 1.
fn iban(found: &str) -> bool {
    let compact: String = found.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut remainder = 0u32;
    for c in tail.chars().chain(head.chars()) {
        let value = match c.to_digit(36) {
            Some(value) => value,
            None => return false,
        };
        let width = if value >= 10 { 100 } else { 10 };
        remainder = (remainder * width + value) % 97;
    }
    remainder == 1
}

/// How many of each kind a text holds.
pub type Counts = [u32; Kind::ALL.len()];

/// Which side of an exchange a guardrail looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Request,
    Reply,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Request => "request",
            Side::Reply => "reply",
        }
    }
}

/// What a guardrail did about what it found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Found (in a request: what the policy saw as `input.detected`).
    Detected,
    /// Replaced by `[REDACTED:<kind>]`.
    Redacted,
    /// The reason a reply was withheld.
    Denied,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Detected => "detected",
            Action::Redacted => "redacted",
            Action::Denied => "denied",
        }
    }
}

/// Occurrences of one kind on one side, and what was done: what the request log keeps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hit {
    pub on: Side,
    pub kind: Kind,
    pub action: Action,
    pub count: u32,
}

/// Adds the non-zero `counts` to `hits` and to the metrics.
pub fn record(hits: &mut Vec<Hit>, metrics: &Metrics, on: Side, action: Action, counts: &Counts) {
    for kind in Kind::ALL {
        let count = counts[kind as usize];
        if count > 0 {
            metrics.guardrail(on.name(), kind.name(), action.name(), count);
            hits.push(Hit { on, kind, action, count });
        }
    }
}

/// Counts each kind in `texts` (a request's string contents and text parts, or its inputs).
pub fn detect<'a>(texts: impl IntoIterator<Item = &'a str>) -> Counts {
    let mut counts = Counts::default();
    for text in texts {
        for (kind, _) in occurrences(text) {
            counts[kind as usize] = counts[kind as usize].saturating_add(1);
        }
    }
    counts
}

/// The counts as the policy input's `detected` object.
pub fn as_input(counts: &Counts) -> Value {
    Value::Object(
        Kind::ALL.iter().map(|kind| (kind.name().to_owned(), Value::from(counts[*kind as usize]))).collect(),
    )
}

/// Replaces every occurrence of `kinds` in `texts` with `[REDACTED:<kind>]`; returns how many of
/// each were replaced.
pub fn redact<'a>(texts: impl IntoIterator<Item = &'a mut String>, kinds: &[Kind]) -> Counts {
    let mut counts = Counts::default();
    for text in texts {
        redact_text(text, kinds, &mut counts);
    }
    counts
}

fn redact_text(text: &mut String, kinds: &[Kind], counts: &mut Counts) {
    let found = occurrences(text);
    if found.iter().any(|(kind, _)| kinds.contains(kind)) {
        *text = rewrite(text, &found, kinds, counts);
    }
}

/// `text` with the `found` occurrences of `kinds` replaced by `[REDACTED:<kind>]`, counted.
fn rewrite(text: &str, found: &[(Kind, Range<usize>)], kinds: &[Kind], counts: &mut Counts) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (kind, range) in found.iter().filter(|(kind, _)| kinds.contains(kind)) {
        out.push_str(&text[at..range.start]);
        out.push_str("[REDACTED:");
        out.push_str(kind.name());
        out.push(']');
        at = range.end;
        counts[*kind as usize] = counts[*kind as usize].saturating_add(1);
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::chat_request::{ChatRequest, Message};

    fn found(text: &str) -> Vec<&'static str> {
        let counts = detect([text]);
        Kind::ALL.iter().filter(|kind| counts[**kind as usize] > 0).map(|kind| kind.name()).collect()
    }

    #[test]
    fn each_detector_finds_its_kind_and_checks_it() {
        assert_eq!(found("write to ada.lovelace@example.co.uk today"), ["email"]);
        assert_eq!(found("call +44 20 7946 0958 after six"), ["phone"]);
        assert_eq!(found("card 4111 1111 1111 1111 exp 12/29"), ["payment_card"]);
        assert_eq!(found("card 4111 1111 1111 1112"), Vec::<&str>::new(), "fails Luhn");
        assert_eq!(found("pay to GB82 WEST 1234 5698 7654 32 please"), ["iban"]);
        // Bad check digits: no IBAN (its digit groups may still read as a phone number).
        assert!(!found("pay to GB82 WEST 1234 5698 7654 33 please").contains(&"iban"));
        assert_eq!(found("key sk-proj-abcdefghijklmnopqrstuvwx1234 here"), ["api_key"]);
        assert_eq!(found("AKIAIOSFODNN7EXAMPLE"), ["api_key"]);
        assert_eq!(
            found("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----"),
            ["private_key"]
        );
        assert_eq!(found("the meeting is at 10:30 in room 4, 2 people"), Vec::<&str>::new());
    }

    #[test]
    fn redaction_replaces_only_the_kinds_asked_in_every_text() {
        let request = json!({"model": "m", "messages": [
            {"role": "system", "content": "reply to ops@example.com"},
            {"role": "user", "content": [{"type": "text", "text": "card 4111-1111-1111-1111, mail me: a@b.io"}]},
        ]});
        let mut request = ChatRequest::parse(request).unwrap();
        let texts = request.messages.iter_mut().flat_map(Message::texts_mut);
        let counts = redact(texts, &[Kind::Email, Kind::PaymentCard]);
        assert_eq!((counts[Kind::Email as usize], counts[Kind::PaymentCard as usize]), (2, 1));
        let request = request.to_value();
        assert_eq!(request["messages"][0]["content"], "reply to [REDACTED:email]");
        assert_eq!(
            request["messages"][1]["content"][0]["text"],
            "card [REDACTED:payment_card], mail me: [REDACTED:email]"
        );
    }
}
