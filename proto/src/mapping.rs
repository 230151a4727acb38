//! Mappings the client can verify (DESIGN §11): a mapping authority signs
//! "identifier → account at provider" as a CWT in a COSE_Sign1 with Ed25519;
//! any gateway may serve the signature beside the account; the client checks
//! it against authority keys it trusts.
//!
//! - [`AuthorityKey`]: a public key with its authority's name, as published
//!   in a `v=MIMIA1` TXT record at `_mimi-authority.<domain>` or listed in a
//!   trust store.
//! - [`AuthoritySigner`]: the private half, which signs a [`Mapping`].
//! - [`Assertion`]: a signed mapping, strictly decoded (not yet trusted).
//! - [`judge`]: the client's verdict on one found account.
//! - [`attach_assertions`] and [`assertions_in`]: the `id_response_extensions`
//!   component that carries one assertion per found account.

use std::fmt;

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use coset::cwt::{ClaimName, ClaimsSet, Timestamp};
use coset::iana::{self, CwtClaimName};
use coset::{
    CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder, RegisteredLabelWithPrivate,
    TaggedCborSerializable,
};

use crate::codec::{Codec, Reader, put_opaque};
use crate::error::{Error, RecordProblem, Result};
use crate::query::{ComponentData, IdentifierResponse};
use crate::record::{tag_values, versioned};

/// The `id_response_extensions` component that carries the assertions, from
/// the private-use range of component ids (0x80000000 and up): "MA".
pub const ASSERTIONS_COMPONENT_ID: u32 = 0x8000_4d41;
/// The private CWT claim holding the account URI (private use: below -65536).
pub const CLAIM_ACCOUNT: i64 = -65537;
/// The private CWT claim holding the provider's discovery host (`e`).
pub const CLAIM_PROVIDER: i64 = -65538;
/// The longest assertion signed, served or read, in octets: enough for the
/// longest identifier (318), account URI (200), provider host (259) and
/// authority name (64) with the signature and CBOR framing (about 960).
pub const MAX_ASSERTION_LEN: usize = 1024;
/// The longest authority name, in octets.
pub const MAX_AUTHORITY_NAME_LEN: usize = 64;
/// The version tag of an authority key record.
pub const AUTHORITY_VERSION: &str = "MIMIA1";
/// How far in the future an assertion's `iat` or `nbf` may lie: clocks differ.
pub const CLOCK_SKEW_SECS: u64 = 300;

/// What an authority vouches for: this identifier's account on this provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The normalised identifier (DESIGN §2).
    pub identifier: String,
    /// The account: `mimi://<domain>/u/<account>`.
    pub account: String,
    /// The provider's discovery host, as in `e=` (host, optional `:port`).
    pub provider: String,
}

/// The claims of a decoded assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// `iss`: the authority's name.
    pub authority: String,
    /// `sub`, [`CLAIM_ACCOUNT`], [`CLAIM_PROVIDER`].
    pub mapping: Mapping,
    /// `iat`, seconds since the Unix epoch.
    pub issued_at: u64,
    /// `nbf`, if given.
    pub not_before: Option<u64>,
    /// `exp`.
    pub expires_at: u64,
}

/// Checks an authority name: 1 to 64 of `a-z`, `0-9`, `.`, `-`, not starting
/// or ending with `.` or `-`.
pub fn check_authority_name(name: &str) -> Result<()> {
    let ok = (1..=MAX_AUTHORITY_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && !name.starts_with(['.', '-'])
        && !name.ends_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidAuthorityName)
    }
}

/// A mapping authority's public key and name.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AuthorityKey {
    /// The authority's name, as `iss` carries it.
    pub name: String,
    /// The Ed25519 public key.
    pub key: [u8; 32],
}

impl fmt::Debug for AuthorityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthorityKey({}, {})", self.name, self.key_base64())
    }
}

