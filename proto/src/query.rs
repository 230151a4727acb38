//! The MIMI identifierQuery messages (DESIGN §5, draft-ietf-mimi-protocol
//! "Find internal address"), with strict decoding.

use crate::codec::{Codec, Reader, put_opaque, put_vector};
use crate::error::{Error, Result};

/// ```text
/// enum { reserved(0), handle(1), nick(2), email(3), phone(4), partialName(5),
///        wholeProfile(6), oidcStdClaim(7), vcardField(8), (255) } SearchIdentifierType;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SearchIdentifierType {
    /// A MIMI handle.
    Handle = 1,
    /// A nickname.
    Nick = 2,
    /// An email address.
    Email = 3,
    /// An E.164 phone number.
    Phone = 4,
    /// Part of a display name.
    PartialName = 5,
    /// A whole profile.
    WholeProfile = 6,
    /// An OpenID Connect standard claim (carries `claimName`).
    OidcStdClaim = 7,
    /// A vCard field (carries `propertyName`).
    VcardField = 8,
}

impl SearchIdentifierType {
    /// Maps a wire value to the type; `reserved(0)` and unknown values are errors.
    pub fn from_u8(value: u8) -> Result<Self> {
        Ok(match value {
            1 => Self::Handle,
            2 => Self::Nick,
            3 => Self::Email,
            4 => Self::Phone,
            5 => Self::PartialName,
            6 => Self::WholeProfile,
            7 => Self::OidcStdClaim,
            8 => Self::VcardField,
            _ => {
                return Err(Error::UnknownEnumValue {
                    what: "SearchIdentifierType",
                    value,
                });
            }
        })
    }
}

/// ```text
/// struct { SearchIdentifierType searchType;
///          select(searchType) { case oidcStdClaim: opaque claimName<V>;
///                               case vcardField:  opaque propertyName<V>; };
///          opaque searchValue<V>; } QueryElement;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryElement {
    /// What kind of identifier `search_value` is.
    pub search_type: SearchIdentifierType,
    /// `claimName` for `oidcStdClaim`, `propertyName` for `vcardField`; must be
    /// `None` for every other type.
    pub selector: Option<Vec<u8>>,
    /// The value searched for.
    pub search_value: Vec<u8>,
}

impl Codec for QueryElement {
    const NAME: &'static str = "QueryElement";
    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        out.push(self.search_type as u8);
        let needs_selector = matches!(
            self.search_type,
            SearchIdentifierType::OidcStdClaim | SearchIdentifierType::VcardField
        );
        match (&self.selector, needs_selector) {
            (Some(sel), true) => put_opaque(out, sel)?,
            (None, false) => {}
            // An element the struct cannot express: refuse rather than guess.
            _ => return Err(Error::SelectorMismatch),
        }
        put_opaque(out, &self.search_value)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let search_type = SearchIdentifierType::from_u8(r.u8(Self::NAME)?)?;
        let selector = match search_type {
            SearchIdentifierType::OidcStdClaim | SearchIdentifierType::VcardField => {
                Some(r.opaque(Self::NAME)?.to_vec())
            }
            _ => None,
        };
        let search_value = r.opaque(Self::NAME)?.to_vec();
        Ok(Self {
            search_type,
            selector,
            search_value,
        })
    }
}

/// `struct { uint32 component_id; opaque data<V>; } ComponentData;`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentData {
    /// The component this data belongs to.
    pub component_id: u32,
    /// The component's data.
    pub data: Vec<u8>,
}

impl Codec for ComponentData {
    const NAME: &'static str = "ComponentData";
    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&self.component_id.to_be_bytes());
        put_opaque(out, &self.data)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            component_id: r.u32(Self::NAME)?,
            data: r.opaque(Self::NAME)?.to_vec(),
        })
    }
}

/// `struct { ComponentData component_data<V>; } AppDataDictionary;`
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppDataDictionary {
    /// The entries.
    pub component_data: Vec<ComponentData>,
}

impl Codec for AppDataDictionary {
    const NAME: &'static str = "AppDataDictionary";
    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        put_vector(out, &self.component_data)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            component_data: r.vector()?,
        })
    }
}

