//! Token type 2's cryptography (RFC 9578 §6): RSABSSA-SHA384-PSS-
//! Deterministic (RFC 9474) with 2048-bit keys, on the `blind-rsa-signatures`
//! crate. What is ours: the key id, the strict SPKI check, the token input,
//! and drawing every random value from the operating system.

use std::convert::Infallible;
use std::fmt;

use blind_rsa_signatures::{
    BlindSignature, BlindingResult, KeyPairSha384PSSDeterministic as KeyPair,
    PublicKeySha384PSSDeterministic as PublicKey, SecretKeySha384PSSDeterministic as SecretKey,
};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::wire::{Token, TokenRequest, TokenResponse};
use super::{NID, NK, NONCE_LEN};
use crate::error::{Error, Result};

/// The operating system's generator as the `rand_core` generator the blind
/// signature crate draws from (blinding factors, salts are not drawn in the
/// deterministic variant's... they are: PSS salts too). A failing OS
/// generator cannot be worked around; it stops the process.
struct OsRng;

impl rand_core::TryRng for OsRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> std::result::Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> std::result::Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> std::result::Result<(), Infallible> {
        #[allow(clippy::expect_used)]
        getrandom::fill(dest).expect("the operating system's random generator failed");
        Ok(())
    }
}

impl rand_core::TryCryptoRng for OsRng {}

/// An issuer's public token key: what clients blind to and origins verify
/// with.
#[derive(Clone)]
pub struct TokenKey {
    key: PublicKey,
    spki: Vec<u8>,
    id: [u8; NID],
    /// The modulus and exponent, big-endian, for verification on aws-lc-rs
    /// (about five times faster than the blind-signature crate's own).
    n: Vec<u8>,
    e: Vec<u8>,
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKey")
            .field("id", &hex::encode(self.id))
            .finish()
    }
}

impl PartialEq for TokenKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki == other.spki
    }
}

impl Eq for TokenKey {}

impl TokenKey {
    /// Reads a key as published: a DER SubjectPublicKeyInfo with the
    /// RSASSA-PSS OID and SHA-384 parameters (RFC 9578 §6.5), 2048 bits.
    /// Anything the encoder would not write byte for byte is refused.
    pub fn from_spki(spki: &[u8]) -> Result<Self> {
        let key = PublicKey::from_spki(spki).map_err(|_| Error::InvalidTokenKey)?;
        let again = key.to_spki().map_err(|_| Error::InvalidTokenKey)?;
        if again != spki {
            return Err(Error::InvalidTokenKey);
        }
        Self::new(key)
    }

    fn new(key: PublicKey) -> Result<Self> {
        let spki = key.to_spki().map_err(|_| Error::InvalidTokenKey)?;
        if key.components().n().len() != NK {
            return Err(Error::InvalidTokenKey);
        }
        let id = Sha256::digest(&spki).into();
        // Minimal big-endian (the crate's integers may carry leading zeros,
        // which aws-lc-rs refuses).
        let minimal = |v: Vec<u8>| {
            let first = v.iter().position(|&b| b != 0).unwrap_or(v.len());
            v[first..].to_vec()
        };
        let (n, e) = (minimal(key.components().n()), minimal(key.components().e()));
        Ok(Self {
            key,
            spki,
            id,
            n,
            e,
        })
    }

    /// The SPKI encoding.
    pub fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// `token_key_id`: SHA-256 of the SPKI.
    pub fn id(&self) -> &[u8; NID] {
        &self.id
    }

    /// The last byte of the key id, which a token request carries.
    pub fn truncated_id(&self) -> u8 {
        self.id[NID - 1]
    }

