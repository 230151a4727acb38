//! MIMI identifiers and the DNS names they are looked up at (DESIGN §2).
//!
//! Three kinds are accepted: a MIMI handle (`alice.example.com`), an email
//! address (`alice@example.com`) and an E.164 number (`+1 555 123 4567`).
//! Parsing normalises first (lower case and IDNA A-labels for names; digits
//! only for numbers) so that every later step sees one spelling.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::query::SearchIdentifierType;

pub use crate::domain::{MAX_LABEL_LEN, MAX_NAME_LEN, check_dns_lengths, normalise_domain};

/// The longest email local part, in octets (RFC 5321 §4.5.3.1.1).
pub const MAX_LOCAL_PART_LEN: usize = 64;
/// The label under which MIMI records live.
pub const MIMI_LABEL: &str = "_mimi";
/// The label under which a domain publishes its mapping authorities (DESIGN §11).
pub const AUTHORITY_LABEL: &str = "_mimi-authority";

/// A normalised MIMI identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identifier {
    /// A hostname-like MIMI handle, in lower-case A-labels.
    Handle(String),
    /// An email address: the local part as given, the domain in lower-case A-labels.
    Email {
        /// The part before `@`, unchanged (RFC 7929 hashes it as given).
        local: String,
        /// The domain, normalised.
        domain: String,
    },
    /// An E.164 number: `+` and 8 to 15 digits.
    Phone(String),
}

impl Identifier {
    /// Parses and normalises an identifier as a user typed it.
    ///
    /// A leading `+` makes it a phone number, an `@` an email address, and
    /// anything else a handle.
    ///
    /// Every length limit is checked on the normalised form, including that
    /// of the DNS name it is looked up at ([`Identifier::dns_name`]).
    pub fn parse(input: &str) -> Result<Self> {
        let id = Self::parse_form(input)?;
        check_dns_lengths(id.dns_name().trim_end_matches('.'))?;
        Ok(id)
    }

    fn parse_form(input: &str) -> Result<Self> {
        let input = input.trim();
        if input.is_empty() {
            return Err(Error::EmptyIdentifier);
        }
        if input.starts_with('+') {
            return parse_phone(input);
        }
        if let Some((local, domain)) = input.rsplit_once('@') {
            return parse_email(local, domain);
        }
        if looks_like_a_local_phone_number(input) {
            return Err(Error::PhoneMissingPlus);
        }
        let name = normalise_domain(input)?;
        // Again on the normalised name: code points that normalisation drops
        // (U+034F, found by fuzzing) must not let a number pass as a handle
        // that would not parse again.
        if looks_like_a_local_phone_number(&name) {
            return Err(Error::PhoneMissingPlus);
        }
        if !name.contains('.') {
            return Err(Error::SingleLabelHandle);
        }
        Ok(Self::Handle(name))
    }

    /// The MIMI search type used in the identifierQuery (DESIGN §5).
    pub fn search_type(&self) -> SearchIdentifierType {
        match self {
            Self::Handle(_) => SearchIdentifierType::Handle,
            Self::Email { .. } => SearchIdentifierType::Email,
            Self::Phone(_) => SearchIdentifierType::Phone,
        }
    }

    /// The TXT name to query in step 1, fully qualified (ends in `.`).
    pub fn dns_name(&self) -> String {
        match self {
            Self::Handle(name) => format!("{MIMI_LABEL}.{name}."),
            Self::Email { local, domain } => {
                let digest = Sha256::digest(local.as_bytes());
                format!("{}.{MIMI_LABEL}.{domain}.", hex::encode(&digest[..28]))
            }
            Self::Phone(number) => {
                let mut name = String::with_capacity(MIMI_LABEL.len() + 2 * number.len() + 10);
                name.push_str(MIMI_LABEL);
                for digit in number[1..].chars().rev() {
                    name.push('.');
                    name.push(digit);
                }
                name.push_str(".e164.arpa.");
                name
            }
        }
    }