impl AuthorityKey {
    /// The key as base64url without padding, as `k=` carries it.
    pub fn key_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key)
    }

    /// Parses one TXT record (its character-strings concatenated):
    /// `v=MIMIA1; n=<name>; k=<base64url Ed25519 key>`. `Ok(None)` for a
    /// record that is not an authority record; an error for one that breaks a
    /// rule (skipped, with a warning). Unknown tags are ignored.
    pub fn parse_record(raw: &[u8]) -> Result<Option<Self>> {
        let invalid = |problem| Error::InvalidAuthorityRecord {
            text: String::from_utf8_lossy(raw).into_owned(),
            problem,
        };
        let Some(text) = versioned(raw, AUTHORITY_VERSION).map_err(invalid)? else {
            return Ok(None);
        };
        let [n, k] = tag_values(text, ["n", "k"]).map_err(invalid)?;
        let name = n.ok_or_else(|| invalid(RecordProblem::MissingAuthorityName))?;
        check_authority_name(name).map_err(|_| invalid(RecordProblem::BadAuthorityName))?;
        let key = k.ok_or_else(|| invalid(RecordProblem::MissingAuthorityKey))?;
        let key = URL_SAFE_NO_PAD
            .decode(key)
            .ok()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .ok_or_else(|| invalid(RecordProblem::BadAuthorityKey))?;
        Ok(Some(Self {
            name: name.to_owned(),
            key,
        }))
    }

    /// Whether `signature` over `message` verifies under this key.
    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.key)
            .verify(message, signature)
            .is_ok()
    }
}

/// The record that publishes the key: `v=MIMIA1; n=<name>; k=<key>`.
impl fmt::Display for AuthorityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "v={AUTHORITY_VERSION}; n={}; k={}",
            self.name,
            self.key_base64()
        )
    }
}

/// Which identifiers a trust-store authority speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every identifier (a trust-store line without `scope=`, or `scope=*`).
    Everything,
    /// Handles and email addresses of these domains (exactly: not their
    /// subdomains), and phone numbers starting with these prefixes (`+`
    /// alone: every number).
    Only {
        /// Lower-case A-label domains.
        domains: Vec<String>,
        /// `+` and digits.
        phone_prefixes: Vec<String>,
    },
}

/// One entry of a client's trust store: an authority key and the
/// identifiers it may vouch for (DESIGN §11: how phone-number authorities
/// are trusted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedAuthority {
    /// The key.
    pub key: AuthorityKey,
    /// What it may vouch for.
    pub scope: Scope,
}

impl TrustedAuthority {
    /// Parses one trust-store line: an authority record as a domain
    /// publishes it, with an optional `scope=` tag, a comma-separated list of
    /// domains, `+`-prefixes of phone numbers, or `*`:
    /// `v=MIMIA1; n=numbers.example; k=…; scope=+1,+44`.
    pub fn parse_line(line: &str) -> Result<Self> {
        let raw = line.trim().as_bytes();
        let invalid = |problem| Error::InvalidAuthorityRecord {
            text: line.trim().to_owned(),
            problem,
        };
        let key = AuthorityKey::parse_record(raw)?
            .ok_or_else(|| invalid(RecordProblem::NotAnAuthorityRecord))?;
        let text = versioned(raw, AUTHORITY_VERSION)
            .map_err(invalid)?
            .unwrap_or_default();
        let [scope] = tag_values(text, ["scope"]).map_err(invalid)?;
        let scope = match scope {
            None | Some("*") => Scope::Everything,
            Some(list) => {
                let (mut domains, mut phone_prefixes) = (Vec::new(), Vec::new());
                for item in list.split(',').map(str::trim) {
                    if let Some(digits) = item.strip_prefix('+') {
                        if digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                            return Err(invalid(RecordProblem::BadScope));
                        }
                        phone_prefixes.push(item.to_owned());
                    } else {
                        let domain = crate::domain::normalise_domain(item)
                            .map_err(|_| invalid(RecordProblem::BadScope))?;
                        domains.push(domain);
                    }
                }
                Scope::Only {
                    domains,
                    phone_prefixes,
                }
            }
        };
        Ok(Self { key, scope })
    }

    /// Whether this authority may vouch for `id`.
    pub fn covers(&self, id: &crate::Identifier) -> bool {
        match &self.scope {
            Scope::Everything => true,
            Scope::Only {
                domains,
                phone_prefixes,
            } => match (id, id.authority_domain()) {
                (crate::Identifier::Phone(number), _) => phone_prefixes
                    .iter()
                    .any(|p| number.starts_with(p.as_str())),
                (_, Some(domain)) => domains.iter().any(|d| d == domain),
                (_, None) => false,
            },
        }
    }
}

