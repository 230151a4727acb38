//! Encapsulated requests and responses (RFC 9458 §4.3, §4.4) on our HPKE.
//!
//! Request: `key_id(1) kem_id(2) kdf_id(2) aead_id(2) enc(32) ct`, sealed
//! with `info = "message/bhttp request" 0x00 header`. Response:
//! `response_nonce(max(Nn, Nk)) ct`, sealed with a key and nonce derived
//! from the request context's exported secret, `enc` and the nonce.
//!
//! Cross-tested both ways with the `ohttp` crate (`tests.rs`), and pinned to
//! RFC 9458 Appendix A byte for byte (`proto/tests/rfc9458_vector.rs`).

use zeroize::Zeroizing;

use super::{AEADS, IKM_LEN, KDF, KEM};
use crate::error::{Error, Result};
use crate::hpke::{self, Aead, KeyPair, N_PK, N_T, Schedule};

use super::KeyConfigEntry;

const REQUEST_LABEL: &[u8] = b"message/bhttp request";
const RESPONSE_LABEL: &[u8] = b"message/bhttp response";
/// `key_id kem_id kdf_id aead_id`.
pub const HEADER_LEN: usize = 7;
/// The longest response nonce and exported secret: `max(Nn, Nk)`.
const MAX_SECRET: usize = 32;

fn header(key_id: u8, aead: Aead) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0] = key_id;
    h[1..3].copy_from_slice(&KEM.to_be_bytes());
    h[3..5].copy_from_slice(&KDF.to_be_bytes());
    h[5..7].copy_from_slice(&aead.id().to_be_bytes());
    h
}

fn request_schedule(key_id: u8, aead: Aead) -> Schedule {
    let mut info = Vec::with_capacity(REQUEST_LABEL.len() + 1 + HEADER_LEN);
    info.extend_from_slice(REQUEST_LABEL);
    info.push(0);
    info.extend_from_slice(&header(key_id, aead));
    Schedule::new(aead, &info)
}

/// `max(Nn, Nk)`: the length of the response nonce and exported secret.
fn entropy_len(aead: Aead) -> usize {
    aead.n_n().max(aead.n_k())
}

/// What both ends of one exchange derive the response's key from: the
/// request context's exported secret (`Export("message/bhttp response",
/// max(Nn, Nk))`) and the request's `enc`.
#[cfg_attr(test, derive(Clone))]
struct ResponseKeying {
    aead: Aead,
    secret: Zeroizing<[u8; MAX_SECRET]>,
    enc: [u8; N_PK],
}

impl ResponseKeying {
    fn new(ctx: &hpke::Context, aead: Aead, enc: [u8; N_PK]) -> Result<Self> {
        let mut secret = Zeroizing::new([0u8; MAX_SECRET]);
        ctx.export(RESPONSE_LABEL, &mut secret[..entropy_len(aead)])?;
        Ok(Self { aead, secret, enc })
    }

    /// `max(Nn, Nk)`: the response nonce's length.
    fn nonce_len(&self) -> usize {
        entropy_len(self.aead)
    }

    /// The response's AEAD key and nonce: `prk = Extract(enc ||
    /// response_nonce, secret)`, `key = Expand(prk, "key", Nk)`, `nonce =
    /// Expand(prk, "nonce", Nn)`.
    fn key(
        &self,
        response_nonce: &[u8],
    ) -> Result<(aws_lc_rs::aead::LessSafeKey, aws_lc_rs::aead::Nonce)> {
        let n = self.nonce_len();
        if response_nonce.len() != n {
            return Err(Error::CryptoFailure);
        }
        let mut salt = [0u8; N_PK + MAX_SECRET];
        salt[..N_PK].copy_from_slice(&self.enc);
        salt[N_PK..N_PK + n].copy_from_slice(response_nonce);
        let prk = hpke::Prk::new(&hpke::extract(&salt[..N_PK + n], &[&self.secret[..n]]));
        let mut key = Zeroizing::new([0u8; 32]);
        let key = &mut key[..self.aead.n_k()];
        prk.expand(&[b"key"], key)?;
        let mut nonce = [0u8; 12];
        prk.expand(&[b"nonce"], &mut nonce)?;
        Ok((
            self.aead.key(key)?,
            aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
        ))
    }
}