    /// The domain whose mapping authorities speak for this identifier
    /// (DESIGN §11): a handle's name without its first label, an email
    /// address's domain; a phone number has none (its authorities come
    /// from a trust store).
    pub fn authority_domain(&self) -> Option<&str> {
        match self {
            Self::Handle(name) => name.split_once('.').map(|(_, rest)| rest),
            Self::Email { domain, .. } => Some(domain),
            Self::Phone(_) => None,
        }
    }

    /// The TXT name where the identifier's domain publishes its mapping
    /// authorities' keys, fully qualified: `_mimi-authority.<domain>.`. A
    /// phone number gets `_mimi-authority.e164.arpa.`, asked only so that
    /// every lookup makes the same DNS queries; its answer is not trusted.
    pub fn authority_dns_name(&self) -> String {
        let domain = self.authority_domain().unwrap_or("e164.arpa");
        format!("{AUTHORITY_LABEL}.{domain}.")
    }

    /// The kind as a word, for display.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Handle(_) => "handle",
            Self::Email { .. } => "email",
            Self::Phone(_) => "phone",
        }
    }
}

/// The normalised identifier: the value sent as `searchValue` (DESIGN §2, §5).
impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Handle(name) => f.write_str(name),
            Self::Email { local, domain } => write!(f, "{local}@{domain}"),
            Self::Phone(number) => f.write_str(number),
        }
    }
}

impl std::str::FromStr for Identifier {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// A phone number without its country code: digits and separators only,
/// starting with a digit, at least seven digits.
fn looks_like_a_local_phone_number(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_digit() || " -.()".contains(c))
        && s.chars().filter(char::is_ascii_digit).count() >= 7
}

fn parse_phone(input: &str) -> Result<Identifier> {
    let rest = input.strip_prefix('+').ok_or(Error::PhoneMissingPlus)?;
    let mut number = String::with_capacity(16);
    number.push('+');
    for c in rest.chars() {
        match c {
            '0'..='9' => number.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return Err(Error::PhoneInvalidCharacter),
        }
    }
    let digits = number.len() - 1;
    if !(8..=15).contains(&digits) {
        return Err(Error::PhoneDigitCount(digits));
    }
    Ok(Identifier::Phone(number))
}