/// A mapping authority's signing key.
pub struct AuthoritySigner {
    name: String,
    pair: Ed25519KeyPair,
}

impl fmt::Debug for AuthoritySigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthoritySigner")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl AuthoritySigner {
    /// The signer for authority `name` from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self> {
        check_authority_name(name)?;
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| Error::CryptoFailure)?;
        Ok(Self {
            name: name.to_owned(),
            pair,
        })
    }

    /// A fresh random seed.
    pub fn generate_seed() -> Result<zeroize::Zeroizing<[u8; 32]>> {
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|_| Error::CryptoFailure)?;
        Ok(seed)
    }

    /// The authority's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The public key, to publish or to trust.
    pub fn public_key(&self) -> AuthorityKey {
        let mut key = [0u8; 32];
        key.copy_from_slice(self.pair.public_key().as_ref());
        AuthorityKey {
            name: self.name.clone(),
            key,
        }
    }

    /// Signs `mapping`, valid from `issued_at` until `expires_at` (seconds
    /// since the Unix epoch): a tagged COSE_Sign1 (RFC 9052) whose payload is
    /// the CWT claims set (RFC 8392). Refuses a mapping whose fields are not
    /// normalised (the caller normalises), an empty lifetime, or an
    /// assertion longer than [`MAX_ASSERTION_LEN`].
    pub fn sign(&self, mapping: &Mapping, issued_at: u64, expires_at: u64) -> Result<Vec<u8>> {
        check_mapping(mapping)?;
        if expires_at <= issued_at {
            return Err(Error::InvalidAssertion("it expires before it is issued"));
        }
        let seconds = |t: u64| {
            i64::try_from(t)
                .map(Timestamp::WholeSeconds)
                .map_err(|_| Error::InvalidAssertion("a time beyond the CBOR integer range"))
        };
        let claims = coset::cwt::ClaimsSetBuilder::new()
            .issuer(self.name.clone())
            .subject(mapping.identifier.clone())
            .issued_at(seconds(issued_at)?)
            .expiration_time(seconds(expires_at)?)
            .private_claim(CLAIM_ACCOUNT, mapping.account.clone().into())
            .private_claim(CLAIM_PROVIDER, mapping.provider.clone().into())
            .build();
        let payload = claims
            .to_vec()
            .map_err(|_| Error::InvalidAssertion("claims do not encode"))?;
        let protected = HeaderBuilder::new()
            .algorithm(iana::Algorithm::EdDSA)
            .build();
        let sign1 = CoseSign1Builder::new()
            .protected(protected)
            .payload(payload)
            .create_signature(b"", |tbs| self.pair.sign(tbs).as_ref().to_vec())
            .build();
        let bytes = sign1
            .to_tagged_vec()
            .map_err(|_| Error::InvalidAssertion("does not encode"))?;
        if bytes.len() > MAX_ASSERTION_LEN {
            return Err(Error::InvalidAssertion("longer than 1024 octets"));
        }
        Ok(bytes)
    }
}

/// The fields of a mapping must be what a verifier compares them with: the
/// normalised identifier, a MIMI URI as written back, a lower-case host.
fn check_mapping(m: &Mapping) -> Result<()> {
    let id = crate::Identifier::parse(&m.identifier)
        .map_err(|_| Error::InvalidAssertion("the identifier is not valid"))?;
    if id.to_string() != m.identifier {
        return Err(Error::InvalidAssertion("the identifier is not normalised"));
    }
    let account = crate::MimiUri::parse(&m.account)
        .map_err(|_| Error::InvalidAssertion("the account is not a MIMI URI"))?;
    if account.to_string() != m.account {
        return Err(Error::InvalidAssertion("the account is not normalised"));
    }
    match crate::record::Endpoint::parse(&m.provider) {
        Some(e) if e.to_string() == m.provider => Ok(()),
        _ => Err(Error::InvalidAssertion(
            "the provider is not a lower-case host with an optional port",
        )),
    }
}

