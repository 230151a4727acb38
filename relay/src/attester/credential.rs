//! Account credentials: a JWT bearer token from the operator's identity
//! provider, verified against a JWKS file (EdDSA or ES256 keys), with
//! `exp` required and, when configured, `iss` and `aud` checked. The
//! account is the token's `sub`.

use std::path::Path;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::error::{Error, Result};

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

/// The keys credentials are checked against.
pub struct Verifier {
    keys: Vec<(Option<String>, DecodingKey, Algorithm)>,
    issuer: Option<String>,
    audience: Option<String>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Reads a JWKS file: every EdDSA (Ed25519) and ES256 (P-256) key in it.
    pub fn from_jwks_file(
        path: &Path,
        issuer: Option<String>,
        audience: Option<String>,
    ) -> Result<Self> {
        let bad =
            |why: String| Error::Config(format!("attester.jwks_file {}: {why}", path.display()));
        let text = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let set: JwkSet = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            let alg = match &jwk.algorithm {
                jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
                jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(p)
                    if p.curve == jsonwebtoken::jwk::EllipticCurve::P256 =>
                {
                    Algorithm::ES256
                }
                _ => continue,
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| bad(e.to_string()))?;
            keys.push((jwk.common.key_id.clone(), key, alg));
        }
        if keys.is_empty() {
            return Err(bad("no EdDSA or ES256 key".into()));
        }
        Ok(Self {
            keys,
            issuer,
            audience,
        })
    }

    /// The account a bearer credential names, if it verifies.
    pub fn account(&self, credential: &str) -> Result<String> {
        if credential.len() > 8 * 1024 {
            return Err(Error::CredentialInvalid);
        }
        let header =
            jsonwebtoken::decode_header(credential).map_err(|_| Error::CredentialInvalid)?;
        for (kid, key, alg) in &self.keys {
            if header.alg != *alg || (header.kid.is_some() && header.kid != *kid) {
                continue;
            }
            let mut v = Validation::new(*alg);
            v.set_required_spec_claims(&["exp", "sub"]);
            match &self.audience {
                Some(aud) => v.set_audience(&[aud]),
                None => v.validate_aud = false,
            }
            if let Some(iss) = &self.issuer {
                v.set_issuer(&[iss]);
            }
            if let Ok(data) = jsonwebtoken::decode::<Claims>(credential, key, &v) {
                if !data.claims.sub.is_empty() {
                    return Ok(data.claims.sub);
                }
            }
        }
        Err(Error::CredentialInvalid)
    }
}
