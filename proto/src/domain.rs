//! Domain names as identifiers and DNS need them: A-labels (UTS 46, STD3
//! rules) within the DNS length rules, each broken rule its own error. Used
//! by identifiers and by MIMI URIs alike.

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};

use crate::error::{Error, Result};

/// The longest DNS name, in octets, without the root dot.
pub const MAX_NAME_LEN: usize = 253;

/// The longest DNS label, in octets.
pub const MAX_LABEL_LEN: usize = 63;

/// Lower-cases and converts a domain to A-labels (UTS 46, STD3 rules), then
/// checks the DNS length rules with a typed error for each.
pub fn normalise_domain(input: &str) -> Result<String> {
    if input.is_empty() {
        return Err(Error::EmptyLabel);
    }
    // Length rules are checked below so each gets its own error.
    let ascii = Uts46::new()
        .to_ascii(
            input.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::CheckFirstLast,
            DnsLength::Ignore,
        )
        .map_err(|_| Error::InvalidIdna)?;
    check_dns_lengths(&ascii)?;
    Ok(ascii.into_owned())
}

/// Checks a dotted name (no root dot) against the DNS length rules.
pub fn check_dns_lengths(name: &str) -> Result<()> {
    for label in name.split('.') {
        if label.is_empty() {
            return Err(Error::EmptyLabel);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(Error::LabelTooLong);
        }
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Error::NameTooLong);
    }
    Ok(())
}
