//! What the request log and the trace show about an exchange beyond its usage: the end user, the
//! trace, each attempt on a backend, the time to the first token, the wait in the queue and the
//! guardrails' hits.

use std::borrow::Cow;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::KeyValue;
use opentelemetry::trace::{Event, SpanId};

use super::lock;
use crate::guardrails::Hit;
use crate::payload::Payload;
use crate::persona::turn::SUBJECT_HEADER;
use crate::providers::{Chunk, Completion, Relayed};
use crate::record::{Attempt, LedgerRecord};
use crate::redact::Redactor;
use crate::telemetry::Tracer;
use crate::telemetry::content::Content;
use crate::telemetry::context::TraceContext;
use crate::telemetry::spans::{self, AttemptSpan, RequestFacts};

/// The longest end-user id kept; longer ones are not recorded (they are not ids).
const MAX_SUBJECT_BYTES: usize = 256;
/// An attempt's outcome when it succeeded.
pub const OK: &str = "ok";
/// No time recorded.
const UNSET: u64 = u64::MAX;

pub struct Trail {
    subject: Option<String>,
    /// The trace the request is part of (the client's, the gateway's, or none).
    trace: Option<TraceContext>,
    started: Instant,
    attempts: Mutex<Vec<Attempt>>,
    /// The spans of the attempts and the request's events, kept only when the request is sampled.
    attempt_spans: Mutex<Vec<AttemptSpan>>,
    events: Mutex<Vec<Event>>,
    reply: Mutex<ReplySeen>,
    /// Prompts and replies, when the route captures them and the request is sampled.
    content: Option<Mutex<Content>>,
    ttft_ms: AtomicU64,
    queue_ms: AtomicU64,
    /// What the policies' guardrails found and did, on the request and the reply.
    guardrails: Mutex<Vec<Hit>>,
}

/// What the reply said about itself, for the span.
#[derive(Default)]
struct ReplySeen {
    id: Option<String>,
    finish_reasons: Vec<&'static str>,
}

/// An attempt under way: when it began, the span id the upstream sees as its parent, and the
/// backend's breaker state when it was admitted (read only for a sampled request).
pub struct AttemptStart {
    began: Instant,
    span_id: Option<SpanId>,
    breaker: Option<&'static str>,
}

impl AttemptStart {
    pub fn began(&self) -> Instant {
        self.began
    }
}

impl Trail {
    /// `capture`: the route records prompts and replies on spans.
    /// `verified_subject`: the end user a verified token named, which no request field overrides.
    pub fn new(
        request: Payload<'_>,
        headers: &HeaderMap,
        verified_subject: Option<&str>,
        trace: Option<TraceContext>,
        started: Instant,
        capture: bool,
    ) -> Trail {
        let sampled = trace.as_ref().is_some_and(|t| t.recorded && t.sampled);
        Trail {
            content: request
                .chat()
                .filter(|_| capture && sampled)
                .map(|chat| Mutex::new(Content::of_request(chat))),
            subject: verified_subject.map(str::to_owned).or_else(|| end_user(request.user(), headers)),
            trace,
            started,
            attempts: Mutex::default(),
            attempt_spans: Mutex::default(),
            events: Mutex::default(),
            reply: Mutex::default(),
            ttft_ms: AtomicU64::new(UNSET),
            queue_ms: AtomicU64::new(UNSET),
            guardrails: Mutex::default(),
        }
    }

    /// Whether this request's spans are exported.
    pub fn sampled(&self) -> bool {
        self.trace.as_ref().is_some_and(|t| t.recorded && t.sampled)
    }

    /// `traceresponse` for the client, when the gateway records the request's span.
    pub fn response_header(&self) -> Option<(HeaderName, HeaderValue)> {
        self.trace.as_ref()?.response_header()
    }

    /// Starts an attempt (`breaker` reads the backend's breaker state, for the span); returns the
    /// trace headers that go to the upstream with it.
    pub fn begin_attempt(
        &self,
        tracer: &Tracer,
        breaker: impl FnOnce() -> &'static str,
    ) -> (AttemptStart, Vec<(HeaderName, HeaderValue)>) {
        let began = Instant::now();
        let breaker = self.sampled().then(breaker);
        let Some(trace) = &self.trace else {
            return (AttemptStart { began, span_id: None, breaker }, Vec::new());
        };
        let span_id = if trace.recorded { tracer.new_span_id() } else { None };
        (AttemptStart { began, span_id, breaker }, trace.headers_for(span_id.unwrap_or(trace.span_id)))
    }

    /// An attempt ended at `ended` with `outcome` on `backend` (at `address`).
    pub fn attempt(
        &self,
        start: AttemptStart,
        ended: Instant,
        backend: &str,
        address: Option<&str>,
        outcome: &'static str,
    ) {
        let after = start.began.saturating_duration_since(self.started);
        let took = ended.saturating_duration_since(start.began);
        let attempt = Attempt {
            backend: backend.to_owned(),
            outcome: Cow::Borrowed(outcome),
            at_ms: millis(after),
            ms: millis(took),
        };
        lock(&self.attempts).push(attempt);
        if let (Some(span_id), Some(breaker)) = (start.span_id, start.breaker) {
            let end = SystemTime::now();
            let start = end.checked_sub(took).unwrap_or(end);
            let span = AttemptSpan { span_id, address: address.map(str::to_owned), breaker, start, end };
            lock(&self.attempt_spans).push(span);
        }
    }

