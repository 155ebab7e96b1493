//! Server-sent events read from an upstream's streamed response.
//!
//! Two things make this the hot path of every stream. hyper's client hands a body over one
//! transfer chunk at a time, each after a wake-up of its connection task, so the frames of a
//! burst that came in one socket read would reach the client one write (and one wake-up of the
//! client) each: the reader takes whatever the connection task can pass on within one yield
//! before it hands events on. And each `data` field stays a slice of the bytes that carried it,
//! so an OpenAI chunk can be relayed as it came (see [`super::Chunk`]).

use bytes::{Buf, Bytes, BytesMut};
use futures::{FutureExt, Stream, StreamExt};

use super::{Call, UpstreamError};

/// The most body bytes gathered before the events in them are handed on.
const MAX_BATCH_BYTES: usize = 64 * 1024;

/// One dispatched event.
pub struct Event {
    /// The `event:` field, empty when the event had none.
    pub name: String,
    /// The `data:` lines, joined with `\n`.
    pub data: Bytes,
}

/// The events of a `text/event-stream` response, in order, then the transport's error if the
/// body failed, or an error once a line or an event passes the call's limits (the stream ends
/// there: what is past a limit is never buffered).
pub fn events(
    response: reqwest::Response,
    call: &Call,
) -> impl Stream<Item = Result<Event, UpstreamError>> + Send + use<> {
    let (_, _, max_event, max_line) = call.limits.bytes();
    let timeout = call.timeout;
    async_stream::stream! {
        let mut body = Box::pin(response.bytes_stream());
        let mut parser = Parser::new(max_line, max_event);
        let mut next = body.next().await;
        while let Some(piece) = next {
            let fed = match piece {
                Ok(piece) => parser.feed(&piece),
                Err(error) => Err(UpstreamError::from_reqwest(&error, timeout)),
            };
            if let Err(error) = fed {
                for event in parser.take() {
                    yield Ok(event);
                }
                yield Err(error);
                return;
            }
            let ready = if parser.batched < MAX_BATCH_BYTES { ready_now(&mut body).await } else { None };
            next = match ready {
                Some(ready) => ready,
                None => {
                    for event in parser.take() {
                        yield Ok(event);
                    }
                    body.next().await
                }
            };
        }
        for event in parser.finish() {
            yield Ok(event);
        }
    }
}

/// The stream's next item if it is there already or arrives within one yield to the scheduler
/// (`Some(None)`: the stream ended); `None` if it is not ready.
async fn ready_now<S: Stream + Unpin>(stream: &mut S) -> Option<Option<S::Item>> {
    if let Some(next) = stream.next().now_or_never() {
        return Some(next);
    }
    tokio::task::yield_now().await;
    stream.next().now_or_never()
}

/// The event-stream parser of the HTML standard: lines end with CRLF, LF or CR; a blank line
/// dispatches the event; `:` starts a comment; `id` and `retry` are not used by the gateway.
/// Lines and events are bounded: past a limit, feeding fails.
#[derive(Default)]
struct Parser {
    max_line: usize,
    max_event: usize,
    /// Bytes not yet split into lines.
    pending: BytesMut,
    name: String,
    data: Data,
    /// Dispatched events not yet taken, and the body bytes fed since the last take.
    ready: Vec<Event>,
    batched: usize,
}

#[derive(Default)]
enum Data {
    #[default]
    None,
    /// A single `data:` line, still a slice of the body.
    One(Bytes),
    Joined(BytesMut),
}

impl Parser {
    fn new(max_line: usize, max_event: usize) -> Parser {
        Parser { max_line, max_event, ..Parser::default() }
    }

    fn feed(&mut self, bytes: &[u8]) -> Result<(), UpstreamError> {
        self.batched += bytes.len();
        self.pending.extend_from_slice(bytes);
        while let Some(end) = memchr::memchr2(b'\n', b'\r', &self.pending) {
            // A CR at the end may be the first half of a CRLF still on its way.
            if self.pending[end] == b'\r' && end + 1 == self.pending.len() {
                break;
            }
            if end > self.max_line {
                return Err(UpstreamError::TooLarge { what: "stream line", limit: self.max_line });
            }
            let line = self.pending.split_to(end).freeze();
            let crlf = self.pending.starts_with(b"\r\n");
            self.pending.advance(if crlf { 2 } else { 1 });
            self.line(line);
            if self.data.len() > self.max_event {
                return Err(UpstreamError::TooLarge { what: "stream event", limit: self.max_event });
            }
        }
        if self.pending.len() > self.max_line {
            return Err(UpstreamError::TooLarge { what: "stream line", limit: self.max_line });
        }
        Ok(())
    }

    /// The events dispatched so far.
    fn take(&mut self) -> Vec<Event> {
        self.batched = 0;
        std::mem::take(&mut self.ready)
    }

