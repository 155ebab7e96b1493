//! A finished request as OpenTelemetry spans: the request's span with the GenAI semantic
//! conventions' attributes (and the gateway's own under `switchboard.`), and one child span per
//! upstream attempt, so retries and fallbacks show as siblings.
//!
//! Message content is never recorded.

use std::borrow::Cow;
use std::time::SystemTime;

use opentelemetry::trace::{Event, SpanContext, SpanId, SpanKind, Status};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

use super::Tracer;
use super::context::TraceContext;
use crate::record::LedgerRecord;

/// What the request's span says besides its record.
pub struct RequestFacts<'a> {
    /// GenAI operation (`chat`).
    pub operation: &'static str,
    /// The model the upstream was asked for.
    pub response_model: &'a str,
    pub max_tokens: Option<u64>,
    pub finish_reasons: &'a [&'static str],
    pub response_id: Option<&'a str>,
    /// Whether budgets and rate limits applied to the request.
    pub budgeted: bool,
    pub rate_limited: bool,
    /// Prompts and replies, for routes that capture them.
    pub content: Vec<KeyValue>,
}

/// An attempt's span: its id (the upstream's parent), the backend's address and its breaker.
#[derive(Clone, Debug)]
pub struct AttemptSpan {
    pub span_id: SpanId,
    pub address: Option<String>,
    /// The breaker's state when the attempt was admitted (`closed`, `half_open`).
    pub breaker: &'static str,
    pub start: SystemTime,
    pub end: SystemTime,
}

/// Builds and exports the spans of a sampled request.
pub fn export(
    tracer: &Tracer,
    context: &TraceContext,
    (started, end): (SystemTime, SystemTime),
    record: &LedgerRecord,
    mut facts: RequestFacts<'_>,
    attempts: &[AttemptSpan],
    events: Vec<Event>,
) {
    let Some(scope) = tracer.scope() else { return };
    if !(context.recorded && context.sampled) {
        return;
    }
    let error = record.error_code.as_deref();
    let mut span_events = SpanEvents::default();
    span_events.events = events;
    let request = SpanData {
        span_context: span_context(context, context.span_id),
        parent_span_id: context.parent.unwrap_or(SpanId::INVALID),
        parent_span_is_remote: context.parent.is_some(),
        span_kind: SpanKind::Server,
        name: Cow::Owned(format!("{} {}", facts.operation, record.model)),
        start_time: started,
        end_time: end,
        attributes: request_attributes(record, &mut facts, attempts.last()),
        dropped_attributes_count: 0,
        events: span_events,
        links: SpanLinks::default(),
        status: status(record.status, error),
        instrumentation_scope: scope.clone(),
    };
    let mut spans = Vec::with_capacity(1 + attempts.len());
    for (tried, span) in record.attempts.iter().zip(attempts) {
        let failed = tried.outcome != "ok";
        let mut attributes = vec![
            KeyValue::new("gen_ai.operation.name", facts.operation),
            KeyValue::new("gen_ai.provider.name", provider_name(&record.provider)),
            KeyValue::new("gen_ai.request.model", facts.response_model.to_owned()),
            KeyValue::new("switchboard.backend", tried.backend.clone()),
            KeyValue::new("switchboard.breaker.state", span.breaker),
        ];
        attributes.extend(address(span.address.as_deref()));
        if failed {
            attributes.push(KeyValue::new("error.type", tried.outcome.to_string()));
        }
        spans.push(SpanData {
            span_context: span_context(context, span.span_id),
            parent_span_id: context.span_id,
            parent_span_is_remote: false,
            span_kind: SpanKind::Client,
            name: Cow::Owned(format!("{} {}", facts.operation, facts.response_model)),
            start_time: span.start,
            end_time: span.end,
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: if failed { Status::error(tried.outcome.to_string()) } else { Status::Unset },
            instrumentation_scope: scope.clone(),
        });
    }
    spans.insert(0, request);
    tracer.export(spans);
}

/// A server span of a plain operation: its attributes, and `error.type` with an error status if it
/// failed.
pub fn export_plain(
    tracer: &Tracer,
    context: &TraceContext,
    name: String,
    (started, end): (SystemTime, SystemTime),
    mut attributes: Vec<KeyValue>,
    error: Option<&str>,
) {
    let Some(scope) = tracer.scope().filter(|_| context.sampled) else { return };
    if let Some(error) = error {
        attributes.push(KeyValue::new("error.type", error.to_owned()));
    }
    tracer.export([SpanData {
        span_context: span_context(context, context.span_id),
        parent_span_id: context.parent.unwrap_or(SpanId::INVALID),
        parent_span_is_remote: context.parent.is_some(),
        span_kind: SpanKind::Server,
        name: Cow::Owned(name),
        start_time: started,
        end_time: end,
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: error.map_or(Status::Unset, |e| Status::error(e.to_owned())),
        instrumentation_scope: scope.clone(),
    }]);
}

fn span_context(context: &TraceContext, span_id: SpanId) -> SpanContext {
    SpanContext::new(context.trace_id, span_id, context.flags(), false, context.trace_state())
}

