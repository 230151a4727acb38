//! What the relay and the gateway both check of a request before its body is
//! theirs: its media type, and a body read within a size and a time limit.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Body;

/// Whether the request's `Content-Type` is `media` (parameters ignored).
pub fn has_media_type<B>(req: &Request<B>, media: &str) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| mimi_proto::oblivious::media_type_is(v, media))
}

/// A request body the servers read: hyper's `Incoming`, or any body of
/// `Bytes` an embedder or a test hands in. Named once, so that every
/// handler generic over the body says `B: RequestBody` and no more.
pub trait RequestBody: Body<Data = Bytes, Error = Self::ReadError> + Send {
    /// The body's error (its `Body::Error`).
    type ReadError: Into<Box<dyn std::error::Error + Send + Sync>>;
}

impl<B, E> RequestBody for B
where
    B: Body<Data = Bytes, Error = E> + Send,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type ReadError = E;
}

/// Why a body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRefusal {
    /// Larger than the limit (declared or sent).
    TooLarge,
    /// Not all there within the time limit.
    TimedOut,
    /// The connection failed while it was read.
    Broken,
}

/// The request's body, at most `max` bytes within `timeout`: a declared
/// length over the limit is refused before anything is read.
pub async fn read_body<B: RequestBody>(
    req: Request<B>,
    max: usize,
    timeout: Duration,
) -> Result<Bytes, BodyRefusal> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(BodyRefusal::TooLarge);
    }
    let limited = Limited::new(req.into_body(), max);
    match tokio::time::timeout(timeout, limited.collect()).await {
        Err(_) => Err(BodyRefusal::TimedOut),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(BodyRefusal::TooLarge),
        Ok(Err(_)) => Err(BodyRefusal::Broken),
        Ok(Ok(c)) => Ok(c.to_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;

    fn req(ct: &str, body: &'static [u8]) -> Request<Full<Bytes>> {
        Request::builder()
            .header(CONTENT_TYPE, ct)
            .body(Full::new(Bytes::from_static(body)))
            .unwrap()
    }

    #[tokio::test]
    async fn media_types_and_bounded_bodies() {
        assert!(has_media_type(
            &req("Message/OHTTP-req; x=1", b""),
            "message/ohttp-req"
        ));
        assert!(!has_media_type(
            &req("message/ohttp-reqs", b""),
            "message/ohttp-req"
        ));
        let t = Duration::from_secs(1);
        assert_eq!(
            read_body(req("a/b", b"abc"), 3, t).await.unwrap(),
            &b"abc"[..]
        );
        assert_eq!(
            read_body(req("a/b", b"abcd"), 3, t).await,
            Err(BodyRefusal::TooLarge)
        );
    }
}
