//! HPKE (RFC 9180), base mode, for the one family of suites this project
//! uses: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, and AES-128-GCM or
//! ChaCha20-Poly1305. The primitives are aws-lc-rs's; what is ours is only
//! RFC 9180's composition of them, checked against the RFC's test vectors
//! (`hpke/tests.rs`) and, through OHTTP, both ways against the `ohttp` crate.
//!
//! Why not the `hpke` crate (which `ohttp` uses): it re-derives the
//! recipient's public key from its private key on every decapsulation (a
//! second scalar multiplication), and its X25519 is about twice as slow as
//! aws-lc-rs's on the machines we measured (BENCHMARKS.md). Here the public
//! key is kept beside the private key, and everything that depends only on
//! the suite and the `info` string is computed once ([`Schedule`]).

use aws_lc_rs::{aead, agreement, hmac};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// `DHKEM(X25519, HKDF-SHA256)`.
pub(crate) const KEM_X25519_HKDF_SHA256: u16 = 0x0020;
/// `HKDF-SHA256`.
pub(crate) const KDF_HKDF_SHA256: u16 = 0x0001;
/// Length of an X25519 public key, and so of `enc`.
pub(crate) const N_PK: usize = 32;
/// Length of the KEM's shared secret and of an HKDF-SHA256 output.
const N_H: usize = 32;
/// Nonce length of both AEADs.
const N_N: usize = 12;
/// Tag length of both AEADs.
pub(crate) const N_T: usize = 16;

const VERSION_LABEL: &[u8] = b"HPKE-v1";
const KEM_SUITE_ID: [u8; 5] = [b'K', b'E', b'M', 0x00, 0x20];

/// The AEADs this project offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aead {
    /// `AES-128-GCM` (0x0001).
    Aes128Gcm,
    /// `ChaCha20Poly1305` (0x0003).
    ChaCha20Poly1305,
}

impl Aead {
    /// The IANA identifier.
    pub fn id(self) -> u16 {
        match self {
            Self::Aes128Gcm => 0x0001,
            Self::ChaCha20Poly1305 => 0x0003,
        }
    }

    /// The AEAD with this identifier, if we offer it.
    pub fn from_id(id: u16) -> Option<Self> {
        match id {
            0x0001 => Some(Self::Aes128Gcm),
            0x0003 => Some(Self::ChaCha20Poly1305),
            _ => None,
        }
    }

    /// Key length.
    pub fn n_k(self) -> usize {
        match self {
            Self::Aes128Gcm => 16,
            Self::ChaCha20Poly1305 => 32,
        }
    }

    /// Nonce length.
    pub fn n_n(self) -> usize {
        N_N
    }

    fn algorithm(self) -> &'static aead::Algorithm {
        match self {
            Self::Aes128Gcm => &aead::AES_128_GCM,
            Self::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        }
    }

    /// An AEAD key from `key` (which must be [`Aead::n_k`] bytes).
    pub(crate) fn key(self, key: &[u8]) -> Result<aead::LessSafeKey> {
        let unbound =
            aead::UnboundKey::new(self.algorithm(), key).map_err(|_| Error::InvalidKey)?;
        Ok(aead::LessSafeKey::new(unbound))
    }
}

/// `HKDF-Extract(salt, ikm)`, which RFC 5869 defines as `HMAC(salt, ikm)`;
/// `ikm` comes in pieces so that labelled inputs need no buffer.
pub(crate) fn extract(salt: &[u8], ikm: &[&[u8]]) -> Zeroizing<[u8; N_H]> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, salt);
    let mut ctx = hmac::Context::with_key(&key);
    for piece in ikm {
        ctx.update(piece);
    }
    let mut out = Zeroizing::new([0u8; N_H]);
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

/// A PRK ready for several `HKDF-Expand`s: its HMAC key is set up once.
pub(crate) struct Prk(hmac::Key);

impl Prk {
    pub(crate) fn new(prk: &[u8; N_H]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, prk))
    }

    /// `HKDF-Expand(prk, info, out.len())`, `info` in pieces. Every output
    /// here is at most one hash long, where RFC 5869 §2.3 reduces Expand to
    /// `T(1) = HMAC(prk, info || 0x01)`; longer ones are refused.
    pub(crate) fn expand(&self, info: &[&[u8]], out: &mut [u8]) -> Result<()> {
        if out.len() > N_H {
            return Err(Error::CryptoFailure);
        }
        let mut ctx = hmac::Context::with_key(&self.0);
        for piece in info {
            ctx.update(piece);
        }
        ctx.update(&[1]);
        out.copy_from_slice(&ctx.sign().as_ref()[..out.len()]);
        Ok(())
    }
}

