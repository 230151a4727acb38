//! The `PrivateToken` HTTP authentication scheme (RFC 9577 §2.1, §2.2):
//! `WWW-Authenticate: PrivateToken challenge="…", token-key="…"` and
//! `Authorization: PrivateToken token="…"`, values in base64url. We write
//! them quoted and unpadded; we read quoted or bare, padded or not.

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};

use crate::codec::Codec;
use crate::error::{Error, Result};

use super::wire::{Token, TokenChallenge};

const SCHEME: &str = "PrivateToken";

/// base64url without padding.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// base64url, padded or not.
pub fn from_b64url(text: &str) -> Result<Vec<u8>> {
    let text = text.trim();
    URL_SAFE_NO_PAD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .map_err(|_| Error::MalformedAuthHeader)
}

/// The `WWW-Authenticate` value for `challenge` and the issuer's key (SPKI).
pub fn www_authenticate(challenge: &TokenChallenge, token_key: &[u8]) -> Result<String> {
    Ok(format!(
        "{SCHEME} challenge=\"{}\", token-key=\"{}\"",
        b64url(&challenge.to_bytes()?),
        b64url(token_key)
    ))
}

/// What one `PrivateToken` challenge carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The decoded challenge.
    pub challenge: TokenChallenge,
    /// The issuer's key (SPKI), if given.
    pub token_key: Option<Vec<u8>>,
}

/// Parses a `WWW-Authenticate` value holding one `PrivateToken` challenge.
pub fn parse_www_authenticate(value: &str) -> Result<Challenge> {
    let params = params_of(value)?;
    let challenge = params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("challenge"))
        .ok_or(Error::MalformedAuthHeader)?;
    let challenge = TokenChallenge::from_bytes(&from_b64url(&challenge.1)?)?;
    let token_key = params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("token-key"))
        .map(|(_, v)| from_b64url(v))
        .transpose()?;
    Ok(Challenge {
        challenge,
        token_key,
    })
}

/// The `Authorization` value presenting `token`.
pub fn authorization(token: &Token) -> Result<String> {
    Ok(format!("{SCHEME} token=\"{}\"", b64url(&token.to_bytes()?)))
}

/// The token in an `Authorization: PrivateToken token=…` value.
pub fn parse_authorization(value: &str) -> Result<Token> {
    let params = params_of(value)?;
    let token = params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("token"))
        .ok_or(Error::MalformedAuthHeader)?;
    Token::from_bytes(&from_b64url(&token.1)?)
}

/// The auth-params after the `PrivateToken` scheme name.
fn params_of(value: &str) -> Result<Vec<(String, String)>> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').ok_or(Error::MalformedAuthHeader)?;
    if !scheme.eq_ignore_ascii_case(SCHEME) || value.len() > 4096 {
        return Err(Error::MalformedAuthHeader);
    }
    let mut params = Vec::new();
    for part in rest.split(',') {
        let (k, v) = part.split_once('=').ok_or(Error::MalformedAuthHeader)?;
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        params.push((k.trim().to_owned(), v.to_owned()));
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_tolerate_padding_and_bare_values() {
        let c = TokenChallenge::standard("p.example");
        let v = www_authenticate(&c, b"key").unwrap();
        let parsed = parse_www_authenticate(&v).unwrap();
        assert_eq!(parsed.challenge, c);
        assert_eq!(parsed.token_key.as_deref(), Some(&b"key"[..]));
        let bare = format!(
            "PrivateToken challenge={}, token-key={}",
            URL_SAFE.encode(c.to_bytes().unwrap()),
            URL_SAFE.encode(b"key")
        );
        assert_eq!(parse_www_authenticate(&bare).unwrap(), parsed);
        for bad in ["", "Basic abc", "PrivateToken", "PrivateToken challenge=!!"] {
            assert!(parse_www_authenticate(bad).is_err(), "{bad}");
        }
        let token = Token {
            nonce: [1; 32],
            challenge_digest: [2; 32],
            token_key_id: [3; 32],
            authenticator: [4; super::super::NK],
        };
        let a = authorization(&token).unwrap();
        assert!(a.starts_with("PrivateToken token=\""));
        assert_eq!(parse_authorization(&a).unwrap(), token);
        assert!(parse_authorization("PrivateToken token=\"AAAA\"").is_err());
    }
}
