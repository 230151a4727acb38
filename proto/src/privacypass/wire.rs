//! The token structures of RFC 9577 §2 and RFC 9578 §6, for token type 2,
//! and the arbitrary batch of draft-ietf-privacypass-batched-tokens §6.
//! Fixed-size fields are arrays, so a decoded value is always well formed.

use sha2::{Digest, Sha256};

use super::{MAX_BATCH, NID, NK, NONCE_LEN, TOKEN_TYPE_BLIND_RSA};
use crate::codec::{Codec, Reader, put_opaque};
use crate::error::{Error, Result};

/// `TokenChallenge` (RFC 9577 §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenChallenge {
    /// The token type.
    pub token_type: u16,
    /// `issuer_name<1..2^16-1>`.
    pub issuer_name: Vec<u8>,
    /// `redemption_context<0..32>`: empty, or 32 bytes.
    pub redemption_context: Vec<u8>,
    /// `origin_info<0..2^16-1>`.
    pub origin_info: Vec<u8>,
}

impl TokenChallenge {
    /// The one challenge our gateways send (DESIGN §10), the same for every
    /// client: type 2, issuer and origin both the provider's `e` host, no
    /// redemption context (nothing per client to link by).
    pub fn standard(host: &str) -> Self {
        Self {
            token_type: TOKEN_TYPE_BLIND_RSA,
            issuer_name: host.as_bytes().to_vec(),
            redemption_context: Vec::new(),
            origin_info: host.as_bytes().to_vec(),
        }
    }

    /// `SHA-256(TokenChallenge)`: what a token is bound to.
    pub fn digest(&self) -> Result<[u8; 32]> {
        Ok(Sha256::digest(self.to_bytes()?).into())
    }
}

fn put_u16_opaque(out: &mut Vec<u8>, bytes: &[u8], what: &'static str) -> Result<()> {
    let len = u16::try_from(bytes.len()).map_err(|_| Error::FieldTooLong(what))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

impl Codec for TokenChallenge {
    const NAME: &'static str = "TokenChallenge";

    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        if self.issuer_name.is_empty() {
            return Err(Error::FieldTooLong("TokenChallenge.issuer_name"));
        }
        if !matches!(self.redemption_context.len(), 0 | 32) {
            return Err(Error::FieldTooLong("TokenChallenge.redemption_context"));
        }
        out.extend_from_slice(&self.token_type.to_be_bytes());
        put_u16_opaque(out, &self.issuer_name, "TokenChallenge.issuer_name")?;
        out.push(self.redemption_context.len() as u8);
        out.extend_from_slice(&self.redemption_context);
        put_u16_opaque(out, &self.origin_info, "TokenChallenge.origin_info")
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let token_type = r.u16(Self::NAME)?;
        let n = usize::from(r.u16(Self::NAME)?);
        let issuer_name = r.take(n, Self::NAME)?.to_vec();
        if issuer_name.is_empty() {
            return Err(Error::Truncated(Self::NAME));
        }
        let n = usize::from(r.u8(Self::NAME)?);
        if !matches!(n, 0 | 32) {
            return Err(Error::BadValue {
                what: "TokenChallenge.redemption_context length",
                value: n as u64,
            });
        }
        let redemption_context = r.take(n, Self::NAME)?.to_vec();
        let n = usize::from(r.u16(Self::NAME)?);
        let origin_info = r.take(n, Self::NAME)?.to_vec();
        Ok(Self {
            token_type,
            issuer_name,
            redemption_context,
            origin_info,
        })
    }
}

fn expect_type(r: &mut Reader<'_>, what: &'static str) -> Result<()> {
    let t = r.u16(what)?;
    if t != TOKEN_TYPE_BLIND_RSA {
        return Err(Error::BadValue {
            what,
            value: u64::from(t),
        });
    }
    Ok(())
}

fn array<const N: usize>(r: &mut Reader<'_>, what: &'static str) -> Result<[u8; N]> {
    let mut out = [0u8; N];
    out.copy_from_slice(r.take(N, what)?);
    Ok(out)
}

/// A type 2 `Token` (RFC 9577 §2.2): what a client presents to the origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The client's random nonce.
    pub nonce: [u8; NONCE_LEN],
    /// `SHA-256(TokenChallenge)`.
    pub challenge_digest: [u8; 32],
    /// `SHA-256` of the issuer key's SPKI.
    pub token_key_id: [u8; NID],
    /// The RSA signature over [`Token::input`].
    pub authenticator: [u8; NK],
}

/// The encoded length of a type 2 token.
pub const TOKEN_LEN: usize = 2 + NONCE_LEN + 32 + NID + NK;

impl Token {
    /// What the authenticator signs: `token_type || nonce ||
    /// challenge_digest || token_key_id`.
    pub fn input(
        nonce: &[u8; NONCE_LEN],
        challenge_digest: &[u8; 32],
        token_key_id: &[u8; NID],
    ) -> [u8; 2 + NONCE_LEN + 32 + NID] {
        let mut out = [0u8; 2 + NONCE_LEN + 32 + NID];
        out[..2].copy_from_slice(&TOKEN_TYPE_BLIND_RSA.to_be_bytes());
        out[2..34].copy_from_slice(nonce);
        out[34..66].copy_from_slice(challenge_digest);
        out[66..].copy_from_slice(token_key_id);
        out
    }
}

impl Codec for Token {
    const NAME: &'static str = "Token";

    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&Self::input(
            &self.nonce,
            &self.challenge_digest,
            &self.token_key_id,
        ));
        out.extend_from_slice(&self.authenticator);
        Ok(())
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        expect_type(r, "Token.token_type")?;
        Ok(Self {
            nonce: array(r, Self::NAME)?,
            challenge_digest: array(r, Self::NAME)?,
            token_key_id: array(r, Self::NAME)?,
            authenticator: array(r, Self::NAME)?,
        })
    }
}

