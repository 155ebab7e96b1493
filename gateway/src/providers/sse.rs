//! Server-sent events read from an upstream's streamed response.
//!
//! Two things make this the hot path of every stream. hyper hands a body over one transfer chunk
//! at a time, so the frames of a burst that came in one socket read would reach the client one
//! write (and one wake-up of the client) each: the reader takes every chunk that is already
//! readable before it hands events on. And each `data` field stays a slice of the bytes that
//! carried it, so an OpenAI chunk can be relayed as it came (see [`super::Chunk`]).

use bytes::{Buf, Bytes, BytesMut};
use futures::{FutureExt, Stream, StreamExt};

use super::client::ResponseBody;
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
    body: ResponseBody,
    call: &Call,
) -> impl Stream<Item = Result<Event, UpstreamError>> + Send + use<> {
    let (_, _, max_event, max_line) = call.limits.bytes();
    let timeout = call.timeout;
    async_stream::stream! {
        let mut body = body;
        let mut parser = Parser::new(max_line, max_event);
        let mut next = body.next().await;
        while let Some(piece) = next {
            let fed = match piece {
                Ok(piece) => parser.feed(&piece),
                Err(error) => Err(UpstreamError::from_http(error, timeout)),
            };
            if let Err(error) = fed {
                for event in parser.take() {
                    yield Ok(event);
                }
                yield Err(error);
                return;
            }
            // What is readable already joins this batch: the body drives its own connection
            // ([`super::client`]), so what the socket holds is read in this poll.
            let ready = if parser.batched < MAX_BATCH_BYTES { body.next().now_or_never() } else { None };
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
        // A CR held back above ends its line: it is no part of the line's length.
        let held_cr = usize::from(self.pending.last() == Some(&b'\r'));
        if self.pending.len() - held_cr > self.max_line {
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

        // A line of the most bytes a line may have, whose CRLF comes in two pieces (found by
        // `fuzz_pieces_parse_like_the_whole`: the CR held back for its LF counted as a 17th byte).
        let mut parser = Parser::new(16, 32);
        assert!(parser.feed(b"data: 0123456789\r").is_ok());
        assert!(parser.feed(b"\n\n").is_ok());
        assert_eq!(parser.take()[0].data, "0123456789");
    }

    /// Input generation shared by the fuzz targets.
    #[allow(dead_code)]
    mod fuzz_json {
        include!("../translate/anthropic/tests/fuzz_json.rs");
    }

    use bolero::{Driver, TypeGenerator};
    use fuzz_json::{Text, below, one_in, pick, raw_input};

    /// Real streams (the target's corpus), which generated bodies start from.
    const STREAMS: [&[u8]; 4] = [
        include_bytes!(
            "__fuzz__/providers__sse__tests__pieces_parse_like_the_whole/corpus/openai-stream.txt"
        ),
        include_bytes!(
            "__fuzz__/providers__sse__tests__pieces_parse_like_the_whole/corpus/openai-tool-call-crlf.txt"
        ),
        include_bytes!(
            "__fuzz__/providers__sse__tests__pieces_parse_like_the_whole/corpus/anthropic-stream.txt"
        ),
        include_bytes!(
            "__fuzz__/providers__sse__tests__pieces_parse_like_the_whole/corpus/anthropic-thinking-error.txt"
        ),
    ];

    /// What event streams are made of.
    #[rustfmt::skip]
    const TOKENS: [&[u8]; 20] = [
        b"data:", b"data: ", b"event:", b"event: message_start", b": keep-alive", b"id: 7", b"retry: 10",
        b"\n", b"\r", b"\r\n", b"\n\n", b"\r\n\r\n", b"\r\r", b"{\"a\":1}", b"[DONE]", b"x", b":", b" ",
        b"data", b"\xff",
    ];

    /// The small limits the target uses, so that lines and events reach them.
    const LIMITS: [(usize, usize); 2] = [(64, 256), (1024, 4096)];

    /// A body and the lengths of the pieces it arrives in (the rest comes as one last piece).
    #[derive(Debug)]
    struct Body {
        text: Text,
        pieces: Vec<usize>,
    }

    impl TypeGenerator for Body {
        fn generate<D: Driver>(d: &mut D) -> Option<Body> {
            // A corpus file (or a fuzzer's input) is the body as it is, cut where its bytes say.
            if let Some(text) = raw_input(d, |bytes| !bytes.is_empty()) {
                let mut state = text.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                    (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
                });
                let pieces = (0..text.len() / 8 + 1)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        (state % 40) as usize
                    })
                    .collect();
                return Some(Body { text: Text(text), pieces });
            }
            let mut text = if one_in(d, 3)? { Vec::new() } else { pick(d, &STREAMS)?.to_vec() };
            for _ in 0..below(d, 40)? {
                let at = below(d, text.len() + 1)?;
                match below(d, 6)? {
                    // A line or event near a limit.
                    0 => {
                        let (line, event) = *pick(d, &LIMITS)?;
                        let len =
                            *pick(d, &[line - 7, line - 6, line - 1, line, line + 1, event - 1, event])?;
                        let mut run = b"data: ".to_vec();
                        run.resize(len, b'x');
                        run.extend_from_slice(pick(d, &[&b"\n"[..], b"\r", b"\r\n", b""])?);
                        text.splice(at..at, run);
                    }
                    1 => text.insert(at, d.gen_u8(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)?),
                    2 => {
                        let end = (at + below(d, 64)?).min(text.len());
                        text.drain(at..end);
                    }
                    _ => {
                        let token = pick(d, &TOKENS)?;
                        text.splice(at..at, token.iter().copied());
                    }
                }
            }
            let pieces = (0..below(d, 32)?).map(|_| below(d, 80)).collect::<Option<_>>()?;
            Some(Body { text: Text(text), pieces })
        }
    }

    /// The events and how it ended.
    type Outcome = (Vec<(String, Vec<u8>)>, Result<(), String>);

    /// Feeds `pieces` one at a time, taking the events after each, and checks the parser's bounds
    /// after each piece it accepted.
    fn run<'a>(pieces: impl Iterator<Item = &'a [u8]>, (max_line, max_event): (usize, usize)) -> Outcome {
        let mut parser = Parser::new(max_line, max_event);
        let mut events = Vec::new();
        for piece in pieces {
            let fed = parser.feed(piece);
            events.extend(parser.take().into_iter().map(|e| (e.name, e.data.to_vec())));
            if let Err(error) = fed {
                return (events, Err(error.to_string()));
            }
            // At most a line, and the CR held back in case an LF follows.
            let held_cr = usize::from(parser.pending.last() == Some(&b'\r'));
            assert!(parser.pending.len() - held_cr <= max_line, "{} bytes pending", parser.pending.len());
            assert!(parser.data.len() <= max_event, "{} bytes of data, limit {max_event}", parser.data.len());
        }
        events.extend(parser.finish().into_iter().map(|e| (e.name, e.data.to_vec())));
        (events, Ok(()))
    }

    /// `text` in pieces of `lengths`, then the rest.
    fn cut<'a>(text: &'a [u8], lengths: &[usize]) -> Vec<&'a [u8]> {
        let mut pieces = Vec::new();
        let mut rest = text;
        for len in lengths {
            let (piece, tail) = rest.split_at((*len).min(rest.len()));
            pieces.push(piece);
            rest = tail;
        }
        pieces.push(rest);
        pieces
    }

    /// Fails, saying where, unless `got` is `want`.
    fn assert_same(got: &Outcome, want: &Outcome, how: &str) {
        if got == want {
            return;
        }
        let show = |event: Option<&(String, Vec<u8>)>| {
            event.map(|(name, data)| {
                format!("{name:?}: {} bytes, b\"{}\"", data.len(), data[..data.len().min(200)].escape_ascii())
            })
        };
        let at = got.0.iter().zip(&want.0).take_while(|(a, b)| a == b).count();
        panic!(
            "{how}: {} events then {:?}; at once: {} events then {:?}; first difference at event {at}: {:?} / {:?}",
            got.0.len(),
            got.1,
            want.0.len(),
            want.1,
            show(got.0.get(at)),
            show(want.0.get(at)),
        );
    }

    /// Fuzz target: a body gives the same events, and the same end (done, or which limit it
    /// passed), whether it comes at once, in any pieces or byte by byte; after each piece the
    /// parser holds at most a line (and a CR that may start a CRLF) and an event's data.
    #[test]
    fn fuzz_pieces_parse_like_the_whole() {
        bolero::check!().with_type::<Body>().with_test_time(std::time::Duration::from_secs(2)).for_each(
            |body| {
                let text = &body.text.0[..];
                for limits in LIMITS {
                    let whole = run(std::iter::once(text), limits);
                    let pieces = run(cut(text, &body.pieces).into_iter(), limits);
                    assert_same(&pieces, &whole, &format!("in pieces {:?}, limits {limits:?}", body.pieces));
                    assert_same(
                        &run(text.chunks(1), limits),
                        &whole,
                        &format!("byte by byte, limits {limits:?}"),
                    );
                    for (name, data) in &whole.0 {
                        assert!(data.len() <= limits.1 && name.len() <= limits.0, "an event past the limits");
                        assert!(
                            !data.contains(&b'\r') && !name.contains(['\r', '\n']),
                            "a line end in an event"
                        );
                    }
                }
            },
        );
    }
}