/// A decoded assertion: its claims and what its signature covers. Decoding
/// proves nothing; [`Assertion::signed_by`] and [`judge`] do.
#[derive(Debug, Clone)]
pub struct Assertion {
    claims: Claims,
    signed: Vec<u8>,
    signature: Vec<u8>,
}

const ISS: ClaimName = RegisteredLabelWithPrivate::Assigned(CwtClaimName::Iss);

impl Assertion {
    /// Decodes a tagged COSE_Sign1 strictly: at most [`MAX_ASSERTION_LEN`]
    /// octets; the protected header exactly `{alg: EdDSA}`; the unprotected
    /// one empty but for a `kid`; the payload attached; the claims exactly
    /// `iss`, `sub`, `iat`, `exp`, optionally `nbf`, and the two private
    /// claims, each of its type (times as non-negative whole seconds).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let bad = Error::InvalidAssertion;
        if bytes.len() > MAX_ASSERTION_LEN {
            return Err(bad("longer than 1024 octets"));
        }
        let sign1 = CoseSign1::from_tagged_slice(bytes).map_err(|_| bad("not a COSE_Sign1"))?;
        let expected = HeaderBuilder::new()
            .algorithm(iana::Algorithm::EdDSA)
            .build();
        if sign1.protected.header != expected {
            return Err(bad("the protected header is not {alg: EdDSA}"));
        }
        let unprotected = coset::Header {
            key_id: Vec::new(),
            ..sign1.unprotected.clone()
        };
        if !unprotected.is_empty() {
            return Err(bad("the unprotected header holds more than a kid"));
        }
        let payload = sign1
            .payload
            .as_deref()
            .ok_or(bad("the payload is detached"))?;
        let set = ClaimsSet::from_slice(payload).map_err(|_| bad("the payload is not a CWT"))?;
        let claims = claims_of(set)?;
        Ok(Self {
            claims,
            signed: sign1.tbs_data(b""),
            signature: sign1.signature,
        })
    }

    /// The claims, unverified.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// Whether `key` signed this assertion (and belongs to the named issuer).
    pub fn signed_by(&self, key: &AuthorityKey) -> bool {
        key.name == self.claims.authority && key.verifies(&self.signed, &self.signature)
    }
}

fn claims_of(set: ClaimsSet) -> Result<Claims> {
    let bad = Error::InvalidAssertion;
    let seconds = |t: Option<Timestamp>, what| match t {
        Some(Timestamp::WholeSeconds(s)) => u64::try_from(s).map_err(|_| bad(what)),
        _ => Err(bad(what)),
    };
    if set.audience.is_some() || set.cwt_id.is_some() {
        return Err(bad("an unexpected claim"));
    }
    let authority = set.issuer.ok_or(bad("no iss"))?;
    check_authority_name(&authority).map_err(|_| bad("iss is not an authority name"))?;
    let identifier = set.subject.ok_or(bad("no sub"))?;
    let issued_at = seconds(set.issued_at, "iat is not a time in whole seconds")?;
    let expires_at = seconds(set.expiration_time, "exp is not a time in whole seconds")?;
    let not_before = match set.not_before {
        None => None,
        t => Some(seconds(t, "nbf is not a time in whole seconds")?),
    };
    let (mut account, mut provider) = (None, None);
    for (name, value) in set.rest {
        let slot = match name {
            ClaimName::PrivateUse(CLAIM_ACCOUNT) => &mut account,
            ClaimName::PrivateUse(CLAIM_PROVIDER) => &mut provider,
            // `iss` is taken above; anything else is not ours to ignore.
            n if n == ISS => return Err(bad("iss twice")),
            _ => return Err(bad("an unexpected claim")),
        };
        let text = value.into_text().map_err(|_| bad("a claim is not text"))?;
        *slot = Some(text);
    }
    Ok(Claims {
        authority,
        mapping: Mapping {
            identifier,
            account: account.ok_or(bad("no account claim"))?,
            provider: provider.ok_or(bad("no provider claim"))?,
        },
        issued_at,
        not_before,
        expires_at,
    })
}

