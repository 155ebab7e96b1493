//! The request in each upstream wire format, serialised once per format and reused by every
//! attempt on a backend of that format.

use bytes::Bytes;

use crate::payload::Payload;
use crate::providers::{UpstreamError, WireFormat};

/// The request in the wire formats of the backends tried so far: made once per format (and
/// stream setting), the same bytes for every attempt.
#[derive(Default)]
pub(super) struct Encoded(Vec<(WireFormat, bool, Bytes)>);

impl Encoded {
    pub(super) fn body(
        &mut self,
        format: WireFormat,
        request: Payload<'_>,
        model: &str,
        stream: bool,
    ) -> Result<Bytes, UpstreamError> {
        if let Some((.., body)) = self.0.iter().find(|(f, s, _)| *f == format && *s == stream) {
            return Ok(body.clone());
        }
        let body = crate::providers::encode(format, request, model, stream)?;
        self.0.push((format, stream, body.clone()));
        Ok(body)
    }
}
