//! Guardrails on replies: the kinds a policy names in `redact_reply` are replaced in what the
//! upstream answers, and a reply holding a kind named in `deny_reply` is withheld. A whole reply
//! is checked at once. A stream is checked as it passes ([`StreamGuard`]): its last
//! [`HELD_BYTES`] of text are held back, and so is an occurrence still reaching into them (a
//! card number whose last digits have not arrived, a private key whose end line has not), so
//! that nothing a guardrail takes out reaches the client before the text that completes it.

use std::ops::Range;
use std::sync::Arc;

use serde_json::{Value, json};

use super::{Action, Counts, Hit, Kind, Side, occurrences, record, rewrite};
use crate::metrics::Metrics;

/// Text a stream holds back per choice: longer than any card number, phone number or IBAN with
/// its spaces, and than the start of any key shape, so that an occurrence split across chunks
/// is whole before any of it is released.
pub const HELD_BYTES: usize = 256;

/// What the policies that apply ask of a reply.
#[derive(Debug, Default)]
pub struct ReplyGuard {
    redact: Vec<Kind>,
    /// The kinds that withhold a reply, each with the policy that says so.
    deny: Vec<(Kind, Arc<str>)>,
}

/// What the guardrails found in a reply and did about it.
#[derive(Debug, Default)]
pub struct Tally {
    detected: Counts,
    redacted: Counts,
    denied: Option<Kind>,
}

impl Tally {
    /// Whether anything was replaced.
    pub fn redacted_any(&self) -> bool {
        self.redacted.iter().any(|count| *count > 0)
    }

    /// Adds the tally to `hits` and the metrics.
    pub fn record(&self, hits: &mut Vec<Hit>, metrics: &Metrics) {
        record(hits, metrics, Side::Reply, Action::Detected, &self.detected);
        record(hits, metrics, Side::Reply, Action::Redacted, &self.redacted);
        if let Some(kind) = self.denied {
            let mut denied = Counts::default();
            denied[kind as usize] = 1;
            record(hits, metrics, Side::Reply, Action::Denied, &denied);
        }
    }
}

impl ReplyGuard {
    /// Adds what the policy of `owner` asks: kinds to redact, kinds that withhold the reply.
    pub fn add(&mut self, owner: &str, redact: &[Kind], deny: &[Kind]) {
        for kind in redact {
            if !self.redact.contains(kind) {
                self.redact.push(*kind);
            }
        }
        let owner: Arc<str> = Arc::from(owner);
        for kind in deny {
            if !self.deny.iter().any(|(denied, _)| denied == kind) {
                self.deny.push((*kind, owner.clone()));
            }
        }
    }

    /// Whether any policy asked anything of replies.
    pub fn is_empty(&self) -> bool {
        self.redact.is_empty() && self.deny.is_empty()
    }

    /// Checks a whole reply (a `chat.completion`): its messages' text redacted in place, or the
    /// reason it is withheld.
    pub fn complete(&self, reply: &mut Value, tally: &mut Tally) -> Result<(), String> {
        let choices = reply.get_mut("choices").and_then(Value::as_array_mut).into_iter().flatten();
        for choice in choices {
            if let Some(Value::String(text)) = choice.pointer_mut("/message/content") {
                let found = occurrences(text);
                self.check(&found, tally)?;
                *text = self.released(text, &found, tally);
            }
        }
        Ok(())
    }

    /// The reason to withhold a reply holding `found`, if it holds a kind denied.
    fn check(&self, found: &[(Kind, Range<usize>)], tally: &mut Tally) -> Result<(), String> {
        let denied = found.iter().find_map(|(kind, _)| self.deny.iter().find(|(denied, _)| denied == kind));
        match denied {
            None => Ok(()),
            Some((kind, owner)) => {
                tally.denied = Some(*kind);
                Err(format!("the reply was withheld by the policy of {owner}: it contained {}", kind.name()))
            }
        }
    }

    /// `text` as it may go out, its `found` occurrences counted and the redacted kinds replaced.
    fn released(&self, text: &str, found: &[(Kind, Range<usize>)], tally: &mut Tally) -> String {
        for (kind, _) in found {
            tally.detected[*kind as usize] = tally.detected[*kind as usize].saturating_add(1);
        }
        rewrite(text, found, &self.redact, &mut tally.redacted)
    }
}