fn labeled_extract(suite_id: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> Zeroizing<[u8; N_H]> {
    extract(salt, &[VERSION_LABEL, suite_id, label, ikm])
}

fn labeled_expand(
    suite_id: &[u8],
    prk: &Prk,
    label: &[u8],
    info: &[&[u8]],
    out: &mut [u8],
) -> Result<()> {
    let len = u16::try_from(out.len())
        .map_err(|_| Error::CryptoFailure)?
        .to_be_bytes();
    match *info {
        [] => prk.expand(&[&len, VERSION_LABEL, suite_id, label], out),
        [a] => prk.expand(&[&len, VERSION_LABEL, suite_id, label, a], out),
        [a, b] => prk.expand(&[&len, VERSION_LABEL, suite_id, label, a, b], out),
        _ => Err(Error::CryptoFailure),
    }
}

/// An X25519 key pair; the public key is kept, never re-derived.
pub(crate) struct KeyPair {
    private: agreement::PrivateKey,
    public: [u8; N_PK],
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &hex::encode(self.public))
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// `DeriveKeyPair(ikm)` of RFC 9180 §7.1.3.
    pub(crate) fn derive(ikm: &[u8]) -> Result<Self> {
        let dkp_prk = Prk::new(&labeled_extract(&KEM_SUITE_ID, b"", b"dkp_prk", ikm));
        let mut sk = Zeroizing::new([0u8; N_PK]);
        labeled_expand(&KEM_SUITE_ID, &dkp_prk, b"sk", &[], &mut sk[..])?;
        Self::from_private(&sk[..])
    }

    /// A key pair for a private key's 32 bytes.
    pub(crate) fn from_private(sk: &[u8]) -> Result<Self> {
        let private = agreement::PrivateKey::from_private_key(&agreement::X25519, sk)
            .map_err(|_| Error::InvalidKey)?;
        Self::complete(private)
    }

    /// A fresh random key pair (an ephemeral key). Any 32 bytes are an
    /// X25519 private key; they come from the operating system's generator
    /// ([`fill_random`]), never from a user-space one that a forked process
    /// or a restored VM snapshot would repeat.
    pub(crate) fn generate() -> Result<Self> {
        let mut sk = Zeroizing::new([0u8; N_PK]);
        fill_random(&mut sk[..])?;
        Self::from_private(&sk[..])
    }

    fn complete(private: agreement::PrivateKey) -> Result<Self> {
        let public = private
            .compute_public_key()
            .map_err(|_| Error::InvalidKey)?
            .as_ref()
            .try_into()
            .map_err(|_| Error::InvalidKey)?;
        Ok(Self { private, public })
    }

    /// The public key.
    pub(crate) fn public_key(&self) -> &[u8; N_PK] {
        &self.public
    }

    /// `DH(sk, pk)`; the all-zero output (a low-order `pk`) is refused, as
    /// RFC 9180 §7.1.4 requires.
    fn dh(&self, pk: &[u8]) -> Result<Zeroizing<[u8; N_PK]>> {
        let peer = agreement::UnparsedPublicKey::new(&agreement::X25519, pk);
        let shared = agreement::agree(&self.private, peer, Error::InvalidKey, |dh| {
            let mut out = Zeroizing::new([0u8; N_PK]);
            if dh.len() != N_PK {
                return Err(Error::InvalidKey);
            }
            out.copy_from_slice(dh);
            Ok(out)
        })?;
        // Without an early exit on secret bytes (aws-lc refuses this
        // output already; the check stays as RFC 9180 asks for it).
        if shared.iter().fold(0u8, |acc, &b| acc | b) == 0 {
            return Err(Error::InvalidKey);
        }
        Ok(shared)
    }
}

