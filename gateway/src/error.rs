//! The gateway's one error type, and its mapping to HTTP status.

use http::StatusCode;

use crate::outcome::Outcome;
use mimi_proto::oblivious::{Problem, ProblemType};

/// Everything the gateway can refuse or fail at.
///
/// The first group is answered in the clear, before decryption (DESIGN §4);
/// the second travels encrypted inside an outer 200; the third are operator
/// errors (configuration, key file, database) that never reach a client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- before decryption: plain answers ----
    /// The path is not one this gateway serves.
    #[error("not found")]
    NotFound,
    /// The method is not allowed on this resource.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// `POST` without `Content-Type: message/ohttp-req`.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// The body is larger than the configured limit.
    #[error("request body too large")]
    BodyTooLarge,
    /// The client took too long to send its body.
    #[error("request body timed out")]
    BodyTimeout,
    /// The encapsulated request is malformed (too short, bad header).
    #[error("malformed encapsulated request")]
    MalformedEncapsulation,
    /// Unknown key id, unsupported suite or failed decryption (RFC 9458 §5.3).
    #[error("key identifier unknown or decryption failed")]
    KeyRejected,

    // ---- after decryption: encrypted answers ----
    /// The inner Binary HTTP message is malformed.
    #[error("malformed Binary HTTP request")]
    InnerMalformed,
    /// The inner `Date` is missing or outside the window (RFC 9458 §6.5).
    #[error("date outside the accepted window")]
    StaleDate,
    /// Dated at or before the moment the shared replay store began
    /// remembering (Unix seconds given): like [`Error::StaleDate`], but the
    /// client's retry must be dated after that second.
    #[error("date outside the accepted window")]
    DatedBeforeReplayStore(i64),
    /// This encapsulated request was seen before inside the window.
    #[error("replayed request")]
    Replay,
    /// The inner request targets an origin this gateway does not serve.
    #[error("target origin not served here")]
    ForeignOrigin,
    /// The inner request's path is not served.
    #[error("inner resource not found")]
    InnerNotFound,
    /// identifierQuery without a token, where tokens are required.
    #[error("a token is required")]
    TokenMissing,
    /// A token that does not verify, names another challenge, or a key that
    /// no longer verifies.
    #[error("the token is not valid")]
    TokenInvalid,
    /// A token spent before.
    #[error("the token was spent already")]
    TokenSpent,
    /// The spent-token store did not answer: refused, like the replay store.
    #[error("token store unavailable; retry shortly")]
    TokenStoreUnavailable,
    /// A token request without a configured attester's certificate.
    #[error("not an attester this issuer serves")]
    AttesterUnknown,
    /// An attester over its budget (seconds until its window ends).
    #[error("the attester's token budget is spent")]
    AttesterOverBudget(u64),
    /// A token request that does not parse.
    #[error("malformed token request")]
    TokenRequestMalformed,
    /// A token request for a key this issuer does not publish.
    #[error("token key unknown")]
    TokenKeyUnknown,
    /// The inner request's method is not allowed on its path.
    #[error("inner method not allowed")]
    InnerMethodNotAllowed,
    /// The `IdentifierRequest` (or DNS query) did not decode.
    #[error("malformed query")]
    MalformedQuery,
    /// The upstream discovery API or DNS resolver failed.
    #[error("upstream unavailable")]
    UpstreamUnavailable,
    /// The upstream discovery API or DNS resolver did not answer in time.
    #[error("upstream timed out")]
    UpstreamTimeout,
    /// Replay protection cannot vouch for the request (the cache holds all
    /// it may, every entry inside the window): refused, never let through.
    #[error("replay protection unavailable; retry shortly")]
    ReplayUnavailable,
    /// The gateway could not serve the request for a reason of its own.
    #[error("internal error")]
    Internal,

    // ---- operator errors ----
    /// Reading or writing the key file failed.
    #[error("key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The key file is not in the documented format.
    #[error("key file {path} is malformed: {reason}")]
    KeyFileFormat {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// All 256 key ids are in use by unexpired keys.
    #[error("no free key id: expire old keys first")]
    NoFreeKeyId,
    /// The directory database failed.
    #[error("directory database: {0}")]
    Database(#[from] rusqlite::Error),
    /// The PostgreSQL directory failed a query.
    #[error("directory database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// The directory's store cannot be reached (pool, connection, timeout):
    /// the request gets an encrypted 503.
    #[error("directory unavailable: {0}")]
    DirectoryUnavailable(String),
    /// The shared replay store (Redis) did not answer a check.
    #[error("replay store: {0}")]
    ReplayStore(String),
    /// A directory entry given to the admin CLI is invalid.
    #[error("invalid directory entry: {0}")]
    InvalidEntry(String),
    /// The configuration is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// A socket operation failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Setting up the server (connections, TLS, listeners) failed.
    #[error(transparent)]
    Server(#[from] mimi_server_core::Error),
}

impl Error {
    /// The HTTP status for this error: the one place that decides it.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound | Self::InnerNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed | Self::InnerMethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::MalformedEncapsulation
            | Self::InnerMalformed
            | Self::StaleDate
            | Self::DatedBeforeReplayStore(_)
            | Self::Replay
            | Self::MalformedQuery => StatusCode::BAD_REQUEST,
            Self::KeyRejected => StatusCode::UNPROCESSABLE_ENTITY,
            Self::ForeignOrigin | Self::AttesterUnknown => StatusCode::FORBIDDEN,
            Self::TokenMissing | Self::TokenInvalid | Self::TokenSpent => StatusCode::UNAUTHORIZED,
            Self::AttesterOverBudget(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::TokenRequestMalformed => StatusCode::BAD_REQUEST,
            Self::TokenKeyUnknown => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TokenStoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::ReplayUnavailable | Self::DirectoryUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem details body, where the error has one (RFC 9457). Texts
    /// are fixed: no internal detail reaches the network.
    pub fn problem(&self) -> Option<Problem> {
        match self {
            Self::KeyRejected => Some(Problem::of(ProblemType::OhttpKey)),
            Self::StaleDate | Self::DatedBeforeReplayStore(_) => {
                Some(Problem::of(ProblemType::Date))
            }
            Self::NotFound
            | Self::MethodNotAllowed
            | Self::UnsupportedMediaType
            | Self::BodyTooLarge
            | Self::BodyTimeout
            | Self::MalformedEncapsulation
            | Self::InnerMalformed
            | Self::Replay
            | Self::ForeignOrigin
            | Self::InnerNotFound
            | Self::InnerMethodNotAllowed
            | Self::MalformedQuery
            | Self::UpstreamUnavailable
            | Self::UpstreamTimeout
            | Self::ReplayUnavailable
            | Self::TokenMissing
            | Self::TokenInvalid
            | Self::TokenSpent
            | Self::TokenStoreUnavailable
            | Self::AttesterUnknown
            | Self::AttesterOverBudget(_)
            | Self::TokenRequestMalformed
            | Self::TokenKeyUnknown
            | Self::Internal => Some(Problem::blank(&self.to_string())),
            // Fixed text: what failed inside stays in the operator's log.
            Self::DirectoryUnavailable(_) => {
                Some(Problem::blank("directory unavailable; retry shortly"))
            }
            _ => None,
        }
    }

    /// A short stable name for metrics labels.
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::NotFound => Outcome::NotFound,
            Self::MethodNotAllowed => Outcome::MethodNotAllowed,
            Self::UnsupportedMediaType => Outcome::UnsupportedMediaType,
            Self::BodyTooLarge => Outcome::BodyTooLarge,
            Self::BodyTimeout => Outcome::BodyTimeout,
            Self::MalformedEncapsulation => Outcome::MalformedEncapsulation,
            Self::KeyRejected => Outcome::KeyRejected,
            Self::InnerMalformed => Outcome::InnerMalformed,
            Self::StaleDate | Self::DatedBeforeReplayStore(_) => Outcome::StaleDate,
            Self::Replay => Outcome::Replay,
            Self::ForeignOrigin => Outcome::ForeignOrigin,
            Self::InnerNotFound => Outcome::InnerNotFound,
            Self::InnerMethodNotAllowed => Outcome::InnerMethodNotAllowed,
            Self::MalformedQuery => Outcome::MalformedQuery,
            Self::UpstreamUnavailable => Outcome::UpstreamUnavailable,
            Self::UpstreamTimeout => Outcome::UpstreamTimeout,
            Self::ReplayUnavailable => Outcome::ReplayUnavailable,
            Self::DirectoryUnavailable(_) => Outcome::DirectoryUnavailable,
            Self::TokenMissing => Outcome::TokenMissing,
            Self::TokenInvalid => Outcome::TokenInvalid,
            Self::TokenSpent => Outcome::TokenSpent,
            Self::TokenStoreUnavailable => Outcome::TokenStoreUnavailable,
            Self::AttesterUnknown => Outcome::AttesterUnknown,
            Self::AttesterOverBudget(_) => Outcome::AttesterOverBudget,
            Self::TokenRequestMalformed => Outcome::TokenRequestMalformed,
            Self::TokenKeyUnknown => Outcome::TokenKeyUnknown,
            _ => Outcome::Internal,
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
