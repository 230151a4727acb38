//! The client's one error type. Each variant's message is a sentence a user
//! understands; none contains the identifier, so messages can be logged.

/// Why a discovery, or one provider's part of it, failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- the caller's input ----
    /// The identifier is not a handle, email address or phone number.
    #[error("not a valid identifier: {0}")]
    InvalidIdentifier(mimi_proto::Error),
    /// The relay URL is not an `https://` URL.
    #[error("the relay URL is not a valid https:// URL: {0}")]
    InvalidRelayUrl(String),
    /// The relay URL is `http://` to another machine: anyone on the path
    /// could read and change what goes through it.
    #[error("the relay URL must be https:// (plain http:// is allowed only to this machine): {0}")]
    InsecureRelay(String),
    /// The configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),

    // ---- step 1: DNS ----
    /// The name exists but holds no `v=MIMI1` record.
    #[error("no MIMI record for this identifier: the person has not listed any provider")]
    NoMimiRecord,
    /// Every MIMI record at the name is malformed (the reasons follow).
    #[error("every MIMI record for this identifier is malformed: {0}")]
    OnlyInvalidRecords(String),
    /// The name does not exist in DNS.
    #[error("the name does not exist in DNS (NXDOMAIN): this identifier is not discoverable")]
    NameNotFound,
    /// DNS did not answer in time.
    #[error("DNS did not answer in time")]
    DnsTimeout,
    /// DNS answered with an error.
    #[error("the DNS lookup failed ({0})")]
    DnsFailed(String),
    /// The answer's DNSSEC signatures or chain of trust do not hold: it may
    /// be forged, and nothing was sent to any provider it names.
    #[error(
        "the DNS answer failed DNSSEC validation (it may be forged); nothing was sent to any provider"
    )]
    DnsBogus,
    /// The answer is not DNSSEC-signed and signed answers are required.
    #[error(
        "the DNS answer is not DNSSEC-signed, and signed answers are required; nothing was sent"
    )]
    DnsInsecure,

    // ---- step 2: the relay ----
    /// The relay could not be reached.
    #[error("could not reach the relay")]
    RelayUnreachable,
    /// The relay rate-limited us.
    #[error("the relay refused us: rate limited (retry in {0} s)")]
    RateLimited(u64),
    /// The relay does not serve this provider's gateway.
    #[error("the relay refused us: it does not serve this provider's gateway")]
    UnknownGateway,
    /// The relay refused the request for another reason.
    #[error("the relay refused the request (HTTP {0})")]
    RelayRefused(u16),
    /// The relay could not reach the provider's gateway, or it was too slow.
    #[error("the relay could not reach the provider's gateway (HTTP {0})")]
    GatewayUnreachable(u16),
    /// The whole exchange took longer than the configured timeout.
    #[error("the provider did not answer in time")]
    Timeout,

    /// The relay refused to open a tunnel to the provider's gateway, so its
    /// keys could not be checked: nothing was sent to it.
    #[error(
        "the relay refused to tunnel to the provider's gateway (HTTP {0}), so its keys could not be checked; nothing was sent to it"
    )]
    TunnelRefused(u16),
    /// The provider's keys could not be fetched over TLS from the gateway
    /// itself: nothing was sent to it.
    #[error(
        "could not fetch the provider's keys from its gateway over TLS ({0}); nothing was sent to it"
    )]
    TunnelFailed(String),
    /// The key the relay hands out is not one the gateway itself publishes:
    /// nothing was sent to that provider.
    #[error(
        "the relay's copy of the provider's keys does not match the keys the provider publishes; nothing was sent to it (the relay may be trying to read lookups, or a key rotation is misconfigured)"
    )]
    KeyInconsistent,

    // ---- step 2: the gateway ----
    /// The gateway published no key configuration we can use.
    #[error("the provider's gateway offers no key we can use")]
    NoUsableKey,
    /// The gateway kept refusing our key, even after a refresh.
    #[error("the gateway's keys did not match even after a refresh")]
    KeyMismatch,
    /// The gateway refused our clock, even after adjusting to its own.
    #[error("the gateway rejected the request's date even after adjusting to its clock")]
    DateRejected,
    /// The provider refused the query; the inner HTTP status says how.
    #[error("the provider refused the query (HTTP {0})")]
    ProviderRefused(u16),
    /// The provider does not support this kind of identifier.
    #[error("the provider does not support searching for this kind of identifier")]
    Unsupported,
    /// The provider will not answer this requester.
    #[error("the provider refused to answer (forbidden)")]
    Forbidden,
    /// The provider found more than one account and will not choose.
    #[error("the provider found more than one matching account (ambiguous)")]
    Ambiguous,
    /// Something in the answer did not decode.
    #[error("the provider's answer was malformed")]
    MalformedAnswer,

    // ---- step 2: lookup tokens (DESIGN §10) ----
    /// The relay's lookup quota for this account (or, without a credential,
    /// this address) is used up until its window ends.
    #[error(
        "your lookup quota at the relay is used up; it resets at {resets_at} (in {retry_after} s)"
    )]
    QuotaReached {
        /// Seconds until the quota resets, as the relay said.
        retry_after: u64,
        /// When that is, as an HTTP date.
        resets_at: String,
    },
    /// The provider answers only with lookup tokens, and the relay gives
    /// none without a credential.
    #[error(
        "this provider answers only with lookup tokens, and the relay gives none without a credential: pass --credential FILE (or set MIMI_CREDENTIAL)"
    )]
    NoCredential,
    /// The relay did not accept the credential.
    #[error("the relay did not accept your credential (expired, or from another service?)")]
    CredentialRejected,
    /// Tokens could not be obtained from the provider's issuer.
    #[error("could not obtain lookup tokens from the provider's issuer ({0})")]
    IssuerUnavailable(String),
    /// The provider asked for a token of another kind than the standard one
    /// (DESIGN §10): such a challenge could tell clients apart, so nothing
    /// more was sent.
    #[error(
        "the provider asked for a non-standard lookup token, which could tell clients apart; nothing more was sent to it"
    )]
    TokenChallengeRefused,
    /// The provider refused a fresh, valid token.
    #[error("the provider refused our lookup token even after a fresh one")]
    TokenRefused,

    // ---- step 2: signed mappings (DESIGN §11) ----
    /// Every account the provider named came with a signed mapping that
    /// proves it wrong (the reason follows): none is shown as found.
    #[error(
        "the provider named an account whose signed mapping is invalid ({0}); it is not shown as found"
    )]
    InvalidMapping(String),
    /// Verified accounts are required, and no account the provider named is
    /// signed by a trusted mapping authority.
    #[error(
        "no account this provider named is signed by a trusted mapping authority, and verified accounts are required ({0})"
    )]
    Unverified(String),
}