/// Seals `buf[from..]` in place under `key` and `nonce`, and appends the tag:
/// HPKE's `Seal` and OHTTP's response sealing both end here.
pub(crate) fn seal_in_place_append(
    key: &aead::LessSafeKey,
    nonce: aead::Nonce,
    aad: &[u8],
    buf: &mut Vec<u8>,
    from: usize,
) -> Result<()> {
    let tag = key
        .seal_in_place_separate_tag(nonce, aead::Aad::from(aad), &mut buf[from..])
        .map_err(|_| Error::CryptoFailure)?;
    buf.extend_from_slice(tag.as_ref());
    Ok(())
}

/// Opens `ct` (ciphertext, then tag) under `key` and `nonce`: the plaintext,
/// or [`Error::DecryptionFailed`].
pub(crate) fn open_to_vec(
    key: &aead::LessSafeKey,
    nonce: aead::Nonce,
    aad: &[u8],
    ct: &[u8],
) -> Result<Vec<u8>> {
    let mut buf = ct.to_vec();
    let len = key
        .open_in_place(nonce, aead::Aad::from(aad), &mut buf)
        .map_err(|_| Error::DecryptionFailed)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

/// Fills `out` from the operating system's generator (`getrandom(2)` on
/// Linux): one system call, and safe across `fork` and VM snapshots, which a
/// user-space generator seeded once is not (docs/decisions.md).
pub(crate) fn fill_random(out: &mut [u8]) -> Result<()> {
    getrandom::fill(out).map_err(|_| Error::CryptoFailure)
}

/// `ExtractAndExpand(dh, enc || pkR)` of RFC 9180 §4.1.
fn shared_secret(dh: &[u8], enc: &[u8], pk_r: &[u8]) -> Result<Zeroizing<[u8; N_H]>> {
    let eae_prk = Prk::new(&labeled_extract(&KEM_SUITE_ID, b"", b"eae_prk", dh));
    let mut out = Zeroizing::new([0u8; N_H]);
    labeled_expand(
        &KEM_SUITE_ID,
        &eae_prk,
        b"shared_secret",
        &[enc, pk_r],
        &mut out[..],
    )?;
    Ok(out)
}

/// What a base-mode key schedule needs besides the shared secret: the suite
/// and `key_schedule_context` (RFC 9180 §5.1), which depend only on the
/// suite and the `info` string, so are computed once per key configuration.
#[derive(Clone)]
pub(crate) struct Schedule {
    aead: Aead,
    suite_id: [u8; 10],
    context: [u8; 1 + 2 * N_H],
}

impl std::fmt::Debug for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schedule")
            .field("aead", &self.aead)
            .finish_non_exhaustive()
    }
}

impl Schedule {
    /// The schedule for `aead` and `info`, in base mode (no PSK).
    pub(crate) fn new(aead: Aead, info: &[u8]) -> Self {
        let mut suite_id = [0u8; 10];
        suite_id[..4].copy_from_slice(b"HPKE");
        suite_id[4..6].copy_from_slice(&KEM_X25519_HKDF_SHA256.to_be_bytes());
        suite_id[6..8].copy_from_slice(&KDF_HKDF_SHA256.to_be_bytes());
        suite_id[8..].copy_from_slice(&aead.id().to_be_bytes());
        let psk_id_hash = labeled_extract(&suite_id, b"", b"psk_id_hash", b"");
        let info_hash = labeled_extract(&suite_id, b"", b"info_hash", info);
        let mut context = [0u8; 1 + 2 * N_H]; // mode_base = 0
        context[1..1 + N_H].copy_from_slice(&psk_id_hash[..]);
        context[1 + N_H..].copy_from_slice(&info_hash[..]);
        Self {
            aead,
            suite_id,
            context,
        }
    }

    /// The AEAD.
    pub(crate) fn aead(&self) -> Aead {
        self.aead
    }

    /// `KeySchedule(mode_base, shared_secret, info, "", "")`.
    fn context_for(&self, shared_secret: &[u8]) -> Result<Context> {
        let secret = Prk::new(&labeled_extract(
            &self.suite_id,
            shared_secret,
            b"secret",
            b"",
        ));
        let context: &[&[u8]] = &[&self.context];
        let mut key = Zeroizing::new([0u8; 32]);
        let key = &mut key[..self.aead.n_k()];
        labeled_expand(&self.suite_id, &secret, b"key", context, key)?;
        let mut base_nonce = [0u8; N_N];
        labeled_expand(
            &self.suite_id,
            &secret,
            b"base_nonce",
            context,
            &mut base_nonce,
        )?;
        let mut exporter_secret = Zeroizing::new([0u8; N_H]);
        labeled_expand(
            &self.suite_id,
            &secret,
            b"exp",
            context,
            &mut exporter_secret[..],
        )?;
        Ok(Context {
            key: self.aead.key(key)?,
            #[cfg(test)]
            raw_key: key.to_vec(),
            base_nonce,
            exporter_secret,
            suite_id: self.suite_id,
            seq: 0,
        })
    }

