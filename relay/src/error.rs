//! The relay's one error type, and its mapping to HTTP status.

use http::StatusCode;

/// Everything the relay can refuse or fail at.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- refused requests ----
    /// The path is not `/gateway/<host>`, or `<host>` is not allowed.
    #[error("unknown gateway")]
    UnknownGateway,
    /// The method is not GET or POST.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// `POST` without `Content-Type: message/ohttp-req`.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// `POST` without a body.
    #[error("missing body")]
    EmptyBody,
    /// The body is larger than the limit.
    #[error("request body too large")]
    BodyTooLarge,
    /// The client took too long to send its body.
    #[error("request body timed out")]
    BodyTimeout,
    /// The client is over its rate; retry after this many seconds.
    #[error("rate limited")]
    RateLimited(u64),
    /// The relay is at its concurrency limit.
    #[error("relay busy")]
    Busy,
    /// `CONNECT` to anything but an allowlisted gateway.
    #[error("CONNECT is served only to the gateways this relay serves")]
    TunnelForbidden,
    /// The client (or the relay) holds as many tunnels as allowed.
    #[error("too many tunnels open")]
    TunnelLimit,

    // ---- the gateway's side ----
    /// The gateway could not be reached (refused, reset, TLS failed).
    #[error("the gateway could not be reached")]
    GatewayUnreachable,
    /// The gateway answered, but not with something the relay can pass on
    /// (a key list that is not one, an error, a body cut short or too
    /// large). What it said is not repeated.
    #[error("the gateway's answer was not usable")]
    GatewayBadAnswer,
    /// The gateway did not answer in time.
    #[error("the gateway did not answer in time")]
    GatewayTimeout,
    /// The issuer refused this relay's token requests (it does not list the
    /// relay as an attester, or the relay is over its budget there).
    #[error("the issuer refused the token request (HTTP {0})")]
    IssuerRefused(u16),

    // ---- the attester's clients ----
    /// A token request without a credential, where anonymous clients get none.
    #[error("a credential is required: this relay gives anonymous clients no tokens")]
    CredentialRequired,
    /// A bearer credential that does not verify.
    #[error("the credential is not valid")]
    CredentialInvalid,
    /// A token request that does not parse.
    #[error("malformed token request")]
    TokenRequestMalformed,
    /// The client's token quota is used up until its window ends (seconds).
    #[error("token quota reached")]
    QuotaReached(u64),
    // ---- operator errors ----
    /// Configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// Setting up the server (connections, TLS, listeners) failed.
    #[error(transparent)]
    Server(#[from] mimi_server_core::Error),
}

impl Error {
    /// The HTTP status for this error: the one place that decides it.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnknownGateway => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::EmptyBody => StatusCode::BAD_REQUEST,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::RateLimited(_) | Self::QuotaReached(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::CredentialRequired | Self::CredentialInvalid => StatusCode::UNAUTHORIZED,
            Self::TokenRequestMalformed => StatusCode::BAD_REQUEST,
            Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::TunnelForbidden => StatusCode::FORBIDDEN,
            Self::TunnelLimit => StatusCode::TOO_MANY_REQUESTS,
            Self::GatewayUnreachable | Self::GatewayBadAnswer | Self::IssuerRefused(_) => {
                StatusCode::BAD_GATEWAY
            }
            Self::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Config(_) | Self::Server(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `Retry-After` seconds to send, if any.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited(secs) | Self::QuotaReached(secs) => Some(*secs),
            Self::Busy | Self::TunnelLimit => Some(1),
            _ => None,
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
