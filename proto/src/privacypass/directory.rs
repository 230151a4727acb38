//! The issuer directory (RFC 9578 §4): where token requests go, and the
//! issuer's token keys with the moment each may be used from.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One token key in the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenKeyEntry {
    /// The token type (2).
    #[serde(rename = "token-type")]
    pub token_type: u16,
    /// The key's SPKI, base64url.
    #[serde(rename = "token-key")]
    pub token_key: String,
    /// When clients may start using it (Unix seconds).
    #[serde(
        rename = "not-before",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub not_before: Option<u64>,
}

/// `application/private-token-issuer-directory`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerDirectory {
    /// Where token requests are sent.
    #[serde(rename = "issuer-request-uri")]
    pub issuer_request_uri: String,
    /// The keys, the one to use now first.
    #[serde(rename = "token-keys")]
    pub token_keys: Vec<TokenKeyEntry>,
}

impl IssuerDirectory {
    /// The JSON document.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses the JSON document (at most 64 KiB; at least one key).
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > 64 * 1024 {
            return Err(Error::MalformedIssuerDirectory);
        }
        let dir: Self =
            serde_json::from_slice(bytes).map_err(|_| Error::MalformedIssuerDirectory)?;
        if dir.token_keys.is_empty() {
            return Err(Error::MalformedIssuerDirectory);
        }
        Ok(dir)
    }

    /// The key of type 2 to use at `now`: the newest whose `not-before` has
    /// passed (keys without one count as usable).
    pub fn current_key(&self, now: u64) -> Option<&TokenKeyEntry> {
        self.token_keys
            .iter()
            .filter(|k| k.token_type == super::TOKEN_TYPE_BLIND_RSA)
            .filter(|k| k.not_before.is_none_or(|t| t <= now))
            .max_by_key(|k| k.not_before.unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_reads_as_rfc_9578_writes_it() {
        let text = br#"{"issuer-request-uri":"https://i.example/request","token-keys":[{"token-type":2,"token-key":"AAA","not-before":100},{"token-type":2,"token-key":"BBB","not-before":200}]}"#;
        let dir = IssuerDirectory::from_json(text).unwrap();
        assert_eq!(dir.current_key(150).unwrap().token_key, "AAA");
        assert_eq!(dir.current_key(250).unwrap().token_key, "BBB");
        assert!(dir.current_key(50).is_none());
        assert_eq!(IssuerDirectory::from_json(&dir.to_json()).unwrap(), dir);
        assert!(IssuerDirectory::from_json(b"{}").is_err());
        assert!(
            IssuerDirectory::from_json(br#"{"issuer-request-uri":"x","token-keys":[]}"#).is_err()
        );
    }
}
