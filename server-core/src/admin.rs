//! The admin listener: `/healthz` and `/metrics`, on its own address with its
//! own connection budget, so that a flood on the main listener never takes
//! away the operator's view.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::net::TcpListener;

use crate::limits::ConnectionLimits;
use crate::serve::{ConnectionStats, serve};

/// Serves `/healthz` ("ok") and `/metrics` (what `metrics` renders, in the
/// OpenMetrics text format: [`crate::metrics`]) on `listener` until
/// `shutdown`.
pub async fn serve_admin<M>(listener: TcpListener, metrics: M, shutdown: impl Future<Output = ()>)
where
    M: Fn() -> String + Send + Sync + 'static,
{
    let metrics = Arc::new(metrics);
    let handler = move |req: Request<Incoming>, _peer: SocketAddr| {
        let metrics = metrics.clone();
        async move {
            match req.uri().path() {
                "/metrics" => plain(
                    StatusCode::OK,
                    crate::metrics::CONTENT_TYPE,
                    Bytes::from(metrics()),
                ),
                "/healthz" => plain(StatusCode::OK, "text/plain", Bytes::from_static(b"ok\n")),
                _ => plain(
                    StatusCode::NOT_FOUND,
                    "text/plain",
                    Bytes::from_static(b"not found: try /healthz or /metrics\n"),
                ),
            }
        }
    };
    let stats = Arc::new(ConnectionStats::default());
    serve(
        listener,
        None,
        ConnectionLimits::admin(),
        stats,
        handler,
        shutdown,
    )
    .await;
}

fn plain(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}
