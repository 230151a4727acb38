//! What the gateway, the relay and the client share about OHTTP (DESIGN §4):
//! media types and paths, key configuration lists (RFC 9458 §3.2), padded
//! known-length Binary HTTP (RFC 9292), problem details (RFC 9457) and the
//! `Date` check of RFC 9458 §6.5, and the encapsulation of requests and
//! responses (RFC 9458 §4.3, §4.4, in [`encapsulation`]) on our HPKE
//! (the crate-private `hpke` module). Nothing here does I/O or reads the clock.

use std::io::Cursor;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::codec::Reader;
use crate::error::{Error, Result};
use crate::hpke;

pub mod encapsulation;

pub use crate::hpke::Aead;
pub use encapsulation::{ClientRequest, ClientResponse, ServerKey, ServerResponse};

/// Length of a request's encapsulated key (`enc`, an X25519 public key).
pub const ENC_LEN: usize = hpke::N_PK;

/// `message/ohttp-req`.
pub const MEDIA_OHTTP_REQ: &str = "message/ohttp-req";
/// `message/ohttp-res`.
pub const MEDIA_OHTTP_RES: &str = "message/ohttp-res";
/// `application/ohttp-keys`.
pub const MEDIA_OHTTP_KEYS: &str = "application/ohttp-keys";
/// `application/problem+json`.
pub const MEDIA_PROBLEM_JSON: &str = "application/problem+json";
/// `application/dns-message` (RFC 8484).
pub const MEDIA_DNS_MESSAGE: &str = "application/dns-message";
/// `application/octet-stream`: what identifierQuery bodies are sent as.
pub const MEDIA_OCTET_STREAM: &str = "application/octet-stream";
/// `application/json`.
pub const MEDIA_JSON: &str = "application/json";

/// The gateway resource (RFC 9540 §5).
pub const GATEWAY_PATH: &str = "/.well-known/ohttp-gateway";
/// The MIMI directory document.
pub const DIRECTORY_PATH: &str = "/.well-known/mimi-protocol-directory";
/// The identifierQuery path prefix; the provider's host follows.
pub const IDENTIFIER_QUERY_PREFIX: &str = "/v1/identifierQuery/";
/// The DNS-over-HTTPS target behind a gateway (DESIGN §7).
pub const DNS_QUERY_PATH: &str = "/dns-query";
/// The relay's path prefix; the gateway host follows.
pub const RELAY_PREFIX: &str = "/gateway/";

/// The one KEM this project uses: `DHKEM(X25519, HKDF-SHA256)`.
pub const KEM: u16 = hpke::KEM_X25519_HKDF_SHA256;
/// The one KDF: `HKDF-SHA256`.
pub const KDF: u16 = hpke::KDF_HKDF_SHA256;
/// The AEADs offered with it, preferred first.
pub const AEADS: [Aead; 2] = [Aead::Aes128Gcm, Aead::ChaCha20Poly1305];
/// Input keying material length for deriving a key pair.
pub const IKM_LEN: usize = 32;

/// The smallest padding bucket for requests, in bytes of Binary HTTP.
///
/// With requests padded to at least 2048 bytes, every legal identifier (at
/// most 318 octets for an email address) lands in the same bucket for a
/// provider host of up to 128 octets, with a lookup token (its
/// `Authorization` header adds about 500 bytes) or without one (DESIGN
/// §10): the relay can tell neither lengths apart nor a request that
/// carries a token from one that does not. (1024 held before tokens; the
/// longest identifiers with a token would spill into 2048.)
pub const MIN_PADDED_LEN: usize = 2048;

/// The smallest padding bucket for responses, in bytes of Binary HTTP.
///
/// Sized so that every identifierQuery answer with up to
/// [`MAX_ACCOUNTS_PER_IDENTIFIER`](crate::query::MAX_ACCOUNTS_PER_IDENTIFIER)
/// accounts of up to
/// [`MAX_ACCOUNT_URI_LEN`](crate::query::MAX_ACCOUNT_URI_LEN) octets, each
/// listed twice (as a URI and as a profile's stable URI) and each with a
/// signed mapping of up to
/// [`MAX_ASSERTION_LEN`](crate::mapping::MAX_ASSERTION_LEN) octets (DESIGN
/// §11: at most about 23,000 bytes in all), and every DNS answer holding up
/// to 16 MIMI records of up to 400 octets each, falls in the same bucket as
/// an empty answer. (8,192 held before signed mappings; 24 KiB rather than
/// the next power of two, 32 KiB, keeps every answer a quarter smaller.)
pub const MIN_PADDED_RESPONSE_LEN: usize = 24 * 1024;

/// The length a Binary HTTP request of `len` bytes is padded to: the next
/// power of two, and at least [`MIN_PADDED_LEN`].
pub fn padded_len(len: usize) -> usize {
    len.next_power_of_two().max(MIN_PADDED_LEN)
}