    /// Blinds a fresh token for the challenge whose digest is
    /// `challenge_digest`: the request to send, and what finalises its
    /// answer.
    pub fn blind(&self, challenge_digest: &[u8; 32]) -> Result<(TokenRequest, PendingToken)> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| Error::CryptoFailure)?;
        let input = Token::input(&nonce, challenge_digest, &self.id);
        let blinding = self
            .key
            .blind(&mut OsRng, input)
            .map_err(|_| Error::CryptoFailure)?;
        let blinded_msg: [u8; NK] = blinding
            .blind_message
            .0
            .as_slice()
            .try_into()
            .map_err(|_| Error::CryptoFailure)?;
        Ok((
            TokenRequest {
                truncated_token_key_id: self.truncated_id(),
                blinded_msg,
            },
            PendingToken {
                key: self.clone(),
                nonce,
                challenge_digest: *challenge_digest,
                blinding,
            },
        ))
    }

    /// Checks a token's signature under this key (and that it names this
    /// key). Says nothing about the challenge or whether it was spent.
    ///
    /// A type 2 token's authenticator is a plain RSASSA-PSS signature
    /// (SHA-384, MGF1-SHA-384, 48-byte salt: RFC 9474 §4.5), which
    /// aws-lc-rs verifies as such.
    pub fn verify(&self, token: &Token) -> Result<()> {
        use aws_lc_rs::signature::{RSA_PSS_2048_8192_SHA384, RsaPublicKeyComponents};
        if token.token_key_id != self.id {
            return Err(Error::TokenInvalid);
        }
        let input = Token::input(&token.nonce, &token.challenge_digest, &token.token_key_id);
        RsaPublicKeyComponents {
            n: &self.n[..],
            e: &self.e[..],
        }
        .verify(&RSA_PSS_2048_8192_SHA384, &input, &token.authenticator)
        .map_err(|_| Error::TokenInvalid)
    }
}

/// A token request's client-side state: the nonce and the blinding secret.
pub struct PendingToken {
    key: TokenKey,
    nonce: [u8; NONCE_LEN],
    challenge_digest: [u8; 32],
    blinding: BlindingResult,
}

impl fmt::Debug for PendingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PendingToken")
    }
}

impl PendingToken {
    /// Unblinds the issuer's answer into a token, verified before it is
    /// returned (an issuer's bad signature is [`Error::TokenInvalid`]).
    pub fn finalize(self, response: &TokenResponse) -> Result<Token> {
        let input = Token::input(&self.nonce, &self.challenge_digest, self.key.id());
        let sig = self
            .key
            .key
            .finalize(
                &BlindSignature(response.blind_sig.to_vec()),
                &self.blinding,
                input,
            )
            .map_err(|_| Error::TokenInvalid)?;
        let authenticator: [u8; NK] = sig
            .0
            .as_slice()
            .try_into()
            .map_err(|_| Error::TokenInvalid)?;
        let token = Token {
            nonce: self.nonce,
            challenge_digest: self.challenge_digest,
            token_key_id: *self.key.id(),
            authenticator,
        };
        self.key.verify(&token)?;
        Ok(token)
    }
}

/// An issuer's private token key.
pub struct IssuerKey {
    secret: SecretKey,
    public: TokenKey,
}

impl fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl IssuerKey {
    /// A fresh 2048-bit key (this takes a fraction of a second).
    pub fn generate() -> Result<Self> {
        let pair = KeyPair::generate(&mut OsRng, NK * 8).map_err(|_| Error::CryptoFailure)?;
        Ok(Self {
            public: TokenKey::new(pair.pk)?,
            secret: pair.sk,
        })
    }

    /// Reads a PKCS#8 (or PKCS#1) PEM private key of 2048 bits.
    pub fn from_pem(pem: &str) -> Result<Self> {
        let secret = SecretKey::from_pem(pem).map_err(|_| Error::InvalidTokenKey)?;
        let public = TokenKey::new(secret.public_key().map_err(|_| Error::InvalidTokenKey)?)?;
        Ok(Self { secret, public })
    }

    /// The PKCS#8 PEM encoding, wiped from memory when dropped.
    pub fn to_pem(&self) -> Result<Zeroizing<String>> {
        self.secret
            .to_pem()
            .map(Zeroizing::new)
            .map_err(|_| Error::CryptoFailure)
    }

    /// The public key.
    pub fn public(&self) -> &TokenKey {
        &self.public
    }

    /// Signs one blinded message (RFC 9578 §6.3). A request for another key
    /// (its truncated id) is [`Error::InvalidTokenKey`].
    pub fn issue(&self, request: &TokenRequest) -> Result<TokenResponse> {
        if request.truncated_token_key_id != self.public.truncated_id() {
            return Err(Error::InvalidTokenKey);
        }
        let sig = self
            .secret
            .blind_sign_with_rng(&mut OsRng, request.blinded_msg)
            .map_err(|_| Error::CryptoFailure)?;
        let blind_sig = sig
            .0
            .as_slice()
            .try_into()
            .map_err(|_| Error::CryptoFailure)?;
        Ok(TokenResponse { blind_sig })
    }
}

#[cfg(test)]
mod tests;
