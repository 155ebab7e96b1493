//! W3C Trace Context: the trace a request belongs to, read from the client's `traceparent` and
//! `tracestate`, and the headers that carry it on to the upstreams.
//!
//! The gateway decides its span ids when the request arrives (so that the upstream call can name
//! its parent before it is made) and builds the spans once the request is accounted: see
//! [`super::spans`].

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};

pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
/// W3C Trace Context Level 2: the trace and span the server recorded, sent back to the client.
pub const TRACERESPONSE: HeaderName = HeaderName::from_static("traceresponse");
/// The longest `tracestate` passed on (the specification's 32 members of at most 256 bytes fit in
/// less); a longer one is dropped, as the specification allows.
const MAX_TRACESTATE_BYTES: usize = 8192;

/// The client's span, from a valid `traceparent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub sampled: bool,
    /// The client's `tracestate`, passed on unchanged.
    pub state: Option<HeaderValue>,
}

/// The trace a request is part of.
#[derive(Clone, Debug)]
pub struct TraceContext {
    pub trace_id: TraceId,
    /// The client's span, if it sent one.
    pub parent: Option<SpanId>,
    /// The gateway's span for the request (the client's own when the gateway records none).
    pub span_id: SpanId,
    /// Sampled: the gateway exports this request's spans (and says so to upstreams).
    pub sampled: bool,
    /// Whether the gateway records spans at all; without a tracer it only passes the client's
    /// context on.
    pub recorded: bool,
    pub state: Option<HeaderValue>,
}

impl TraceContext {
    /// Without a tracer: the client's context, passed on as it came.
    pub fn passed_on(remote: Remote) -> TraceContext {
        TraceContext {
            trace_id: remote.trace_id,
            parent: Some(remote.span_id),
            span_id: remote.span_id,
            sampled: remote.sampled,
            recorded: false,
            state: remote.state,
        }
    }

    pub fn trace_id_hex(&self) -> String {
        self.trace_id.to_string()
    }

    /// The headers that make `span_id` the parent of what the upstream records.
    pub fn headers_for(&self, span_id: SpanId) -> Vec<(HeaderName, HeaderValue)> {
        let mut headers = vec![(TRACEPARENT, traceparent(self.trace_id, span_id, self.sampled))];
        if let Some(state) = &self.state {
            headers.push((TRACESTATE, state.clone()));
        }
        headers
    }

    /// `traceresponse` for the client: the gateway's span, when it records one.
    pub fn response_header(&self) -> Option<(HeaderName, HeaderValue)> {
        self.recorded.then(|| (TRACERESPONSE, traceparent(self.trace_id, self.span_id, self.sampled)))
    }

    pub fn flags(&self) -> TraceFlags {
        if self.sampled { TraceFlags::SAMPLED } else { TraceFlags::default() }
    }

    pub fn trace_state(&self) -> TraceState {
        self.state.as_ref().and_then(|v| v.to_str().ok()).and_then(|s| s.parse().ok()).unwrap_or_default()
    }
}

fn traceparent(trace_id: TraceId, span_id: SpanId, sampled: bool) -> HeaderValue {
    let flags = if sampled { "01" } else { "00" };
    // Hex digits and dashes only: always a valid header value.
    HeaderValue::from_str(&format!("00-{trace_id}-{span_id}-{flags}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The client's span from a valid `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`, lower case, ids
/// not all zero; a later version may append fields), with its `tracestate`.
pub fn remote(headers: &HeaderMap) -> Option<Remote> {
    let value = headers.get(TRACEPARENT)?.to_str().ok()?.trim();
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
        && (version != "00" || parts.next().is_none());
    if !valid {
        return None;
    }
    let trace_id = TraceId::from_hex(trace).ok().filter(|id| *id != TraceId::INVALID)?;
    let span_id = SpanId::from_hex(parent).ok().filter(|id| *id != SpanId::INVALID)?;
    let sampled = u8::from_str_radix(flags, 16).is_ok_and(|f| f & 1 == 1);
    let state = headers
        .get(TRACESTATE)
        .filter(|v| v.len() <= MAX_TRACESTATE_BYTES && v.to_str().is_ok_and(valid_tracestate))
        .cloned();
    Some(Remote { trace_id, span_id, sampled, state })
}

/// A `tracestate` as W3C Trace Context defines it: at most 32 comma-separated `key=value` members
/// (empty ones allowed), keys of lower-case letters, digits and `_-*/`, with one `@` for a tenant,
/// values of printable ASCII without `,` and `=`.
fn valid_tracestate(text: &str) -> bool {
    let members: Vec<&str> =
        text.split(',').map(|m| m.trim_matches([' ', '\t'])).filter(|m| !m.is_empty()).collect();
    let key_char = |b: u8| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/' | b'@');
    members.len() <= 32
        && members.iter().all(|member| {
            let Some((key, value)) = member.split_once('=') else { return false };
            key.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && key.len() <= 256
                && key.bytes().all(key_char)
                && key.matches('@').count() <= 1
                && !value.is_empty()
                && value.len() <= 256
                && value.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
                && !value.ends_with(' ')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn only_valid_traceparents_are_continued() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let found = remote(&headers(&[("traceparent", &format!("00-{id}-00f067aa0ba902b7-01"))])).unwrap();
        assert_eq!(found.trace_id.to_string(), id);
        assert_eq!(found.span_id.to_string(), "00f067aa0ba902b7");
        assert!(found.sampled);
        let unsampled =
            remote(&headers(&[("traceparent", &format!("00-{id}-00f067aa0ba902b7-00"))])).unwrap();
        assert!(!unsampled.sampled);
        for wrong in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "garbage",
        ] {
            assert_eq!(remote(&headers(&[("traceparent", wrong)])), None, "{wrong}");
        }
        assert_eq!(remote(&HeaderMap::new()), None);
    }

    #[test]
    fn the_context_goes_on_to_upstreams_with_its_state() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let found = remote(&headers(&[("traceparent", parent), ("tracestate", "vendor=abc")])).unwrap();
        let context = TraceContext::passed_on(found);
        let sent = context.headers_for(context.span_id);
        assert_eq!(sent[0].1, parent);
        assert_eq!(sent[1], (TRACESTATE, HeaderValue::from_static("vendor=abc")));
        assert_eq!(context.response_header(), None, "nothing recorded, nothing to report");
        for bad in ["=,=", "Vendor=x", "a=b=c", "a=", "a=b,c"] {
            let found = remote(&headers(&[("traceparent", parent), ("tracestate", bad)])).unwrap();
            assert_eq!(found.state, None, "{bad}");
        }
        let good = "rojo=00f067aa0ba902b7, congo=t61rcWkgMzE,tenant@vendor=x";
        assert!(remote(&headers(&[("traceparent", parent), ("tracestate", good)])).unwrap().state.is_some());
    }
}