/// The length a Binary HTTP response of `len` bytes is padded to:
/// [`MIN_PADDED_RESPONSE_LEN`], or the next power of two above it.
pub fn padded_response_len(len: usize) -> usize {
    if len <= MIN_PADDED_RESPONSE_LEN {
        MIN_PADDED_RESPONSE_LEN
    } else {
        len.next_power_of_two()
    }
}

/// Encodes key configurations as an `application/ohttp-keys` body: each one
/// prefixed with its 2-byte length (RFC 9458 §3.2).
pub fn encode_key_config_list<'a>(configs: impl IntoIterator<Item = &'a ServerKey>) -> Vec<u8> {
    let mut out = Vec::new();
    for c in configs {
        let encoded = c.encoded_config();
        // A configuration with our two suites is 43 bytes: the length fits.
        out.extend_from_slice(&(encoded.len() as u16).to_be_bytes());
        out.extend_from_slice(encoded);
    }
    out
}

/// One entry of a key configuration list that a client can use.
#[derive(Debug, Clone)]
pub struct KeyConfigEntry {
    /// The key identifier (the first byte of the configuration).
    pub key_id: u8,
    /// The configuration's bytes without the length prefix.
    pub encoded: Vec<u8>,
    /// The gateway's public key.
    pub public_key: [u8; hpke::N_PK],
    /// The AEAD a client uses with it: the first one listed that we offer.
    pub aead: Aead,
}

/// Decodes an `application/ohttp-keys` body strictly and keeps, in order, the
/// entries that use X25519 with at least one of our suites. Malformed framing
/// is an error; an entry we cannot use is skipped; none usable is an error.
pub fn decode_key_config_list(bytes: &[u8]) -> Result<Vec<KeyConfigEntry>> {
    let mut list = Reader::new(bytes);
    let mut usable = Vec::new();
    while !list.is_empty() {
        let len = list.u16(KEY_CONFIG).map_err(malformed)?;
        let entry = list.take(usize::from(len), KEY_CONFIG).map_err(malformed)?;
        if let Some(e) = usable_entry(entry)? {
            usable.push(e);
        }
    }
    if usable.is_empty() {
        return Err(Error::NoSupportedKeyConfig);
    }
    Ok(usable)
}

const KEY_CONFIG: &str = "KeyConfig";

/// Any framing error in a key configuration list is the one error a client
/// reports for it.
fn malformed(_: Error) -> Error {
    Error::InvalidKeyConfigList
}

/// `key_id(1) kem_id(2) public_key(Npk) suites_len(2) (kdf_id(2) aead_id(2))*`.
fn usable_entry(entry: &[u8]) -> Result<Option<KeyConfigEntry>> {
    let mut r = Reader::new(entry);
    let key_id = r.u8(KEY_CONFIG).map_err(malformed)?;
    if r.u16(KEY_CONFIG).map_err(malformed)? != KEM {
        return Ok(None); // another KEM: its key length is not ours to know
    }
    let public = r.take(hpke::N_PK, KEY_CONFIG).map_err(malformed)?;
    let declared = usize::from(r.u16(KEY_CONFIG).map_err(malformed)?);
    let suites = r.take(declared, KEY_CONFIG).map_err(malformed)?;
    if !r.is_empty() || declared == 0 || declared % 4 != 0 {
        return Err(Error::InvalidKeyConfigList);
    }
    let mut suites = Reader::new(suites);
    let mut ours = None;
    while !suites.is_empty() {
        let kdf = suites.u16(KEY_CONFIG)?;
        let aead = Aead::from_id(suites.u16(KEY_CONFIG)?);
        if ours.is_none() && kdf == KDF {
            ours = aead.filter(|a| AEADS.contains(a));
        }
    }
    let Some(aead) = ours else {
        return Ok(None);
    };
    let mut public_key = [0u8; hpke::N_PK];
    public_key.copy_from_slice(public);
    Ok(Some(KeyConfigEntry {
        key_id,
        encoded: entry.to_vec(),
        public_key,
        aead,
    }))
}

/// Builds a known-length Binary HTTP request, zero-padded to [`padded_len`].
pub fn encode_request(
    method: &str,
    authority: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Vec<u8>> {
    let mut msg = bhttp::Message::request(
        method.as_bytes().to_vec(),
        b"https".to_vec(),
        authority.as_bytes().to_vec(),
        path.as_bytes().to_vec(),
    );
    for (name, value) in headers {
        msg.put_header(name.as_bytes(), value.as_bytes());
    }
    msg.write_content(body);
    write_padded(&msg, padded_len)
}

/// One identifierQuery as a padded Binary HTTP request (DESIGN §5): `POST
/// /v1/identifierQuery/<host>` to `host`, dated `date`, carrying `request`
/// and, where the provider requires one, a token's `Authorization` value
/// (DESIGN §10). The path is the fixed one, never one a provider handed out.
pub fn identifier_query(
    host: &str,
    request: &crate::IdentifierRequest,
    date: SystemTime,
    authorization: Option<&str>,
) -> Result<Vec<u8>> {
    use crate::codec::Codec;
    let body = request.to_bytes()?;
    let date = format_date(date);
    let path = format!("{IDENTIFIER_QUERY_PREFIX}{host}");
    let mut headers = vec![
        ("date", date.as_str()),
        ("content-type", MEDIA_OCTET_STREAM),
    ];
    if let Some(a) = authorization {
        headers.push(("authorization", a));
    }
    encode_request("POST", host, &path, &headers, &body)
}

/// Builds a known-length Binary HTTP response, zero-padded to
/// [`padded_response_len`].
pub fn encode_response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Result<Vec<u8>> {
    let status = bhttp::StatusCode::try_from(status).map_err(|_| Error::InvalidBinaryHttp)?;
    let mut msg = bhttp::Message::response(status);
    for (name, value) in headers {
        msg.put_header(name.as_bytes(), value.as_bytes());
    }
    msg.write_content(body);
    write_padded(&msg, padded_response_len)
}

fn write_padded(msg: &bhttp::Message, bucket: fn(usize) -> usize) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(MIN_PADDED_LEN);
    msg.write_bhttp(bhttp::Mode::KnownLength, &mut out)
        .map_err(|_| Error::InvalidBinaryHttp)?;
    out.resize(bucket(out.len()), 0);
    Ok(out)
}