fn parse_email(local: &str, domain: &str) -> Result<Identifier> {
    if local.is_empty() {
        return Err(Error::EmptyLocalPart);
    }
    if local.len() > MAX_LOCAL_PART_LEN {
        return Err(Error::LocalPartTooLong);
    }
    if local.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::InvalidLocalPart);
    }
    let domain = normalise_domain(domain)?;
    Ok(Identifier::Email {
        local: local.to_owned(),
        domain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Identifier> {
        Identifier::parse(s)
    }

    #[test]
    fn handle_is_lowercased_and_queried_under_mimi() {
        let id = parse("Alice.Example.COM").unwrap();
        assert_eq!(id, Identifier::Handle("alice.example.com".into()));
        assert_eq!(id.dns_name(), "_mimi.alice.example.com.");
        assert_eq!(id.search_type(), SearchIdentifierType::Handle);
        assert_eq!(id.to_string(), "alice.example.com");
    }

    #[test]
    fn handle_is_converted_to_a_labels() {
        let id = parse("bücher.example").unwrap();
        assert_eq!(id.to_string(), "xn--bcher-kva.example");
        let id = parse("BÜCHER.example").unwrap();
        assert_eq!(id.to_string(), "xn--bcher-kva.example");
    }

    #[test]
    fn handle_rejects() {
        assert_eq!(parse(""), Err(Error::EmptyIdentifier));
        assert_eq!(parse("   "), Err(Error::EmptyIdentifier));
        assert_eq!(parse("alice"), Err(Error::SingleLabelHandle));
        assert_eq!(parse("alice..example.com"), Err(Error::EmptyLabel));
        assert_eq!(parse(".alice.example.com"), Err(Error::EmptyLabel));
        assert_eq!(parse("alice.example.com."), Err(Error::EmptyLabel));
        let long_label = format!("{}.example.com", "a".repeat(64));
        assert_eq!(parse(&long_label), Err(Error::LabelTooLong));
        let ok_label = format!("{}.example.com", "a".repeat(63));
        assert!(parse(&ok_label).is_ok());
        let long_name = ["a".repeat(63).as_str(); 4].join(".") + ".com";
        assert!(long_name.len() > 253);
        assert_eq!(parse(&long_name), Err(Error::NameTooLong));
        assert_eq!(parse("ali ce.example.com"), Err(Error::InvalidIdna));
        assert_eq!(parse("alice_x.example.com"), Err(Error::InvalidIdna));
        assert_eq!(parse("-alice.example.com"), Err(Error::InvalidIdna));
        assert_eq!(parse("xn--a.example"), Err(Error::InvalidIdna));
    }

    /// Found by fuzzing: a code point that normalisation drops made digits
    /// pass as a handle whose normalised form then read as a phone number
    /// without its `+`.
    #[test]
    fn normalisation_cannot_turn_a_number_into_a_handle() {
        let input = format!("4\u{34f}{}.{}", "4".repeat(55), "4".repeat(31));
        assert_eq!(parse(&input), Err(Error::PhoneMissingPlus));
    }

    #[test]
    fn the_dns_name_must_fit_too() {
        // A 250-octet domain is a valid name, but `_mimi.` before it is not.
        let domain = ["a".repeat(62).as_str(); 4].join(".");
        assert_eq!(domain.len(), 251);
        assert!(normalise_domain(&domain).is_ok());
        assert_eq!(parse(&domain), Err(Error::NameTooLong));
        assert_eq!(parse(&format!("a@{domain}")), Err(Error::NameTooLong));
        let short = ["a".repeat(62).as_str(); 2].join(".");
        assert!(parse(&format!("a@{short}")).is_ok());
    }

    #[test]
    fn email_hashes_the_local_part() {
        let id = parse("alice@Example.com").unwrap();
        assert_eq!(
            id,
            Identifier::Email {
                local: "alice".into(),
                domain: "example.com".into()
            }
        );
        assert_eq!(id.to_string(), "alice@example.com");
        assert_eq!(id.search_type(), SearchIdentifierType::Email);
        // SHA-256("alice"), first 28 bytes, as RFC 7929 does.
        let full = "2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90";
        assert_eq!(id.dns_name(), format!("{}._mimi.example.com.", &full[..56]));
    }

    #[test]
    fn email_local_part_is_not_lowercased() {
        let a = parse("Alice@example.com").unwrap();
        let b = parse("alice@example.com").unwrap();
        assert_ne!(a.dns_name(), b.dns_name());
    }

    #[test]
    fn email_rejects() {
        assert_eq!(parse("@example.com"), Err(Error::EmptyLocalPart));
        let long = format!("{}@example.com", "a".repeat(65));
        assert_eq!(parse(&long), Err(Error::LocalPartTooLong));
        assert_eq!(
            parse("al\u{7}ice@example.com"),
            Err(Error::InvalidLocalPart)
        );
        assert_eq!(parse("al ice@example.com"), Err(Error::InvalidLocalPart));
        assert_eq!(parse("alice@"), Err(Error::EmptyLabel));
        assert_eq!(parse("alice@exa..mple"), Err(Error::EmptyLabel));
    }

    #[test]
    fn phone_keeps_digits_in_enum_order() {
        let id = parse("+1 555 123 4567").unwrap();
        assert_eq!(id, Identifier::Phone("+15551234567".into()));
        assert_eq!(id.dns_name(), "_mimi.7.6.5.4.3.2.1.5.5.5.1.e164.arpa.");
        assert_eq!(id.search_type(), SearchIdentifierType::Phone);
        assert_eq!(
            parse("+1 (555) 123-45.67").unwrap().to_string(),
            "+15551234567"
        );
    }

    #[test]
    fn phone_rejects() {
        assert_eq!(parse("+1234567"), Err(Error::PhoneDigitCount(7)));
        assert!(parse("+12345678").is_ok());
        assert!(parse("+123456789012345").is_ok());
        assert_eq!(parse("+1234567890123456"), Err(Error::PhoneDigitCount(16)));
        assert_eq!(parse("+1 555 CALL NOW"), Err(Error::PhoneInvalidCharacter));
        assert_eq!(parse("555 123 4567"), Err(Error::PhoneMissingPlus));
    }
}
