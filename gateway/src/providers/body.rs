//! Upstream bodies read within the route's size limits, so that no upstream can make the
//! gateway hold more than the limit for one reply, however much it sends.

use bytes::{Bytes, BytesMut};

use super::UpstreamError;
use super::client::{ResponseBody, Sent};

/// The `content-length` the upstream announced, if it is a number.
fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers.get(http::header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// A whole reply body, or an error once it passes `limit` bytes (by its `content-length` before
/// anything is read, or while it is read). The pieces are kept as they came and joined once at
/// the end: a growing buffer would reallocate and copy on the way, holding up to twice the limit.
pub(super) async fn read_limited(
    response: Sent,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, UpstreamError> {
    let too_large = || UpstreamError::TooLarge { what: "reply body", limit };
    if content_length(&response.headers).is_some_and(|n| usize::try_from(n).map_or(true, |n| n > limit)) {
        return Err(too_large());
    }
    let mut body = response.body;
    let mut pieces: Vec<Bytes> = Vec::new();
    let mut length = 0usize;
    while let Some(piece) = body.chunk().await.map_err(|e| UpstreamError::from_http(e, timeout))? {
        length = length.saturating_add(piece.len());
        if length > limit {
            return Err(too_large());
        }
        pieces.push(piece);
    }
    if pieces.len() == 1 {
        return Ok(pieces.swap_remove(0));
    }
    let mut whole = BytesMut::with_capacity(length);
    for piece in pieces {
        whole.extend_from_slice(&piece);
    }
    Ok(whole.freeze())
}

/// The first `limit` bytes of an error body; the rest is never read (only the message is kept,
/// and it is cut far shorter). A body that fails midway keeps what came.
pub(super) async fn read_prefix(mut response: ResponseBody, limit: usize) -> Bytes {
    let mut body = BytesMut::new();
    while let Ok(Some(piece)) = response.chunk().await {
        let room = limit.saturating_sub(body.len());
        body.extend_from_slice(&piece[..piece.len().min(room)]);
        if body.len() >= limit {
            break;
        }
    }
    body.freeze()
}