/// Declares [`ErrorCode`] with each variant's stable text once.
macro_rules! error_codes {
    ($($variant:ident => $code:literal,)*) => {
        /// A stable code for each kind of failure: the JSON `code`, the
        /// README's table, what programs match on.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $(
                #[doc = concat!("`", $code, "`")]
                $variant,
            )*
            /// `internal`: a task of the client's own died.
            Internal,
        }

        impl ErrorCode {
            /// The code as text.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)*
                    Self::Internal => "internal",
                }
            }
        }
    };
}

/// Calls `$callback! { Variant => "code", ... }` with every error code (but
/// `internal`), so that another crate (the bindings) can declare its own
/// enums over the same list without writing it again.
#[macro_export]
#[doc(hidden)]
macro_rules! for_each_error_code {
    ($callback:ident) => {
        $callback! {
            InvalidIdentifier => "invalid_identifier",
            InvalidRelayUrl => "invalid_relay_url",
            InsecureRelay => "insecure_relay",
            Config => "config",
            NoMimiRecord => "no_mimi_record",
            OnlyInvalidRecords => "only_invalid_records",
            NameNotFound => "name_not_found",
            DnsTimeout => "dns_timeout",
            DnsFailed => "dns_failed",
            DnsBogus => "dns_bogus",
            DnsInsecure => "dns_insecure",
            RelayUnreachable => "relay_unreachable",
            RateLimited => "rate_limited",
            UnknownGateway => "unknown_gateway",
            RelayRefused => "relay_refused",
            GatewayUnreachable => "gateway_unreachable",
            Timeout => "timeout",
            TunnelRefused => "tunnel_refused",
            TunnelFailed => "tunnel_failed",
            KeyInconsistent => "key_inconsistent",
            NoUsableKey => "no_usable_key",
            KeyMismatch => "key_mismatch",
            DateRejected => "date_rejected",
            ProviderRefused => "provider_refused",
            Unsupported => "unsupported",
            Forbidden => "forbidden",
            Ambiguous => "ambiguous",
            MalformedAnswer => "malformed_answer",
            QuotaReached => "quota_reached",
            NoCredential => "no_credential",
            CredentialRejected => "credential_rejected",
            IssuerUnavailable => "issuer_unavailable",
            TokenChallengeRefused => "token_challenge_refused",
            TokenRefused => "token_refused",
            InvalidMapping => "invalid_mapping",
            Unverified => "unverified",
        }
    };
}