/// A type 2 `TokenRequest` (RFC 9578 §6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The last byte of the token key id.
    pub truncated_token_key_id: u8,
    /// The blinded message.
    pub blinded_msg: [u8; NK],
}

impl Codec for TokenRequest {
    const NAME: &'static str = "TokenRequest";

    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&TOKEN_TYPE_BLIND_RSA.to_be_bytes());
        out.push(self.truncated_token_key_id);
        out.extend_from_slice(&self.blinded_msg);
        Ok(())
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        expect_type(r, "TokenRequest.token_type")?;
        Ok(Self {
            truncated_token_key_id: r.u8(Self::NAME)?,
            blinded_msg: array(r, Self::NAME)?,
        })
    }
}

/// A type 2 `TokenResponse` (RFC 9578 §6.2): the blind signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenResponse {
    /// `blind_sig[Nk]`.
    pub blind_sig: [u8; NK],
}

impl Codec for TokenResponse {
    const NAME: &'static str = "TokenResponse";

    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&self.blind_sig);
        Ok(())
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            blind_sig: array(r, Self::NAME)?,
        })
    }
}

/// `BatchTokenRequest`: `TokenRequest token_requests<V>`, every one of type
/// 2 here, at most [`MAX_BATCH`] of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchTokenRequest {
    /// The requests, in order.
    pub token_requests: Vec<TokenRequest>,
}

impl Codec for BatchTokenRequest {
    const NAME: &'static str = "BatchTokenRequest";

    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        check_batch_len(self.token_requests.len())?;
        crate::codec::put_vector(out, &self.token_requests)
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let token_requests: Vec<TokenRequest> = r.vector()?;
        check_batch_len(token_requests.len())?;
        Ok(Self { token_requests })
    }
}

fn check_batch_len(n: usize) -> Result<()> {
    if (1..=MAX_BATCH).contains(&n) {
        Ok(())
    } else {
        Err(Error::BadValue {
            what: "batch size",
            value: n as u64,
        })
    }
}

/// `BatchTokenResponse`: `OptionalTokenResponse token_responses<V>`, where
/// each is `TokenResponse token_response<V>` (empty: not issued), in the
/// order of the requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchTokenResponse {
    /// One per request; `None` where the issuer issued nothing.
    pub token_responses: Vec<Option<TokenResponse>>,
}

impl Codec for BatchTokenResponse {
    const NAME: &'static str = "BatchTokenResponse";

    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        check_batch_len(self.token_responses.len())?;
        let mut body = Vec::with_capacity(self.token_responses.len() * (NK + 2));
        for r in &self.token_responses {
            match r {
                Some(r) => put_opaque(&mut body, &r.blind_sig)?,
                None => put_opaque(&mut body, &[])?,
            }
        }
        put_opaque(out, &body)
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let mut inner = Reader::new(r.opaque(Self::NAME)?);
        let mut token_responses = Vec::new();
        while !inner.is_empty() {
            let one = inner.opaque("OptionalTokenResponse")?;
            token_responses.push(if one.is_empty() {
                None
            } else {
                Some(crate::codec::decode_all::<TokenResponse>(one)?)
            });
        }
        check_batch_len(token_responses.len())?;
        Ok(Self { token_responses })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_challenge_encodes_exactly() {
        let c = TokenChallenge::standard("p.example");
        let bytes = c.to_bytes().unwrap();
        assert_eq!(
            hex::encode(&bytes),
            "00020009702e6578616d706c65000009702e6578616d706c65"
        );
        assert_eq!(TokenChallenge::from_bytes(&bytes).unwrap(), c);
        // Every truncation is a typed error; so is an extra byte.
        for n in 0..bytes.len() {
            assert!(TokenChallenge::from_bytes(&bytes[..n]).is_err());
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(TokenChallenge::from_bytes(&long).is_err());
    }

    #[test]
    fn tokens_and_batches_round_trip_and_refuse_other_types() {
        let token = Token {
            nonce: [1; 32],
            challenge_digest: [2; 32],
            token_key_id: [3; 32],
            authenticator: [4; NK],
        };
        let bytes = token.to_bytes().unwrap();
        assert_eq!(bytes.len(), TOKEN_LEN);
        assert_eq!(Token::from_bytes(&bytes).unwrap(), token);
        let mut other = bytes.clone();
        other[1] = 1;
        assert!(Token::from_bytes(&other).is_err(), "type 1 is not ours");
        assert!(Token::from_bytes(&bytes[..TOKEN_LEN - 1]).is_err());

        let req = TokenRequest {
            truncated_token_key_id: 7,
            blinded_msg: [9; NK],
        };
        let batch = BatchTokenRequest {
            token_requests: vec![req.clone(), req],
        };
        let b = batch.to_bytes().unwrap();
        assert_eq!(BatchTokenRequest::from_bytes(&b).unwrap(), batch);
        let resp = BatchTokenResponse {
            token_responses: vec![Some(TokenResponse { blind_sig: [5; NK] }), None],
        };
        let b = resp.to_bytes().unwrap();
        assert_eq!(BatchTokenResponse::from_bytes(&b).unwrap(), resp);
        let empty = BatchTokenRequest {
            token_requests: vec![],
        };
        assert!(empty.to_bytes().is_err(), "an empty batch is refused");
        assert!(BatchTokenRequest::from_bytes(&[0]).is_err());
    }
}