/// A stream's guard: the text held back per choice, and what was found.
#[derive(Debug)]
pub struct StreamGuard {
    guard: Arc<ReplyGuard>,
    /// Text not yet released, by choice index.
    held: Vec<(u64, String)>,
    pub tally: Tally,
}

impl StreamGuard {
    pub fn new(guard: Arc<ReplyGuard>) -> StreamGuard {
        StreamGuard { guard, held: Vec::new(), tally: Tally::default() }
    }

    /// Checks a `chat.completion.chunk` (as a value): each choice's new text joins what is held,
    /// and the part now safe goes out in its place (all of it once the choice has finished).
    /// `Err` with the reason when the stream must be withheld from here on.
    pub fn chunk(&mut self, chunk: &mut Value) -> Result<(), String> {
        let choices = chunk.get_mut("choices").and_then(Value::as_array_mut).into_iter().flatten();
        for (position, choice) in choices.enumerate() {
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(position as u64);
            let finished = choice.get("finish_reason").is_some_and(|reason| !reason.is_null());
            let delta = &mut choice["delta"];
            let text = delta.get("content").and_then(Value::as_str).unwrap_or_default();
            let released = self.release(index, text, finished)?;
            if delta.get("content").is_some_and(Value::is_string) || !released.is_empty() {
                delta["content"] = Value::String(released);
            }
        }
        Ok(())
    }

    /// Whether no text is held, so a chunk without text passes untouched.
    pub fn holds_nothing(&self) -> bool {
        self.held.iter().all(|(_, text)| text.is_empty())
    }

    /// The text still held when the stream ends, as one chunk (`id` and `model` those of the
    /// stream), released whole.
    pub fn finish(&mut self, id: &str, model: &str) -> Result<Option<Value>, String> {
        let indices: Vec<u64> =
            self.held.iter().filter(|(_, text)| !text.is_empty()).map(|(index, _)| *index).collect();
        if indices.is_empty() {
            return Ok(None);
        }
        let mut choices = Vec::with_capacity(indices.len());
        for index in indices {
            let released = self.release(index, "", true)?;
            choices.push(json!({"index": index, "delta": {"content": released}, "finish_reason": null}));
        }
        Ok(Some(json!({"id": id, "object": "chat.completion.chunk", "model": model, "choices": choices})))
    }

    /// Adds `text` to what choice `index` holds and takes out what may go now.
    fn release(&mut self, index: u64, text: &str, last: bool) -> Result<String, String> {
        let position = match self.held.iter().position(|(held, _)| *held == index) {
            Some(position) => position,
            None => {
                self.held.push((index, String::new()));
                self.held.len() - 1
            }
        };
        let held = &mut self.held[position].1;
        held.push_str(text);
        let found = occurrences(held);
        self.guard.check(&found, &mut self.tally)?;
        let boundary = if last { held.len() } else { safe_boundary(held, &found) };
        let out: Vec<_> = found.into_iter().filter(|(_, range)| range.end <= boundary).collect();
        let released = self.guard.released(&held[..boundary], &out, &mut self.tally);
        held.drain(..boundary);
        Ok(released)
    }
}

