//! The MIMI directory document served at
//! `/.well-known/mimi-protocol-directory` (DESIGN §5).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The placeholder in the `identifierQuery` URL template.
pub const DOMAIN_PLACEHOLDER: &str = "{domain}";

/// The directory document: where each MIMI endpoint lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryDocument {
    /// The identifierQuery URL template, e.g.
    /// `https://mimi.example/v1/identifierQuery/{domain}`.
    #[serde(rename = "identifierQuery")]
    pub identifier_query: String,
    /// Other endpoints, kept so that nothing is lost in a round trip.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl DirectoryDocument {
    /// The document a provider at `host` (with optional `:port`) serves.
    pub fn for_host(host: &str) -> Self {
        Self {
            identifier_query: format!("https://{host}/v1/identifierQuery/{DOMAIN_PLACEHOLDER}"),
            other: BTreeMap::new(),
        }
    }

    /// Parses the JSON document.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|_| Error::InvalidDirectory)
    }

    /// Serialises the document as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings and JSON values always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The identifierQuery target for `domain`, split into authority and path,
    /// as the inner Binary HTTP request needs them. Only `https` URLs are accepted.
    pub fn identifier_query_target(&self, domain: &str) -> Result<(String, String)> {
        let url = self.identifier_query.replace(DOMAIN_PLACEHOLDER, domain);
        let rest = url
            .strip_prefix("https://")
            .ok_or(Error::InvalidDirectory)?;
        let (authority, path) = rest.split_once('/').ok_or(Error::InvalidDirectory)?;
        if authority.is_empty() || authority.contains('@') {
            return Err(Error::InvalidDirectory);
        }
        Ok((authority.to_owned(), format!("/{path}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_unknown_members() {
        let json = br#"{"identifierQuery":"https://m.example/v1/identifierQuery/{domain}","other":{"x":1}}"#;
        let d = DirectoryDocument::from_json(json).unwrap();
        assert_eq!(d.other.len(), 1);
        assert_eq!(DirectoryDocument::from_json(&d.to_json()).unwrap(), d);
    }

    #[test]
    fn target_for_domain() {
        let d = DirectoryDocument::for_host("m.example:8443");
        assert_eq!(
            d.identifier_query_target("m.example:8443").unwrap(),
            (
                "m.example:8443".into(),
                "/v1/identifierQuery/m.example:8443".into()
            )
        );
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(
            DirectoryDocument::from_json(b"{}"),
            Err(Error::InvalidDirectory)
        );
        assert_eq!(
            DirectoryDocument::from_json(b"[]"),
            Err(Error::InvalidDirectory)
        );
        assert_eq!(
            DirectoryDocument::from_json(br#"{"identifierQuery":5}"#),
            Err(Error::InvalidDirectory)
        );
        let plain =
            DirectoryDocument::from_json(br#"{"identifierQuery":"http://m.example/q/{domain}"}"#)
                .unwrap();
        assert_eq!(
            plain.identifier_query_target("d"),
            Err(Error::InvalidDirectory)
        );
        let userinfo =
            DirectoryDocument::from_json(br#"{"identifierQuery":"https://u@m.example/q"}"#)
                .unwrap();
        assert_eq!(
            userinfo.identifier_query_target("d"),
            Err(Error::InvalidDirectory)
        );
    }
}