/// Why an account is unverified: nothing says it is wrong, nothing proves
/// it right.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unverified {
    /// The provider sent no assertion for it.
    NoAssertion,
    /// No authority key is trusted for this identifier.
    NoTrustedKey,
}

/// Why an account is invalid: an assertion came with it and proves it wrong
/// (or is no assertion at all). An invalid account is never shown as found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Invalid {
    /// Not a well-formed assertion.
    Malformed(&'static str),
    /// Signed in the name of an authority not trusted for this identifier.
    UntrustedAuthority(String),
    /// The signature does not verify under any key of the named authority.
    BadSignature,
    /// It vouches for another identifier.
    OtherIdentifier,
    /// It vouches for another account.
    OtherAccount,
    /// It names a provider the identifier's DNS records do not list.
    OtherProvider,
    /// It expired (at this Unix time).
    Expired(u64),
    /// It is not valid yet (issued or valid from this Unix time).
    NotYetValid(u64),
}

/// The client's verdict on one found account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Signed by a trusted authority, for this identifier, account and a
    /// listed provider, and within its lifetime.
    Verified {
        /// The authority's name.
        authority: String,
        /// When the assertion expires (Unix time).
        expires_at: u64,
    },
    /// Not proven either way.
    Unverified(Unverified),
    /// Proven wrong.
    Invalid(Invalid),
}

impl Verdict {
    /// `verified`, `unverified` or `invalid`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Verified { .. } => "verified",
            Self::Unverified(_) => "unverified",
            Self::Invalid(_) => "invalid",
        }
    }
}

impl fmt::Display for Unverified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoAssertion => "the provider sent no signed mapping",
            Self::NoTrustedKey => "no mapping authority is trusted for this identifier",
        })
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "the signed mapping is malformed: {why}"),
            // The name is the provider's to choose: a sentence that may be
            // logged does not repeat it (it could hold the identifier).
            Self::UntrustedAuthority(_) => {
                f.write_str("signed by an authority not trusted for this identifier")
            }
            Self::BadSignature => f.write_str("the signature does not verify"),
            Self::OtherIdentifier => f.write_str("the signed mapping is for another identifier"),
            Self::OtherAccount => f.write_str("the signed mapping names another account"),
            Self::OtherProvider => f.write_str(
                "the signed mapping names a provider this identifier's DNS records do not list",
            ),
            Self::Expired(at) => write!(f, "the signed mapping expired (at Unix time {at})"),
            Self::NotYetValid(at) => {
                write!(
                    f,
                    "the signed mapping is not valid yet (from Unix time {at})"
                )
            }
        }
    }
}

/// What the client expects of an assertion for one found account.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The normalised identifier asked for.
    pub identifier: &'a str,
    /// The account the provider named.
    pub account: &'a str,
    /// The provider hosts (`e=`) the identifier's DNS records list: the
    /// provider asked is one; a distribution point may serve another's
    /// mapping.
    pub providers: &'a [String],
}

/// The verdict on one account: `trusted` holds every authority key trusted
/// for this identifier (its domain's, if DNSSEC-secure, and the trust
/// store's that cover it); `now` is Unix time.
///
/// With no assertion, or with no key trusted for the identifier, the account
/// is unverified. Otherwise the assertion must decode, name an authority
/// with a trusted key, verify under one of its keys, vouch for exactly this
/// identifier, account and a listed provider, and be within its lifetime;
/// each failure makes the account invalid.
pub fn judge(
    assertion: Option<&[u8]>,
    expected: Expected<'_>,
    trusted: &[AuthorityKey],
    now: u64,
) -> Verdict {
    let Some(bytes) = assertion else {
        return Verdict::Unverified(Unverified::NoAssertion);
    };
    if trusted.is_empty() {
        return Verdict::Unverified(Unverified::NoTrustedKey);
    }
    let invalid = Verdict::Invalid;
    let assertion = match Assertion::decode(bytes) {
        Ok(a) => a,
        Err(Error::InvalidAssertion(why)) => return invalid(Invalid::Malformed(why)),
        Err(_) => return invalid(Invalid::Malformed("undecodable")),
    };
    let claims = assertion.claims();
    let mut keys = trusted
        .iter()
        .filter(|k| k.name == claims.authority)
        .peekable();
    if keys.peek().is_none() {
        return invalid(Invalid::UntrustedAuthority(claims.authority.clone()));
    }
    if !keys.any(|k| assertion.signed_by(k)) {
        return invalid(Invalid::BadSignature);
    }
    let m = &claims.mapping;
    if m.identifier != expected.identifier {
        return invalid(Invalid::OtherIdentifier);
    }
    if m.account != expected.account {
        return invalid(Invalid::OtherAccount);
    }
    if !expected.providers.contains(&m.provider) {
        return invalid(Invalid::OtherProvider);
    }
    if now >= claims.expires_at {
        return invalid(Invalid::Expired(claims.expires_at));
    }
    let starts = claims.not_before.unwrap_or(0).max(claims.issued_at);
    if starts > now.saturating_add(CLOCK_SKEW_SECS) {
        return invalid(Invalid::NotYetValid(starts));
    }
    Verdict::Verified {
        authority: claims.authority.clone(),
        expires_at: claims.expires_at,
    }
}

