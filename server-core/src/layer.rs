//! A layer around a server's own handling of each request: how the testbed
//! records what every party received and sent, and plays a hostile relay or
//! issuer, on the very `run` the binaries call. Production has none.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;

/// A response on its way.
pub type Handled = Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>>;

/// The server's own handling of one request (its body already read by the
/// layer).
pub type Next = Box<dyn FnOnce(Request<Full<Bytes>>) -> Handled + Send>;

/// Wraps each request: it gets the request as received, the peer, and the
/// server's own handling, and answers.
pub type Layer = Arc<dyn Fn(Request<Incoming>, SocketAddr, Next) -> Handled + Send + Sync>;

/// Answers `req` with `own`, through `layer` when there is one.
pub async fn answer<F, Fut, G, GFut>(
    layer: Option<Layer>,
    req: Request<Incoming>,
    peer: SocketAddr,
    own: F,
    own_layered: G,
) -> Response<Full<Bytes>>
where
    F: FnOnce(Request<Incoming>) -> Fut,
    Fut: Future<Output = Response<Full<Bytes>>>,
    G: FnOnce(Request<Full<Bytes>>) -> GFut + Send + 'static,
    GFut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    match layer {
        None => own(req).await,
        Some(layer) => {
            let next: Next = Box::new(move |r| Box::pin(own_layered(r)));
            layer(req, peer, next).await
        }
    }
}