crate::for_each_error_code!(error_codes);

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// So that programs (and tests) can compare a code with its text.
impl PartialEq<str> for ErrorCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl Error {
    /// This error's stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidIdentifier(_) => ErrorCode::InvalidIdentifier,
            Self::InvalidRelayUrl(_) => ErrorCode::InvalidRelayUrl,
            Self::InsecureRelay(_) => ErrorCode::InsecureRelay,
            Self::Config(_) => ErrorCode::Config,
            Self::NoMimiRecord => ErrorCode::NoMimiRecord,
            Self::OnlyInvalidRecords(_) => ErrorCode::OnlyInvalidRecords,
            Self::NameNotFound => ErrorCode::NameNotFound,
            Self::DnsTimeout => ErrorCode::DnsTimeout,
            Self::DnsFailed(_) => ErrorCode::DnsFailed,
            Self::DnsBogus => ErrorCode::DnsBogus,
            Self::DnsInsecure => ErrorCode::DnsInsecure,
            Self::RelayUnreachable => ErrorCode::RelayUnreachable,
            Self::RateLimited(_) => ErrorCode::RateLimited,
            Self::UnknownGateway => ErrorCode::UnknownGateway,
            Self::RelayRefused(_) => ErrorCode::RelayRefused,
            Self::GatewayUnreachable(_) => ErrorCode::GatewayUnreachable,
            Self::Timeout => ErrorCode::Timeout,
            Self::TunnelRefused(_) => ErrorCode::TunnelRefused,
            Self::TunnelFailed(_) => ErrorCode::TunnelFailed,
            Self::KeyInconsistent => ErrorCode::KeyInconsistent,
            Self::NoUsableKey => ErrorCode::NoUsableKey,
            Self::KeyMismatch => ErrorCode::KeyMismatch,
            Self::DateRejected => ErrorCode::DateRejected,
            Self::ProviderRefused(_) => ErrorCode::ProviderRefused,
            Self::Unsupported => ErrorCode::Unsupported,
            Self::Forbidden => ErrorCode::Forbidden,
            Self::Ambiguous => ErrorCode::Ambiguous,
            Self::MalformedAnswer => ErrorCode::MalformedAnswer,
            Self::QuotaReached { .. } => ErrorCode::QuotaReached,
            Self::NoCredential => ErrorCode::NoCredential,
            Self::CredentialRejected => ErrorCode::CredentialRejected,
            Self::IssuerUnavailable(_) => ErrorCode::IssuerUnavailable,
            Self::TokenChallengeRefused => ErrorCode::TokenChallengeRefused,
            Self::TokenRefused => ErrorCode::TokenRefused,
            Self::InvalidMapping(_) => ErrorCode::InvalidMapping,
            Self::Unverified(_) => ErrorCode::Unverified,
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
