//! What the request log shows about an exchange beyond its usage: the end user, the client's
//! trace id, each attempt on a backend, the time to the first token and the wait in the queue.

use std::borrow::Cow;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::HeaderMap;
use serde_json::Value;

use super::lock;
use crate::persona::turn::SUBJECT_HEADER;
use crate::record::{Attempt, LedgerRecord};

/// The longest end-user id kept; longer ones are not recorded (they are not ids).
const MAX_SUBJECT_BYTES: usize = 256;
/// An attempt's outcome when it succeeded.
pub const OK: &str = "ok";
/// No time recorded.
const UNSET: u64 = u64::MAX;

pub struct Trail {
    subject: Option<String>,
    trace_id: Option<String>,
    attempts: Mutex<Vec<Attempt>>,
    ttft_ms: AtomicU64,
    queue_ms: AtomicU64,
}

impl Trail {
    pub fn new(request: &Value, headers: &HeaderMap) -> Trail {
        Trail {
            subject: end_user(request, headers),
            trace_id: trace_id(headers),
            attempts: Mutex::default(),
            ttft_ms: AtomicU64::new(UNSET),
            queue_ms: AtomicU64::new(UNSET),
        }
    }

    pub fn attempt(&self, backend: &str, outcome: &'static str, took: Duration) {
        let attempt =
            Attempt { backend: backend.to_owned(), outcome: Cow::Borrowed(outcome), ms: millis(took) };
        lock(&self.attempts).push(attempt);
    }

    pub fn first_token(&self, after: Duration) {
        self.ttft_ms.store(millis(after), Ordering::Relaxed);
    }

    pub fn queued(&self, waited: Duration) {
        self.queue_ms.store(millis(waited), Ordering::Relaxed);
    }

    /// Fills the record's request-log fields; called once, when the exchange is accounted.
    pub fn fill(&self, record: &mut LedgerRecord) {
        let time = |value: &AtomicU64| Some(value.load(Ordering::Relaxed)).filter(|ms| *ms != UNSET);
        record.subject.clone_from(&self.subject);
        record.trace_id.clone_from(&self.trace_id);
        record.attempts = std::mem::take(&mut *lock(&self.attempts));
        record.ttft_ms = time(&self.ttft_ms);
        record.queue_ms = time(&self.queue_ms);
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX - 1)
}

/// The OpenAI `user` field, else the subject header, if it looks like an id: printable, at most
/// [`MAX_SUBJECT_BYTES`].
fn end_user(request: &Value, headers: &HeaderMap) -> Option<String> {
    let user = request.get("user").and_then(Value::as_str);
    let header = || headers.get(SUBJECT_HEADER).and_then(|v| v.to_str().ok());
    let subject = user.or_else(header)?.trim();
    let id_like =
        !subject.is_empty() && subject.len() <= MAX_SUBJECT_BYTES && !subject.chars().any(char::is_control);
    id_like.then(|| subject.to_owned())
}

/// The trace id of a valid W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`, ids not all zero).
fn trace_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("traceparent")?.to_str().ok()?.trim();
    let mut parts = value.split('-');
    let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |text: &str, len: usize| {
        text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let valid = hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0')
        && parent.bytes().any(|b| b != b'0')
        && (version != "00" || parts.next().is_none());
    valid.then(|| trace.to_owned())
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use serde_json::json;

    use super::*;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn trace_ids_come_only_from_valid_traceparents() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let valid = format!("00-{id}-00f067aa0ba902b7-01");
        assert_eq!(trace_id(&headers("traceparent", &valid)).as_deref(), Some(id));
        for wrong in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "garbage",
        ] {
            assert_eq!(trace_id(&headers("traceparent", wrong)), None, "{wrong}");
        }
        assert_eq!(trace_id(&HeaderMap::new()), None);
    }

    #[test]
    fn the_end_user_is_the_user_field_or_the_subject_header_if_id_like() {
        assert_eq!(end_user(&json!({"user": " u-1 "}), &HeaderMap::new()).as_deref(), Some("u-1"));
        assert_eq!(end_user(&json!({}), &headers(SUBJECT_HEADER, "u-2")).as_deref(), Some("u-2"));
        assert_eq!(
            end_user(&json!({"user": "u-1"}), &headers(SUBJECT_HEADER, "u-2")).as_deref(),
            Some("u-1")
        );
        assert_eq!(end_user(&json!({"user": "x".repeat(257)}), &HeaderMap::new()), None);
        assert_eq!(end_user(&json!({"user": "a\nb"}), &HeaderMap::new()), None);
        assert_eq!(end_user(&json!({"user": 5}), &HeaderMap::new()), None);
    }
}