    fn line(&mut self, line: Bytes) {
        if line.is_empty() {
            self.dispatch();
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match memchr::memchr(b':', &line) {
            Some(colon) => {
                let start = if line.get(colon + 1) == Some(&b' ') { colon + 2 } else { colon + 1 };
                (&line[..colon], line.slice(start..))
            }
            None => (&line[..], Bytes::new()),
        };
        match field {
            b"data" => self.data.push(value),
            b"event" => self.name = String::from_utf8_lossy(&value).into_owned(),
            _ => {}
        }
    }

    /// Ends the event the fields so far make; per the standard, one without data is dropped.
    fn dispatch(&mut self) {
        let name = std::mem::take(&mut self.name);
        let data = match std::mem::take(&mut self.data) {
            Data::None => return,
            Data::One(data) => data,
            Data::Joined(data) => data.freeze(),
        };
        self.ready.push(Event { name, data });
    }

    /// At the end of the body. An event whose blank line never came is still dispatched, since
    /// some servers end their last event with the connection.
    fn finish(mut self) -> Vec<Event> {
        let mut rest = std::mem::take(&mut self.pending).freeze();
        if rest.last() == Some(&b'\r') {
            rest.truncate(rest.len() - 1);
        }
        if !rest.is_empty() {
            self.line(rest);
        }
        self.dispatch();
        self.ready
    }
}

impl Data {
    fn len(&self) -> usize {
        match self {
            Data::None => 0,
            Data::One(data) => data.len(),
            Data::Joined(data) => data.len(),
        }
    }

    fn push(&mut self, line: Bytes) {
        let mut joined = match std::mem::take(self) {
            Data::None => {
                *self = Data::One(line);
                return;
            }
            Data::One(first) => BytesMut::from(&first[..]),
            Data::Joined(joined) => joined,
        };
        joined.extend_from_slice(b"\n");
        joined.extend_from_slice(&line);
        *self = Data::Joined(joined);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pieces: &[&[u8]]) -> Vec<(String, String)> {
        let mut parser = Parser::new(1024, 4096);
        for piece in pieces {
            parser.feed(piece).unwrap();
        }
        parser.finish().into_iter().map(|e| (e.name, String::from_utf8(e.data.to_vec()).unwrap())).collect()
    }

    fn data(text: &str) -> (String, String) {
        (String::new(), text.to_owned())
    }

    #[test]
    fn frames_split_on_blank_lines_with_any_line_ending() {
        let expected = vec![data("{\"a\":1}"), data("[DONE]")];
        assert_eq!(parse(&[b"data: {\"a\":1}\n\ndata: [DONE]\n\n"]), expected);
        assert_eq!(parse(&[b"data: {\"a\":1}\r\n\r\ndata: [DONE]\r\n\r\n"]), expected);
        assert_eq!(parse(&[b"data: {\"a\":1}\r\rdata: [DONE]\r\r"]), expected);
    }

    #[test]
    fn a_frame_may_arrive_in_any_pieces() {
        let text = b"event: message_start\r\ndata: {\"x\":\"y\"}\r\n\r\n";
        for cut in 1..text.len() {
            let (head, tail) = text.split_at(cut);
            assert_eq!(
                parse(&[head, tail]),
                vec![("message_start".into(), "{\"x\":\"y\"}".into())],
                "cut {cut}"
            );
        }
    }

    #[test]
    fn comments_ids_and_empty_events_are_skipped_and_data_lines_joined() {
        let text = b": keep-alive\n\nid: 7\nretry: 10\n\ndata:first\ndata: second\n\nevent: ping\n\n";
        assert_eq!(parse(&[text]), vec![data("first\nsecond")]);
    }

    #[test]
    fn an_unterminated_last_event_is_still_dispatched() {
        assert_eq!(parse(&[b"data: {\"a\":1}\n\ndata: [DONE]"]), vec![data("{\"a\":1}"), data("[DONE]")]);
        assert_eq!(parse(&[b"data: [DONE]\r"]), vec![data("[DONE]")]);
        assert_eq!(parse(&[b"data: [DONE]\n"]), vec![data("[DONE]")]);
    }

    #[test]
    fn lines_and_events_past_their_limits_fail_without_being_buffered() {
        let mut parser = Parser::new(16, 32);
        assert!(parser.feed(b"data: 0123456789\n").is_ok());
        let error = parser.feed(b"data: 0123456789abcdef").unwrap_err();
        assert_eq!(error.to_string(), "the upstream's stream line exceeds the route's limit of 16 bytes");

        // Data lines without the blank line that ends an event: the event grows until its limit.
        let mut parser = Parser::new(16, 32);
        let results: Vec<bool> = (0..5).map(|_| parser.feed(b"data: 0123456789\n").is_ok()).collect();
        assert_eq!(results, [true, true, true, false, false], "10, 21, 32, then 43 bytes of data");

        // A line with no end at all fails once it is longer than a line may be.
        let mut parser = Parser::new(16, 32);
        assert!(parser.feed(&[b'x'; 17]).is_err());
    }
}