/// Where the text that may go out ends: [`HELD_BYTES`] before the end, or earlier where an
/// occurrence reaching past that point begins (it may still grow).
fn safe_boundary(text: &str, found: &[(Kind, Range<usize>)]) -> usize {
    let mut boundary = text.len().saturating_sub(HELD_BYTES);
    while !text.is_char_boundary(boundary) {
        boundary -= 1;
    }
    let reaching = found.iter().find(|(_, range)| range.end > boundary);
    reaching.map_or(boundary, |(_, range)| range.start.min(boundary))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(redact: &[Kind], deny: &[Kind]) -> Arc<ReplyGuard> {
        let mut guard = ReplyGuard::default();
        guard.add("Tenant team", redact, deny);
        Arc::new(guard)
    }

    fn chunk(text: &str, finish: Option<&str>) -> Value {
        json!({"id": "c", "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]})
    }

    /// Streams `pieces` through a guard; the text the client gets, or the reason it stopped.
    fn streamed(guard: &Arc<ReplyGuard>, pieces: &[&str]) -> (String, Result<(), String>, Tally) {
        let mut stream = StreamGuard::new(guard.clone());
        let mut out = String::new();
        for (i, piece) in pieces.iter().enumerate() {
            let finish = (i + 1 == pieces.len()).then_some("stop");
            let mut value = chunk(piece, finish);
            if let Err(reason) = stream.chunk(&mut value) {
                return (out, Err(reason), stream.tally);
            }
            out.push_str(value["choices"][0]["delta"]["content"].as_str().unwrap_or_default());
        }
        (out, Ok(()), stream.tally)
    }

    #[test]
    fn an_occurrence_split_across_chunks_is_redacted_whole() {
        let guard = guard(&[Kind::PaymentCard, Kind::Email], &[]);
        // Far more text than is held, so that part of it goes out before the card is complete.
        let filler = "filler ".repeat(50);
        let first = format!("{filler}your card ");
        let pieces = [&first, "4111 11", "11 1111 ", "1111 is on file; mail ", "ada@exa", "mple.org", " now"];
        let (out, result, tally) = streamed(&guard, &pieces);
        assert_eq!(result, Ok(()));
        assert_eq!(
            out,
            format!("{filler}your card [REDACTED:payment_card] is on file; mail [REDACTED:email] now")
        );
        assert_eq!(tally.redacted[Kind::PaymentCard as usize], 1);
        assert_eq!(tally.detected[Kind::Email as usize], 1);
    }

    #[test]
    fn nothing_of_a_denied_kind_reaches_the_client() {
        let guard = guard(&[], &[Kind::PrivateKey]);
        let body = "MIIEowIBAAKCAQEA".repeat(40);
        let pieces =
            ["here it is: -----BEGIN RSA PRIV", "ATE KEY-----\n", &body, "\n-----END RSA PRIVATE KEY-----"];
        let (out, result, tally) = streamed(&guard, &pieces);
        assert_eq!(out, "", "everything was still held when the key's header completed");
        assert_eq!(
            result,
            Err("the reply was withheld by the policy of Tenant team: it contained private_key".into())
        );
        assert_eq!(tally.denied, Some(Kind::PrivateKey));
    }

    #[test]
    fn an_unfinished_private_key_is_held_until_its_end_and_redacted_whole() {
        let guard = guard(&[Kind::PrivateKey], &[]);
        let body = "QUJDREVGR0hJSktMTU5PUA==\n".repeat(30);
        let header = "-----BEGIN PRIVATE KEY-----\n";
        let end = "-----END PRIVATE KEY-----";
        let (out, _, _) = streamed(&guard, &["key: ", header, &body, end, " done"]);
        assert_eq!(out, "key: [REDACTED:private_key] done");
        // Cut off before its end line: the rest of the text is the key.
        let (out, _, _) = streamed(&guard, &["key: ", header, &body]);
        assert_eq!(out, "key: [REDACTED:private_key]");
    }

    #[test]
    fn long_text_flows_while_the_tail_is_held() {
        let guard = guard(&[Kind::Email], &[]);
        let mut stream = StreamGuard::new(guard);
        let mut value = chunk(&"word ".repeat(100), None);
        stream.chunk(&mut value).unwrap();
        let released = value["choices"][0]["delta"]["content"].as_str().unwrap().len();
        assert_eq!(released, 500 - HELD_BYTES);
        assert!(!stream.holds_nothing());
        let rest = stream.finish("c", "m").unwrap().unwrap();
        assert_eq!(rest["choices"][0]["delta"]["content"].as_str().unwrap().len(), HELD_BYTES);
        assert!(stream.holds_nothing());
    }

    #[test]
    fn a_whole_reply_is_redacted_or_withheld() {
        let guard = guard(&[Kind::Phone], &[Kind::Iban]);
        let mut reply = json!({"choices": [{"message": {"content": "call +44 20 7946 0958"}}]});
        let mut tally = Tally::default();
        guard.complete(&mut reply, &mut tally).unwrap();
        assert_eq!(reply["choices"][0]["message"]["content"], "call [REDACTED:phone]");
        let mut reply = json!({"choices": [{"message": {"content": "pay GB82 WEST 1234 5698 7654 32"}}]});
        let reason = guard.complete(&mut reply, &mut tally).unwrap_err();
        assert!(reason.ends_with("it contained iban"), "{reason}");
    }
}