/// ```text
/// struct { QueryElement query_elements<V>;
///          AppDataDictionary id_request_extensions; } IdentifierRequest;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentifierRequest {
    /// What to search for.
    pub query_elements: Vec<QueryElement>,
    /// Extensions.
    pub id_request_extensions: AppDataDictionary,
}

impl IdentifierRequest {
    /// The request for one identifier of the given type: the common case.
    pub fn single(search_type: SearchIdentifierType, value: &str) -> Self {
        Self {
            query_elements: vec![QueryElement {
                search_type,
                selector: None,
                search_value: value.as_bytes().to_vec(),
            }],
            id_request_extensions: AppDataDictionary::default(),
        }
    }
}

impl Codec for IdentifierRequest {
    const NAME: &'static str = "IdentifierRequest";
    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        put_vector(out, &self.query_elements)?;
        self.id_request_extensions.encode(out)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            query_elements: r.vector()?,
            id_request_extensions: AppDataDictionary::decode(r)?,
        })
    }
}

/// ```text
/// enum { success(0), notFound(1), ambiguous(2), forbidden(3),
///        unsupportedField(4), (255) } IdentifierQueryCode;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum IdentifierQueryCode {
    /// Found.
    Success = 0,
    /// Nothing found (or not searchable: the two are indistinguishable).
    NotFound = 1,
    /// More than one match where one was expected.
    Ambiguous = 2,
    /// The requester may not ask this.
    Forbidden = 3,
    /// The search type is not supported by this provider.
    UnsupportedField = 4,
}

impl IdentifierQueryCode {
    fn from_u8(value: u8) -> Result<Self> {
        Ok(match value {
            0 => Self::Success,
            1 => Self::NotFound,
            2 => Self::Ambiguous,
            3 => Self::Forbidden,
            4 => Self::UnsupportedField,
            _ => {
                return Err(Error::UnknownEnumValue {
                    what: "IdentifierQueryCode",
                    value,
                });
            }
        })
    }
}

/// `struct { opaque uri<V>; } IdentifierUri;` — held as text: a URI that is
/// not UTF-8 is a decode error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifierUri {
    /// The URI, e.g. `mimi://provider.example/u/alice`.
    pub uri: String,
}

impl Codec for IdentifierUri {
    const NAME: &'static str = "IdentifierUri";
    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        put_opaque(out, self.uri.as_bytes())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let bytes = r.opaque(Self::NAME)?;
        let uri = std::str::from_utf8(bytes).map_err(|_| Error::NotUtf8(Self::NAME))?;
        Ok(Self {
            uri: uri.to_owned(),
        })
    }
}

/// `struct { uint8 fieldSource; opaque fieldName<V>; opaque fieldValue<V>; } ProfileField;`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileField {
    /// Where the field comes from.
    pub field_source: u8,
    /// The field's name.
    pub field_name: Vec<u8>,
    /// The field's value.
    pub field_value: Vec<u8>,
}

impl Codec for ProfileField {
    const NAME: &'static str = "ProfileField";
    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        out.push(self.field_source);
        put_opaque(out, &self.field_name)?;
        put_opaque(out, &self.field_value)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            field_source: r.u8(Self::NAME)?,
            field_name: r.opaque(Self::NAME)?.to_vec(),
            field_value: r.opaque(Self::NAME)?.to_vec(),
        })
    }
}

/// `struct { IdentifierUri stableUri; ProfileField fields<V>; } UserProfile;`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    /// The account's stable URI.
    pub stable_uri: IdentifierUri,
    /// Profile fields the owner chose to publish.
    pub fields: Vec<ProfileField>,
}

impl Codec for UserProfile {
    const NAME: &'static str = "UserProfile";
    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        self.stable_uri.encode(out)?;
        put_vector(out, &self.fields)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            stable_uri: IdentifierUri::decode(r)?,
            fields: r.vector()?,
        })
    }
}