/// ```text
/// struct { opaque assertion<V>; } AccountAssertion;
/// struct { AccountAssertion assertions<V>; } MappingAssertions;
/// ```
/// One entry per found account, in the order of `IdentifierResponse.uri`;
/// an empty one means "no assertion for this account".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MappingAssertions(pub Vec<Vec<u8>>);

impl Codec for MappingAssertions {
    const NAME: &'static str = "MappingAssertions";
    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        let mut inner = Vec::new();
        for a in &self.0 {
            if a.len() > MAX_ASSERTION_LEN {
                return Err(Error::FieldTooLong(Self::NAME));
            }
            put_opaque(&mut inner, a)?;
        }
        put_opaque(out, &inner)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let mut inner = Reader::new(r.opaque(Self::NAME)?);
        let mut out = Vec::new();
        while !inner.is_empty() {
            let a = inner.opaque(Self::NAME)?;
            if a.len() > MAX_ASSERTION_LEN {
                return Err(Error::FieldTooLong(Self::NAME));
            }
            out.push(a.to_vec());
        }
        Ok(Self(out))
    }
}

/// Adds the assertions component to a response: `per_account[i]` for
/// `response.uri[i]` (`None`: no assertion). Nothing is added when no account
/// has one. The counts must match.
pub fn attach_assertions(
    response: &mut IdentifierResponse,
    per_account: &[Option<&[u8]>],
) -> Result<()> {
    if per_account.len() != response.uri.len() {
        return Err(Error::InvalidAssertion(
            "one assertion slot per account is needed",
        ));
    }
    if per_account.iter().all(Option::is_none) {
        return Ok(());
    }
    let assertions = MappingAssertions(
        per_account
            .iter()
            .map(|a| a.map(<[u8]>::to_vec).unwrap_or_default())
            .collect(),
    );
    response
        .id_response_extensions
        .component_data
        .push(ComponentData {
            component_id: ASSERTIONS_COMPONENT_ID,
            data: assertions.to_bytes()?,
        });
    Ok(())
}

/// The assertion served with each account of `response`, in the order of
/// its `uri` (`None`: none). A response without the component has none; a
/// component that is there twice, does not decode, or does not hold one
/// entry per account is an error (the answer is malformed).
pub fn assertions_in(response: &IdentifierResponse) -> Result<Vec<Option<Vec<u8>>>> {
    let mut ours = response
        .id_response_extensions
        .component_data
        .iter()
        .filter(|c| c.component_id == ASSERTIONS_COMPONENT_ID);
    let Some(component) = ours.next() else {
        return Ok(vec![None; response.uri.len()]);
    };
    if ours.next().is_some() {
        return Err(Error::InvalidAssertion("two assertion components"));
    }
    let MappingAssertions(list) = MappingAssertions::from_bytes(&component.data)?;
    if list.len() != response.uri.len() {
        return Err(Error::InvalidAssertion(
            "the number of assertions differs from the number of accounts",
        ));
    }
    Ok(list
        .into_iter()
        .map(|a| if a.is_empty() { None } else { Some(a) })
        .collect())
}

#[cfg(test)]
mod tests;
