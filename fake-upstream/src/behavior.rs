//! Scripted behaviours, chosen per request so one fake can play every upstream failure mode.
//!
//! The gateway forwards a configured upstream model name, so the behaviour can be chosen by
//! configuring a route's upstream model (e.g. `error-429`); the `x-fake-behavior` header does the
//! same for tests that talk to the fake directly or let client headers through, and wins.

use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};

use crate::faults::Fault;

/// Request header selecting a behaviour; same syntax as the model name, and takes precedence.
pub const BEHAVIOR_HEADER: &str = "x-fake-behavior";

/// What the fake does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Behavior {
    /// Answer normally.
    Normal,
    /// `error-<status>`: answer with this 4xx/5xx status and the API's error body.
    Error(StatusCode),
    /// `slow-<ms>`: wait, then answer normally (streams: before the first byte).
    Slow(Duration),
    /// `hang`: never answer; the request ends when the client goes away or the server stops.
    Hang,
    /// `stream-cut`: stream the first two content chunks, then drop the connection.
    StreamCut,
    /// `no-usage`: leave every usage field out.
    NoUsage,
    /// `echo-request`: the reply text is the compact JSON of the request body.
    EchoRequest,
    /// A broken or hostile upstream's fault (see [`crate::faults`]).
    Fault(Fault),
}

impl Behavior {
    /// Parses one behaviour name; anything unrecognised (a real model name) is [`Behavior::Normal`].
    pub(crate) fn parse(name: &str) -> Behavior {
        let name = name.trim();
        if let Some(status) = name.strip_prefix("error-") {
            return status
                .parse::<u16>()
                .ok()
                .filter(|s| (400..=599).contains(s))
                .and_then(|s| StatusCode::from_u16(s).ok())
                .map_or(Behavior::Normal, Behavior::Error);
        }
        if let Some(ms) = name.strip_prefix("slow-") {
            return ms.parse().map_or(Behavior::Normal, |ms| Behavior::Slow(Duration::from_millis(ms)));
        }
        match name {
            "hang" => Behavior::Hang,
            "stream-cut" => Behavior::StreamCut,
            "no-usage" => Behavior::NoUsage,
            "echo-request" => Behavior::EchoRequest,
            _ => Fault::parse(name).map_or(Behavior::Normal, Behavior::Fault),
        }
    }

    /// The behaviour for a request: the header if present (even to force `normal`), else the
    /// instance's forced behaviour if set, else the model.
    pub(crate) fn select(headers: &HeaderMap, forced: Option<&str>, model: Option<&str>) -> Behavior {
        match headers.get(BEHAVIOR_HEADER) {
            Some(value) => value.to_str().map_or(Behavior::Normal, Behavior::parse),
            None => forced.or(model).map_or(Behavior::Normal, Behavior::parse),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn parses_every_behaviour() {
        assert_eq!(Behavior::parse("error-429"), Behavior::Error(StatusCode::TOO_MANY_REQUESTS));
        assert_eq!(Behavior::parse("error-200"), Behavior::Normal);
        assert_eq!(Behavior::parse("error-x"), Behavior::Normal);
        assert_eq!(Behavior::parse("slow-250"), Behavior::Slow(Duration::from_millis(250)));
        assert_eq!(Behavior::parse("hang"), Behavior::Hang);
        assert_eq!(Behavior::parse("stream-cut"), Behavior::StreamCut);
        assert_eq!(Behavior::parse("no-usage"), Behavior::NoUsage);
        assert_eq!(Behavior::parse("echo-request"), Behavior::EchoRequest);
        assert_eq!(Behavior::parse("gpt-4o-mini"), Behavior::Normal);
    }

    #[test]
    fn header_wins_over_model() {
        let mut headers = HeaderMap::new();
        assert_eq!(Behavior::select(&headers, None, Some("hang")), Behavior::Hang);
        headers.insert(BEHAVIOR_HEADER, HeaderValue::from_static("normal"));
        assert_eq!(Behavior::select(&headers, None, Some("hang")), Behavior::Normal);
        headers.insert(BEHAVIOR_HEADER, HeaderValue::from_static("error-503"));
        assert_eq!(Behavior::select(&headers, None, None), Behavior::Error(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(Behavior::select(&HeaderMap::new(), Some("hang"), Some("gpt")), Behavior::Hang);
    }
}