/// A server span is an error on a 5xx only; the error type is recorded either way.
fn status(http_status: u16, error: Option<&str>) -> Status {
    match error {
        Some(error) if http_status >= 500 => Status::error(error.to_owned()),
        _ => Status::Unset,
    }
}

fn request_attributes(
    record: &LedgerRecord,
    facts: &mut RequestFacts<'_>,
    last: Option<&AttemptSpan>,
) -> Vec<KeyValue> {
    let text = |value: &str| Value::from(value.to_owned());
    let count = |value: u64| Value::I64(i64::try_from(value).unwrap_or(i64::MAX));
    let mut attributes = vec![
        KeyValue::new("gen_ai.operation.name", facts.operation),
        KeyValue::new("gen_ai.request.model", text(&record.model)),
        KeyValue::new("http.response.status_code", i64::from(record.status)),
        KeyValue::new("switchboard.request.id", text(&record.id)),
        KeyValue::new("switchboard.tenant", text(&record.tenant)),
        KeyValue::new("switchboard.api_key.name", text(&record.api_key)),
        KeyValue::new("switchboard.route", text(&record.route)),
        KeyValue::new("switchboard.endpoint", record.endpoint),
        KeyValue::new("switchboard.stream", record.stream),
        KeyValue::new("switchboard.cache_hit", record.cache_hit),
        KeyValue::new("switchboard.attempts", i64::try_from(record.attempts.len()).unwrap_or(i64::MAX)),
        KeyValue::new("switchboard.budget.outcome", budget_outcome(record, facts)),
        KeyValue::new("switchboard.rate_limit.outcome", rate_limit_outcome(record, facts)),
    ];
    if record.billed {
        attributes.extend([
            KeyValue::new("gen_ai.usage.input_tokens", count(record.input_total())),
            KeyValue::new("gen_ai.usage.output_tokens", count(record.output_tokens)),
            // Nano-dollars to dollars: exact to the nano-dollar in an f64 below $9M.
            KeyValue::new("switchboard.cost.usd", record.cost_nanos as f64 / 1e9),
        ]);
        // Cache tokens where the provider reported some: most requests have none.
        let cached = [
            ("gen_ai.usage.cache_read.input_tokens", record.cached_input_tokens),
            ("gen_ai.usage.cache_creation.input_tokens", record.cache_write_tokens),
        ];
        attributes
            .extend(cached.into_iter().filter(|(_, n)| *n > 0).map(|(key, n)| KeyValue::new(key, count(n))));
    }
    if !record.backend.is_empty() {
        attributes.push(KeyValue::new("gen_ai.provider.name", provider_name(&record.provider)));
        attributes.push(KeyValue::new("gen_ai.response.model", facts.response_model.to_owned()));
        attributes.push(KeyValue::new("switchboard.backend", text(&record.backend)));
        attributes.extend(address(last.and_then(|a| a.address.as_deref())));
    }
    if let Some(max_tokens) = facts.max_tokens {
        attributes.push(KeyValue::new("gen_ai.request.max_tokens", count(max_tokens)));
    }
    if !facts.finish_reasons.is_empty() {
        let reasons = facts.finish_reasons.iter().map(|r| (*r).into()).collect();
        attributes.push(KeyValue::new(
            "gen_ai.response.finish_reasons",
            Value::Array(opentelemetry::Array::String(reasons)),
        ));
    }
    if let Some(id) = facts.response_id {
        attributes.push(KeyValue::new("gen_ai.response.id", text(id)));
    }
    if let Some(persona) = &record.persona {
        attributes.push(KeyValue::new("switchboard.persona", text(persona)));
    }
    if let Some(error) = &record.error_code {
        attributes.push(KeyValue::new("error.type", text(error)));
    }
    // Moved, not copied: captured content runs to 16 KiB an attribute.
    attributes.append(&mut facts.content);
    attributes
}

fn budget_outcome(record: &LedgerRecord, facts: &RequestFacts<'_>) -> &'static str {
    match record.error_code.as_deref() {
        Some("budget_exceeded") => "refused",
        _ if facts.budgeted => "reserved",
        _ => "none",
    }
}

fn rate_limit_outcome(record: &LedgerRecord, facts: &RequestFacts<'_>) -> &'static str {
    match record.error_code.as_deref() {
        Some("rate_limit_exceeded") => "limited",
        _ if facts.rate_limited => "allowed",
        _ => "none",
    }
}

/// The conventions' provider names; the built-in mock is the gateway's own.
fn provider_name(kind: &str) -> Value {
    match kind {
        "mock" => Value::from("switchboard.mock"),
        other => Value::from(other.to_owned()),
    }
}

/// `server.address` and `server.port` of an upstream's `host:port`.
fn address(authority: Option<&str>) -> Vec<KeyValue> {
    let Some(authority) = authority else { return Vec::new() };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => match port.parse::<u16>() {
            Ok(port) => (host, Some(port)),
            Err(_) => (authority, None),
        },
        _ => (authority, None),
    };
    let mut attributes = vec![KeyValue::new("server.address", host.trim_matches(['[', ']']).to_owned())];
    attributes.extend(port.map(|port| KeyValue::new("server.port", i64::from(port))));
    attributes
}