/// ```text
/// struct { IdentifierQueryCode responseCode; IdentifierUri uri<V>;
///          UserProfile foundProfiles<V>;
///          AppDataDictionary id_response_extensions; } IdentifierResponse;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifierResponse {
    /// The outcome.
    pub response_code: IdentifierQueryCode,
    /// The accounts found.
    pub uri: Vec<IdentifierUri>,
    /// Their profiles.
    pub found_profiles: Vec<UserProfile>,
    /// Extensions.
    pub id_response_extensions: AppDataDictionary,
}

impl IdentifierResponse {
    /// A response with only a code.
    pub fn with_code(response_code: IdentifierQueryCode) -> Self {
        Self {
            response_code,
            uri: Vec::new(),
            found_profiles: Vec::new(),
            id_response_extensions: AppDataDictionary::default(),
        }
    }
}

impl Codec for IdentifierResponse {
    const NAME: &'static str = "IdentifierResponse";
    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        out.push(self.response_code as u8);
        put_vector(out, &self.uri)?;
        put_vector(out, &self.found_profiles)?;
        self.id_response_extensions.encode(out)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            response_code: IdentifierQueryCode::from_u8(r.u8(Self::NAME)?)?,
            uri: r.vector()?,
            found_profiles: r.vector()?,
            id_response_extensions: AppDataDictionary::decode(r)?,
        })
    }
}

/// The most accounts a gateway returns for one identifier: every answer up to
/// this many falls in the same padding bucket as an empty one (DESIGN §4).
pub const MAX_ACCOUNTS_PER_IDENTIFIER: usize = 16;

/// The longest account URI, in octets, that a directory holds and a client
/// accepts; with [`MAX_ACCOUNTS_PER_IDENTIFIER`] it bounds an answer's size.
pub const MAX_ACCOUNT_URI_LEN: usize = 200;

/// A MIMI account URI: `mimi://<provider-domain>/u/<account>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MimiUri {
    /// The provider's domain (lower-case A-labels).
    pub domain: String,
    /// The account name on that provider.
    pub account: String,
}

impl MimiUri {
    /// Parses `mimi://<domain>/u/<account>`. The account is one non-empty
    /// path segment of URI unreserved or percent-encoded characters; the
    /// whole URI is at most [`MAX_ACCOUNT_URI_LEN`] octets, as written
    /// back (its domain in A-labels, which may be longer than the text given:
    /// the limit is what the one-size answer relies on).
    pub fn parse(s: &str) -> Result<Self> {
        // A first bound on the text as given keeps normalisation's work small.
        if s.len() > 4 * MAX_ACCOUNT_URI_LEN {
            return Err(Error::InvalidMimiUri);
        }
        let rest = s.strip_prefix("mimi://").ok_or(Error::InvalidMimiUri)?;
        let (domain, account) = rest.split_once("/u/").ok_or(Error::InvalidMimiUri)?;
        let domain = crate::domain::normalise_domain(domain).map_err(|_| Error::InvalidMimiUri)?;
        let ok_char = |c: char| c.is_ascii_alphanumeric() || "-._~%!$&'()*+,;=:@".contains(c);
        if account.is_empty() || !account.chars().all(ok_char) {
            return Err(Error::InvalidMimiUri);
        }
        if "mimi://".len() + domain.len() + "/u/".len() + account.len() > MAX_ACCOUNT_URI_LEN {
            return Err(Error::InvalidMimiUri);
        }
        Ok(Self {
            domain,
            account: account.to_owned(),
        })
    }
}

