//! The one error type of this crate.

use std::fmt;

/// Everything that can go wrong while parsing or building a wire format.
///
/// Variants are grouped by the part of the design they belong to: identifiers
/// (DESIGN §2), DNS records (§3), the identifierQuery codec (§5) and the OHTTP
/// helpers (§4). "The peer sent garbage" variants (decode errors) are kept apart
/// from "the caller gave us something unusable" ones by name: the former start
/// with what was being decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- identifiers (§2) ----
    /// The identifier was empty (or only blanks).
    #[error("the identifier is empty")]
    EmptyIdentifier,
    /// IDNA (UTS 46) processing rejected the name.
    #[error("the name is not a valid internationalised domain name")]
    InvalidIdna,
    /// A name is longer than 253 octets once converted to A-labels.
    #[error("the name is longer than 253 octets")]
    NameTooLong,
    /// One label of a name is longer than 63 octets.
    #[error("a label of the name is longer than 63 octets")]
    LabelTooLong,
    /// A name has an empty label (`a..b`, a leading or trailing dot).
    #[error("the name has an empty label")]
    EmptyLabel,
    /// A MIMI handle must have at least two labels (`alice.example.com`).
    #[error("a handle needs at least two labels, like alice.example.com")]
    SingleLabelHandle,
    /// The local part of an email address is empty.
    #[error("the part of the email address before @ is empty")]
    EmptyLocalPart,
    /// The local part of an email address is longer than 64 octets.
    #[error("the part of the email address before @ is longer than 64 octets")]
    LocalPartTooLong,
    /// The local part holds a blank or a control character.
    #[error("the part of the email address before @ holds a blank or control character")]
    InvalidLocalPart,
    /// A phone number must start with `+` and its country code.
    #[error("a phone number must start with + and the country code")]
    PhoneMissingPlus,
    /// A phone number holds something other than digits and separators.
    #[error("a phone number may only hold digits, blanks, '-', '.', '(' and ')'")]
    PhoneInvalidCharacter,
    /// A phone number has fewer than 8 or more than 15 digits.
    #[error("a phone number must have 8 to 15 digits, it has {0}")]
    PhoneDigitCount(usize),

    // ---- DNS records (§3) ----
    /// A `v=MIMI1` TXT record that breaks a rule; the record is skipped.
    #[error("skipped MIMI record \"{text}\": {problem}")]
    InvalidRecord {
        /// The record as published (lossily decoded as UTF-8), for the user's warning.
        text: String,
        /// Which rule it breaks.
        problem: RecordProblem,
    },

    // ---- identifierQuery codec (§5) ----
    /// A decoder ran out of bytes before the structure was complete.
    #[error("{0}: truncated")]
    Truncated(&'static str),
    /// A decoder found bytes after the end of the structure.
    #[error("{0}: trailing bytes after the end")]
    TrailingBytes(&'static str),
    /// A variable-length integer used the reserved `0b11` prefix.
    #[error("variable-length integer with the reserved 0b11 prefix")]
    VarintReservedPrefix,
    /// A variable-length integer was not minimally encoded.
    #[error("variable-length integer not minimally encoded")]
    VarintNotMinimal,
    /// A vector is longer than a variable-length integer can say (2^30 - 1).
    #[error("vector too long to encode")]
    VectorTooLong,
    /// An enum field held a value this version does not know.
    #[error("{what}: unknown value {value}")]
    UnknownEnumValue {
        /// Which enum.
        what: &'static str,
        /// The value found.
        value: u8,
    },
    /// A `QueryElement` given a selector its type does not carry, or missing
    /// one it needs (`claimName` for oidcStdClaim, `propertyName` for vcardField).
    #[error("QueryElement: selector does not match the search type")]
    SelectorMismatch,
    /// A field that must be text (a URI) was not UTF-8.
    #[error("{0}: not UTF-8 text")]
    NotUtf8(&'static str),
    /// A MIMI URI did not have the form `mimi://<domain>/u/<account>`.
    #[error("not a MIMI account URI (mimi://<domain>/u/<account>)")]
    InvalidMimiUri,
    /// The directory document was not the JSON object expected.
    #[error("the MIMI directory document is malformed")]
    InvalidDirectory,

    /// A field holds a value this implementation does not accept (another
    /// token type, a batch of no or too many requests).
    #[error("{what}: unacceptable value {value}")]
    BadValue {
        /// Which field.
        what: &'static str,
        /// The value found.
        value: u64,
    },
    /// A field is too long (or too short) for its encoding.
    #[error("{0}: too long or too short to encode")]
    FieldTooLong(&'static str),

    // ---- Privacy Pass (§10) ----
    /// A token key that is not a 2048-bit RSASSA-PSS SHA-384 SPKI, or a
    /// request for a key this issuer does not hold.
    #[error("unusable token key")]
    InvalidTokenKey,
    /// A token whose signature does not verify under the key it names.
    #[error("the token's signature does not verify")]
    TokenInvalid,
    /// A `PrivateToken` authentication header that does not parse.
    #[error("malformed PrivateToken authentication header")]
    MalformedAuthHeader,
    /// An issuer directory that does not parse or lists no key.
    #[error("malformed issuer directory")]
    MalformedIssuerDirectory,

    // ---- Mapping assertions (§11) ----
    /// A `v=MIMIA1` TXT record that breaks a rule; the record is skipped.
    #[error("skipped mapping authority record \"{text}\": {problem}")]
    InvalidAuthorityRecord {
        /// The record as published (lossily decoded as UTF-8).
        text: String,
        /// Which rule it breaks.
        problem: RecordProblem,
    },
    /// An authority name that is not 1 to 64 of `a-z`, `0-9`, `.`, `-`.
    #[error("an authority name is 1 to 64 of a-z, 0-9, '.', '-'")]
    InvalidAuthorityName,
    /// A mapping assertion that does not decode, or cannot be signed.
    #[error("mapping assertion: {0}")]
    InvalidAssertion(&'static str),

    // ---- OHTTP helpers (§4) ----
    /// A key configuration list was malformed.
    #[error("malformed OHTTP key configuration list")]
    InvalidKeyConfigList,
    /// A key configuration list held no configuration this client supports.
    #[error("no supported OHTTP key configuration")]
    NoSupportedKeyConfig,
    /// A Binary HTTP message was malformed.
    #[error("malformed Binary HTTP message")]
    InvalidBinaryHttp,
    /// Bytes after a Binary HTTP message were not zero padding.
    #[error("non-zero bytes in Binary HTTP padding")]
    InvalidPadding,
    /// An HTTP `Date` value could not be parsed.
    #[error("malformed HTTP Date")]
    InvalidDate,
    /// A problem-details body (RFC 9457) was malformed.
    #[error("malformed problem details body")]
    InvalidProblem,
    /// An encapsulated request or response is shorter than its header,
    /// encapsulated key and AEAD tag (RFC 9458 §4.3, §4.4).
    #[error("encapsulated OHTTP message truncated")]
    EncapsulationTruncated,
    /// An encapsulated request names a KEM, KDF or AEAD its key does not offer.
    #[error("encapsulated OHTTP request uses a suite its key does not offer")]
    UnsupportedSuite,
    /// An X25519 key was unusable, or a Diffie-Hellman gave the all-zero
    /// value (RFC 9180 §7.1.4).
    #[error("unusable X25519 key")]
    InvalidKey,
    /// Authenticated decryption failed: the wrong key, or altered bytes.
    #[error("decryption failed")]
    DecryptionFailed,
    /// The cryptographic library refused an operation that cannot fail with
    /// valid inputs (a nonce counter at its end, say).
    #[error("cryptographic operation failed")]
    CryptoFailure,
}

/// Why a `v=MIMI1` record was skipped (DESIGN §3).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordProblem {
    /// The record is not valid UTF-8.
    NotUtf8,
    /// A tag has no `=`.
    MissingEquals,
    /// A tag name is not lower-case letters, digits, `-` or `_`.
    BadTagName,
    /// The same tag appears twice.
    RepeatedTag(String),
    /// There is no `e` tag.
    MissingEndpoint,
    /// `p` is not an integer in 0..=65535.
    BadPreference,
    /// `e` is not a hostname with an optional port.
    BadEndpoint,
    /// `s` is not `[a-z0-9-]{1,32}`.
    BadService,
    /// `a` is not a MIMI account URI.
    BadAccount,
    /// An authority record has no `n` (authority name) tag.
    MissingAuthorityName,
    /// `n` is not an authority name.
    BadAuthorityName,
    /// An authority record has no `k` (key) tag.
    MissingAuthorityKey,
    /// `k` is not a base64url Ed25519 public key (32 octets).
    BadAuthorityKey,
    /// A trust-store line that is not a `v=MIMIA1` record.
    NotAnAuthorityRecord,
    /// A trust-store `scope` that is not domains, `+`-prefixes or `*`.
    BadScope,
}

impl fmt::Display for RecordProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotUtf8 => f.write_str("not UTF-8 text"),
            Self::MissingEquals => f.write_str("a tag has no '='"),
            Self::BadTagName => f.write_str("a tag name is not lower case"),
            Self::RepeatedTag(t) => write!(f, "tag '{t}' is repeated"),
            Self::MissingEndpoint => f.write_str("no 'e' (provider host) tag"),
            Self::BadPreference => f.write_str("'p' is not a number from 0 to 65535"),
            Self::BadEndpoint => f.write_str("'e' is not a host name with an optional port"),
            Self::BadService => f.write_str("'s' is not 1 to 32 of a-z, 0-9, '-'"),
            Self::BadAccount => f.write_str("'a' is not a mimi:// account URI"),
            Self::MissingAuthorityName => f.write_str("no 'n' (authority name) tag"),
            Self::BadAuthorityName => f.write_str("'n' is not 1 to 64 of a-z, 0-9, '.', '-'"),
            Self::MissingAuthorityKey => f.write_str("no 'k' (key) tag"),
            Self::BadAuthorityKey => {
                f.write_str("'k' is not a base64url Ed25519 public key of 32 octets")
            }
            Self::NotAnAuthorityRecord => f.write_str("not a v=MIMIA1 record"),
            Self::BadScope => f.write_str(
                "'scope' is not a comma-separated list of domains, +prefixes of phone numbers, or *",
            ),
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