    /// `SetupBaseR(enc, skR, info)`: the recipient's context.
    pub(crate) fn receiver(&self, key: &KeyPair, enc: &[u8]) -> Result<Context> {
        if enc.len() != N_PK {
            return Err(Error::InvalidKey);
        }
        let dh = key.dh(enc)?;
        self.context_for(&shared_secret(&dh[..], enc, &key.public)?[..])
    }

    /// `SetupBaseS(pkR, info)` with the ephemeral key `ephemeral`: `enc` and
    /// the sender's context.
    pub(crate) fn sender(
        &self,
        pk_r: &[u8; N_PK],
        ephemeral: &KeyPair,
    ) -> Result<([u8; N_PK], Context)> {
        let dh = ephemeral.dh(pk_r)?;
        let enc = ephemeral.public;
        let ctx = self.context_for(&shared_secret(&dh[..], &enc, pk_r)?[..])?;
        Ok((enc, ctx))
    }
}

/// An HPKE encryption context (RFC 9180 §5.2): seals or opens messages in
/// sequence, and exports secrets.
pub(crate) struct Context {
    key: aead::LessSafeKey,
    #[cfg(test)]
    raw_key: Vec<u8>,
    base_nonce: [u8; N_N],
    exporter_secret: Zeroizing<[u8; N_H]>,
    suite_id: [u8; 10],
    seq: u64,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// The nonce for the current sequence number (`base_nonce XOR seq`).
    /// The sequence advances only once a message is sealed or opened
    /// ([`Context::advance`]), as RFC 9180 §5.2 requires: a forged
    /// ciphertext must not desynchronise the context.
    fn current_nonce(&self) -> Result<aead::Nonce> {
        // RFC 9180 §5.2: the last sequence number is never used.
        if self.seq == u64::MAX {
            return Err(Error::CryptoFailure);
        }
        let mut nonce = self.base_nonce;
        for (n, s) in nonce[N_N - 8..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        Ok(aead::Nonce::assume_unique_for_key(nonce))
    }

    fn advance(&mut self) {
        // `current_nonce` refused u64::MAX, so this cannot overflow.
        self.seq = self.seq.saturating_add(1);
    }

    /// `Seal(aad, pt)`: the ciphertext with its tag.
    #[cfg(test)]
    pub(crate) fn seal(&mut self, aad: &[u8], pt: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(pt.len() + N_T);
        out.extend_from_slice(pt);
        self.seal_append(aad, &mut out, 0)?;
        Ok(out)
    }

    /// Seals `buf[from..]` in place and appends the tag.
    pub(crate) fn seal_append(&mut self, aad: &[u8], buf: &mut Vec<u8>, from: usize) -> Result<()> {
        let nonce = self.current_nonce()?;
        seal_in_place_append(&self.key, nonce, aad, buf, from)?;
        self.advance();
        Ok(())
    }

    /// `Open(aad, ct)`: the plaintext, or [`Error::DecryptionFailed`] (and
    /// then the sequence number is unchanged).
    pub(crate) fn open(&mut self, aad: &[u8], ct: &[u8]) -> Result<Vec<u8>> {
        if ct.len() < N_T {
            return Err(Error::DecryptionFailed);
        }
        let nonce = self.current_nonce()?;
        let pt = open_to_vec(&self.key, nonce, aad, ct)?;
        self.advance();
        Ok(pt)
    }

    /// `Export(exporter_context, out.len())`.
    pub(crate) fn export(&self, exporter_context: &[u8], out: &mut [u8]) -> Result<()> {
        labeled_expand(
            &self.suite_id,
            &Prk::new(&self.exporter_secret),
            b"sec",
            &[exporter_context],
            out,
        )
    }
}

#[cfg(test)]
mod tests;