    pub fn first_token(&self, after: Duration) {
        self.ttft_ms.store(millis(after), Ordering::Relaxed);
        self.event("gen_ai.first_token", Vec::new);
    }

    pub fn queued(&self, waited: Duration) {
        self.queue_ms.store(millis(waited), Ordering::Relaxed);
        self.event("switchboard.queue.admitted", || {
            vec![KeyValue::new("switchboard.queue.wait_ms", waited.as_secs_f64() * 1e3)]
        });
    }

    /// Notes what the guardrails found and did.
    pub fn guardrails(&self, hits: Vec<Hit>) {
        lock(&self.guardrails).extend(hits);
    }

    /// Notes a whole reply, if the request is sampled.
    pub fn reply(&self, reply: &Completion) {
        if let (Some(content), Ok(value)) = (&self.content, reply.to_value()) {
            lock(content).complete(&value);
        }
        self.seen(reply);
    }

    /// Notes a stream chunk, if the request is sampled.
    pub fn chunk(&self, chunk: &Chunk) {
        if let (Some(content), Ok(value)) = (&self.content, chunk.to_value()) {
            lock(content).chunk(&value);
        }
        self.seen(chunk);
    }

    /// A reply's (or chunk's) id and finish reason.
    fn seen<S>(&self, reply: &Relayed<S>) {
        if !self.sampled() {
            return;
        }
        let mut seen = lock(&self.reply);
        if seen.id.is_none() {
            seen.id = reply.response_id();
        }
        seen.finish_reasons.extend(reply.finish_reason());
    }

    /// Records an event on the request's span, now, if the request is sampled (its attributes
    /// are made only then).
    pub fn event(&self, name: &'static str, attributes: impl FnOnce() -> Vec<KeyValue>) {
        if self.sampled() {
            lock(&self.events).push(Event::new(name, SystemTime::now(), attributes(), 0));
        }
    }

    /// Fills the record's request-log fields; called once, when the exchange is accounted.
    pub fn fill(&self, record: &mut LedgerRecord) {
        let time = |value: &AtomicU64| Some(value.load(Ordering::Relaxed)).filter(|ms| *ms != UNSET);
        record.subject.clone_from(&self.subject);
        record.trace_id = self.trace.as_ref().map(TraceContext::trace_id_hex);
        record.attempts = std::mem::take(&mut *lock(&self.attempts));
        record.ttft_ms = time(&self.ttft_ms);
        record.queue_ms = time(&self.queue_ms);
        record.guardrails = std::mem::take(&mut *lock(&self.guardrails));
    }

    /// Exports the request's spans (if sampled), once its record is filled; captured content is
    /// redacted with `redactor`.
    pub fn export(
        &self,
        tracer: &Tracer,
        record: &LedgerRecord,
        facts: RequestFacts<'_>,
        redactor: &Redactor,
    ) {
        let Some(trace) = self.trace.as_ref().filter(|_| self.sampled()) else { return };
        let attempts = std::mem::take(&mut *lock(&self.attempt_spans));
        let events = std::mem::take(&mut *lock(&self.events));
        let reply = std::mem::take(&mut *lock(&self.reply));
        let content = self
            .content
            .as_ref()
            .map(|c| std::mem::take(&mut *lock(c)).attributes(redactor))
            .unwrap_or_default();
        let facts = RequestFacts {
            finish_reasons: &reply.finish_reasons,
            response_id: reply.id.as_deref(),
            content,
            ..facts
        };
        let end = SystemTime::now();
        let times = (end.checked_sub(self.started.elapsed()).unwrap_or(end), end);
        spans::export(tracer, trace, times, record, facts, &attempts, events);
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX - 1)
}

/// The OpenAI `user` field, else the subject header, if it looks like an id: printable, at most
/// [`MAX_SUBJECT_BYTES`].
fn end_user(user: Option<&str>, headers: &HeaderMap) -> Option<String> {
    let header = || headers.get(SUBJECT_HEADER).and_then(|v| v.to_str().ok());
    let subject = user.or_else(header)?.trim();
    let id_like =
        !subject.is_empty() && subject.len() <= MAX_SUBJECT_BYTES && !subject.chars().any(char::is_control);
    id_like.then(|| subject.to_owned())
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn the_end_user_is_the_user_field_or_the_subject_header_if_id_like() {
        assert_eq!(end_user(Some(" u-1 "), &HeaderMap::new()).as_deref(), Some("u-1"));
        assert_eq!(end_user(None, &headers(SUBJECT_HEADER, "u-2")).as_deref(), Some("u-2"));
        assert_eq!(end_user(Some("u-1"), &headers(SUBJECT_HEADER, "u-2")).as_deref(), Some("u-1"));
        assert_eq!(end_user(Some(&"x".repeat(257)), &HeaderMap::new()), None);
        assert_eq!(end_user(Some("a\nb"), &HeaderMap::new()), None);
    }
}