/// A gateway's key: the key pair, its encoded configuration, and a prepared
/// key schedule for each AEAD it offers.
pub struct ServerKey {
    key_id: u8,
    pair: KeyPair,
    schedules: Vec<Schedule>,
    encoded: Vec<u8>,
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl ServerKey {
    /// The key `DeriveKeyPair(ikm)` gives, offering our AEADs: how keys are
    /// stored on disk (32 bytes of secret input keying material), as the
    /// `ohttp` crate's `KeyConfig::derive` does.
    pub fn derive(key_id: u8, ikm: &[u8; IKM_LEN]) -> Result<Self> {
        Ok(Self::new(key_id, KeyPair::derive(ikm)?, &AEADS))
    }

    /// The key for a private key's bytes, offering `aeads` in that order (the
    /// RFC 9458 test vector's configuration offers both, ChaCha20 second).
    #[cfg(test)]
    pub(crate) fn from_private(key_id: u8, sk: &[u8], aeads: &[Aead]) -> Result<Self> {
        Ok(Self::new(key_id, KeyPair::from_private(sk)?, aeads))
    }

    fn new(key_id: u8, pair: KeyPair, aeads: &[Aead]) -> Self {
        let mut encoded = Vec::with_capacity(1 + 2 + N_PK + 2 + 4 * aeads.len());
        encoded.push(key_id);
        encoded.extend_from_slice(&KEM.to_be_bytes());
        encoded.extend_from_slice(pair.public_key());
        encoded.extend_from_slice(&((4 * aeads.len()) as u16).to_be_bytes());
        for a in aeads {
            encoded.extend_from_slice(&KDF.to_be_bytes());
            encoded.extend_from_slice(&a.id().to_be_bytes());
        }
        Self {
            key_id,
            schedules: aeads.iter().map(|&a| request_schedule(key_id, a)).collect(),
            pair,
            encoded,
        }
    }

    /// The key identifier.
    pub fn key_id(&self) -> u8 {
        self.key_id
    }

    /// The key configuration (RFC 9458 §3.1), without a length prefix.
    pub fn encoded_config(&self) -> &[u8] {
        &self.encoded
    }

    /// Opens an encapsulated request: the Binary HTTP request and what seals
    /// its response. Errors: [`Error::EncapsulationTruncated`] (too short
    /// to hold a header, `enc` and a tag), [`Error::UnsupportedSuite`]
    /// (another key id, KEM, KDF or an AEAD this key does not offer),
    /// [`Error::InvalidKey`] (a low-order `enc`), [`Error::DecryptionFailed`].
    pub fn decapsulate(&self, enc_request: &[u8]) -> Result<(Vec<u8>, ServerResponse)> {
        if enc_request.len() < HEADER_LEN + N_PK + N_T {
            return Err(Error::EncapsulationTruncated);
        }
        let (head, rest) = enc_request.split_at(HEADER_LEN);
        let (enc, ct) = rest.split_at(N_PK);
        let kem = u16::from_be_bytes([head[1], head[2]]);
        let kdf = u16::from_be_bytes([head[3], head[4]]);
        let aead_id = u16::from_be_bytes([head[5], head[6]]);
        if head[0] != self.key_id || kem != KEM || kdf != KDF {
            return Err(Error::UnsupportedSuite);
        }
        let schedule = self
            .schedules
            .iter()
            .find(|s| s.aead().id() == aead_id)
            .ok_or(Error::UnsupportedSuite)?;
        let mut ctx = schedule.receiver(&self.pair, enc)?;
        let request = ctx.open(b"", ct)?;
        let enc = enc.try_into().map_err(|_| Error::EncapsulationTruncated)?;
        let response = ServerResponse(ResponseKeying::new(&ctx, schedule.aead(), enc)?);
        Ok((request, response))
    }
}

/// Seals the one response to a decapsulated request.
pub struct ServerResponse(ResponseKeying);

impl std::fmt::Debug for ServerResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerResponse")
    }
}

/// The key id an encapsulated request names (its first byte), for choosing
/// the key to open it with; [`Error::EncapsulationTruncated`] when it is too
/// short to be one.
pub fn request_key_id(enc_request: &[u8]) -> Result<u8> {
    if enc_request.len() < HEADER_LEN + N_PK + N_T {
        return Err(Error::EncapsulationTruncated);
    }
    Ok(enc_request[0])
}

