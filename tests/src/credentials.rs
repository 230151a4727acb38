//! An identity provider for the relay as attester (DESIGN §10): an Ed25519
//! key, its JWKS file for the relay, and bearer credentials (JWTs, EdDSA)
//! for the accounts the tests and the demo play.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The key id in the JWKS and in every credential's header.
const KID: &str = "testbed-1";

/// Signs credentials.
pub struct IdentityProvider {
    signer: Ed25519KeyPair,
}

impl std::fmt::Debug for IdentityProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityProvider")
    }
}

impl IdentityProvider {
    /// A fresh key.
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            signer: Ed25519KeyPair::generate()
                .map_err(|_| anyhow::anyhow!("cannot generate an Ed25519 key"))?,
        })
    }

    /// The JWKS document holding the public key.
    pub fn jwks(&self) -> String {
        let x = URL_SAFE_NO_PAD.encode(self.signer.public_key().as_ref());
        format!(
            r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{x}","kid":"{KID}","alg":"EdDSA"}}]}}"#
        )
    }

    /// A credential for account `sub`, valid for `ttl`.
    pub fn credential(&self, sub: &str, ttl: Duration) -> String {
        let header = format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{KID}"}}"#);
        let exp = (SystemTime::now() + ttl)
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = serde_json::json!({ "sub": sub, "exp": exp }).to_string();
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let sig = self.signer.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}
