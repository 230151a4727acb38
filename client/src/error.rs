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

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