impl ServerResponse {
    /// The request's `enc` (its ephemeral public key): unique to one
    /// request, so the gateway's replay key.
    pub fn enc(&self) -> &[u8; N_PK] {
        &self.0.enc
    }

    /// Encapsulates `response` under a fresh random response nonce.
    pub fn encapsulate(self, response: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; MAX_SECRET];
        let nonce = &mut nonce[..self.0.nonce_len()];
        hpke::fill_random(nonce)?;
        self.seal_with_nonce(response, nonce)
    }

    /// Encapsulates `response` under a given nonce: for test vectors only
    /// (a repeated nonce would leak the key stream), so not public.
    #[cfg(test)]
    pub(crate) fn encapsulate_with_nonce(
        self,
        response: &[u8],
        response_nonce: &[u8],
    ) -> Result<Vec<u8>> {
        self.seal_with_nonce(response, response_nonce)
    }

    fn seal_with_nonce(self, response: &[u8], response_nonce: &[u8]) -> Result<Vec<u8>> {
        let (key, nonce) = self.0.key(response_nonce)?;
        let n = response_nonce.len();
        let mut out = Vec::with_capacity(n + response.len() + N_T);
        out.extend_from_slice(response_nonce);
        out.extend_from_slice(response);
        hpke::seal_in_place_append(&key, nonce, b"", &mut out, n)?;
        Ok(out)
    }
}

/// A client's request to one gateway key.
#[derive(Debug, Clone)]
pub struct ClientRequest {
    key_id: u8,
    public_key: [u8; N_PK],
    aead: Aead,
}

impl ClientRequest {
    /// A request to the key of `entry`, with the AEAD it lists first among ours.
    pub fn new(entry: &KeyConfigEntry) -> Self {
        Self {
            key_id: entry.key_id,
            public_key: entry.public_key,
            aead: entry.aead,
        }
    }

    /// Encapsulates `request` under a fresh ephemeral key: the encapsulated
    /// request and what opens its response.
    pub fn encapsulate(self, request: &[u8]) -> Result<(Vec<u8>, ClientResponse)> {
        self.encapsulate_with(request, &KeyPair::generate()?)
    }

    /// Encapsulates `request` under `ephemeral`, which must be fresh and
    /// random. Not public: a reused ephemeral key repeats the AEAD key and
    /// nonce; only [`ClientRequest::encapsulate`] and the test vectors call it.
    fn encapsulate_with(
        self,
        request: &[u8],
        ephemeral: &KeyPair,
    ) -> Result<(Vec<u8>, ClientResponse)> {
        let schedule = request_schedule(self.key_id, self.aead);
        let (enc, mut ctx) = schedule.sender(&self.public_key, ephemeral)?;
        let mut out = Vec::with_capacity(HEADER_LEN + N_PK + request.len() + N_T);
        out.extend_from_slice(&header(self.key_id, self.aead));
        out.extend_from_slice(&enc);
        let from = out.len();
        out.extend_from_slice(request);
        ctx.seal_append(b"", &mut out, from)?;
        let response = ClientResponse(ResponseKeying::new(&ctx, self.aead, enc)?);
        Ok((out, response))
    }
}

/// Opens the response to one encapsulated request.
#[cfg_attr(test, derive(Clone))]
pub struct ClientResponse(ResponseKeying);

impl std::fmt::Debug for ClientResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientResponse")
    }
}

impl ClientResponse {
    /// The Binary HTTP response inside `enc_response`. Errors:
    /// [`Error::EncapsulationTruncated`], [`Error::DecryptionFailed`].
    pub fn decapsulate(self, enc_response: &[u8]) -> Result<Vec<u8>> {
        let n = self.0.nonce_len();
        if enc_response.len() < n + N_T {
            return Err(Error::EncapsulationTruncated);
        }
        let (response_nonce, ct) = enc_response.split_at(n);
        let (key, nonce) = self.0.key(response_nonce)?;
        hpke::open_to_vec(&key, nonce, b"", ct)
    }
}

#[cfg(test)]
mod rfc9458_vector;
#[cfg(test)]
mod tests;