/// The authority a decoded Binary HTTP request names: its `:authority`, or,
/// when that is empty, its `Host` header (RFC 9292 §3.5).
pub fn request_authority(msg: &bhttp::Message) -> Option<&[u8]> {
    match msg.control().authority() {
        Some(a) if !a.is_empty() => Some(a),
        _ => msg.header().get(b"host").filter(|h| !h.is_empty()),
    }
}

/// Reads a Binary HTTP message (request or response); anything after it must
/// be zero padding (RFC 9292 §3.8).
pub fn decode_message(bytes: &[u8]) -> Result<bhttp::Message> {
    let mut cursor = Cursor::new(bytes);
    let msg = bhttp::Message::read_bhttp(&mut cursor).map_err(|_| Error::InvalidBinaryHttp)?;
    let used = usize::try_from(cursor.position()).map_err(|_| Error::InvalidBinaryHttp)?;
    if bytes[used.min(bytes.len())..].iter().any(|&b| b != 0) {
        return Err(Error::InvalidPadding);
    }
    Ok(msg)
}

/// The problem types this protocol uses (RFC 9457, RFC 9458 §5.3, §6.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemType {
    /// The key identifier is unknown or decryption failed: re-fetch the keys.
    OhttpKey,
    /// The inner `Date` is outside the gateway's window.
    Date,
}

impl ProblemType {
    /// The type URI.
    pub fn uri(self) -> &'static str {
        match self {
            Self::OhttpKey => "https://iana.org/assignments/http-problem-types#ohttp-key",
            Self::Date => "https://iana.org/assignments/http-problem-types#date",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::OhttpKey => "key identifier unknown or decryption failed",
            Self::Date => "date outside the accepted window",
        }
    }
}

/// An RFC 9457 problem details object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The problem type URI; `about:blank` when only the status matters.
    #[serde(rename = "type", default = "about_blank")]
    pub type_uri: String,
    /// A short human-readable summary.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
}

fn about_blank() -> String {
    "about:blank".into()
}

impl Problem {
    /// The body for one of our problem types.
    pub fn of(kind: ProblemType) -> Self {
        Self {
            type_uri: kind.uri().into(),
            title: kind.title().into(),
        }
    }

    /// An `about:blank` problem with a title.
    pub fn blank(title: &str) -> Self {
        Self {
            type_uri: about_blank(),
            title: title.into(),
        }
    }

    /// Which of our problem types this is, if any.
    pub fn kind(&self) -> Option<ProblemType> {
        [ProblemType::OhttpKey, ProblemType::Date]
            .into_iter()
            .find(|k| k.uri() == self.type_uri)
    }

    /// Serialises as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses a JSON problem body.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|_| Error::InvalidProblem)
    }
}

/// Formats `now` as an HTTP `Date` (IMF-fixdate).
pub fn format_date(now: SystemTime) -> String {
    httpdate::fmt_http_date(now)
}

/// How far `date` (an HTTP `Date` value) is from `now`, in seconds; positive
/// when `date` is in the future.
pub fn date_skew(date: &str, now: SystemTime) -> Result<i64> {
    let then = httpdate::parse_http_date(date).map_err(|_| Error::InvalidDate)?;
    let secs = |t: SystemTime| match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    Ok(secs(then) - secs(now))
}

/// Whether a `Content-Type` value names `media` (its parameters ignored,
/// case-insensitive): one rule for the relay, the gateway and the client.
pub fn media_type_is(content_type: &str, media: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(media))
}

/// The `max-age` of a `Cache-Control` value (seconds); 0 with `no-store`,
/// `no-cache` or `private`, which forbid a shared cache from reusing it.
pub fn max_age(value: &str) -> Option<u64> {
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if matches!(lower.as_str(), "no-store" | "no-cache" | "private") {
            return Some(0);
        }
        if let Some(v) = lower.strip_prefix("max-age=") {
            age = v.trim_matches('"').parse().ok();
        }
    }
    age
}

#[cfg(test)]
mod tests;