impl std::fmt::Display for MimiUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "mimi://{}/u/{}", self.domain, self.account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Codec;

    fn found() -> IdentifierResponse {
        IdentifierResponse {
            response_code: IdentifierQueryCode::Success,
            uri: vec![IdentifierUri {
                uri: "mimi://p.example/u/alice".into(),
            }],
            found_profiles: vec![UserProfile {
                stable_uri: IdentifierUri {
                    uri: "mimi://p.example/u/alice".into(),
                },
                fields: vec![ProfileField {
                    field_source: 1,
                    field_name: b"fn".to_vec(),
                    field_value: b"Alice".to_vec(),
                }],
            }],
            id_response_extensions: AppDataDictionary {
                component_data: vec![ComponentData {
                    component_id: 0x0102_0304,
                    data: vec![9, 9],
                }],
            },
        }
    }

    #[test]
    fn request_encoding_is_exact() {
        let req = IdentifierRequest::single(SearchIdentifierType::Handle, "a.b");
        // vector of 5 bytes: type 1, opaque "a.b"; then an empty dictionary.
        assert_eq!(req.to_bytes().unwrap(), [5, 1, 3, b'a', b'.', b'b', 0]);
        assert_eq!(
            IdentifierRequest::from_bytes(&[5, 1, 3, b'a', b'.', b'b', 0]),
            Ok(req)
        );
    }

    #[test]
    fn selector_types_carry_their_name() {
        let req = IdentifierRequest {
            query_elements: vec![QueryElement {
                search_type: SearchIdentifierType::VcardField,
                selector: Some(b"TEL".to_vec()),
                search_value: b"+1".to_vec(),
            }],
            id_request_extensions: AppDataDictionary::default(),
        };
        let bytes = req.to_bytes().unwrap();
        assert_eq!(bytes, [8, 8, 3, b'T', b'E', b'L', 2, b'+', b'1', 0]);
        assert_eq!(IdentifierRequest::from_bytes(&bytes), Ok(req));
    }

    #[test]
    fn response_round_trips() {
        let resp = found();
        let bytes = resp.to_bytes().unwrap();
        assert_eq!(IdentifierResponse::from_bytes(&bytes), Ok(resp));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = found().to_bytes().unwrap();
        bytes.push(0);
        assert_eq!(
            IdentifierResponse::from_bytes(&bytes),
            Err(Error::TrailingBytes("IdentifierResponse"))
        );
        assert_eq!(
            IdentifierRequest::from_bytes(&[0, 0, 0]),
            Err(Error::TrailingBytes("IdentifierRequest"))
        );
    }

    #[test]
    fn truncation_is_refused_at_every_cut() {
        let bytes = found().to_bytes().unwrap();
        for cut in 0..bytes.len() {
            assert!(
                IdentifierResponse::from_bytes(&bytes[..cut]).is_err(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn unknown_enum_values_are_refused() {
        assert_eq!(
            IdentifierRequest::from_bytes(&[2, 0, 0, 0]),
            Err(Error::UnknownEnumValue {
                what: "SearchIdentifierType",
                value: 0
            })
        );
        assert_eq!(
            IdentifierRequest::from_bytes(&[2, 9, 0, 0]),
            Err(Error::UnknownEnumValue {
                what: "SearchIdentifierType",
                value: 9
            })
        );
        assert_eq!(
            IdentifierResponse::from_bytes(&[5, 0, 0, 0]),
            Err(Error::UnknownEnumValue {
                what: "IdentifierQueryCode",
                value: 5
            })
        );
    }

    #[test]
    fn vector_items_must_fill_the_vector_exactly() {
        // Vector says 2 bytes, but the element inside needs 3.
        assert_eq!(
            IdentifierRequest::from_bytes(&[2, 1, 1, b'a', 0]),
            Err(Error::Truncated("QueryElement"))
        );
    }

    #[test]
    fn non_utf8_uri_is_refused() {
        assert_eq!(
            IdentifierResponse::from_bytes(&[0, 2, 1, 0xff, 0, 0]),
            Err(Error::NotUtf8("IdentifierUri"))
        );
    }

    #[test]
    fn non_minimal_length_is_refused() {
        assert_eq!(
            IdentifierRequest::from_bytes(&[0x40, 0x00, 0]),
            Err(Error::VarintNotMinimal)
        );
    }

    #[test]
    fn mimi_uri() {
        let u = MimiUri::parse("mimi://P.example/u/alice").unwrap();
        assert_eq!(u.domain, "p.example");
        assert_eq!(u.account, "alice");
        assert_eq!(u.to_string(), "mimi://p.example/u/alice");
        for bad in [
            "https://p.example/u/alice",
            "mimi://p.example/alice",
            "mimi://p.example/u/",
            "mimi://p.example/u/a/b",
            "mimi://p.example/u/a b",
            "mimi:///u/alice",
        ] {
            assert_eq!(MimiUri::parse(bad), Err(Error::InvalidMimiUri), "{bad}");
        }
    }
}
