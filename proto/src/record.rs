//! The MIMI TXT record of step 1 (DESIGN §3):
//! `v=MIMI1; p=10; e=mimi.provider.example; s=provider`.

use std::fmt;

use crate::error::{Error, RecordProblem, Result};
use crate::identifier::check_dns_lengths;
use crate::query::MimiUri;

/// The version tag value this crate understands.
pub const VERSION: &str = "MIMI1";
/// The longest service label.
pub const MAX_SERVICE_LEN: usize = 32;

/// One provider, as listed in a user's DNS zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MimiRecord {
    /// `p`: lower is preferred, as with MX. Default 0.
    pub preference: u16,
    /// `e`: the provider's discovery host, with an optional port.
    pub endpoint: Endpoint,
    /// `s`: a short label for display.
    pub service: Option<String>,
    /// `a`: an account the user published openly (no step 2 needed).
    pub account: Option<MimiUri>,
}

/// A discovery host and optional port, as in `e=host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// The host name, lower-case ASCII.
    pub host: String,
    /// The port, if not the default for HTTPS.
    pub port: Option<u16>,
}

impl Endpoint {
    /// Parses `host[:port]`: a lower-cased LDH host name of at least one label,
    /// and a port in 1..=65535. No scheme, path, user info or IP literal.
    pub fn parse(s: &str) -> Option<Self> {
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) => {
                let port: u16 = p.parse().ok().filter(|p| *p != 0)?;
                if !p.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (h, Some(port))
            }
            None => (s, None),
        };
        let host = host.to_ascii_lowercase();
        check_dns_lengths(&host).ok()?;
        let ldh = |l: &str| {
            l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !host.split('.').all(ldh) {
            return None;
        }
        // An all-numeric last label would make an IPv4 literal look like a name.
        if host.rsplit('.').next()?.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Self { host, port })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

impl MimiRecord {
    /// Parses one TXT record from its character-strings (concatenated first).
    ///
    /// Returns `Ok(None)` for a record that is not a MIMI record (its first tag
    /// is not `v=MIMI1`), so other TXT records at the name are ignored, and
    /// [`Error::InvalidRecord`] for a MIMI record that breaks a rule.
    pub fn parse<S: AsRef<[u8]>>(strings: &[S]) -> Result<Option<Self>> {
        let raw: Vec<u8> = strings
            .iter()
            .flat_map(|s| s.as_ref().iter().copied())
            .collect();
        Self::parse_text(&raw)
    }

    /// Parses the concatenated text of one TXT record.
    pub fn parse_text(raw: &[u8]) -> Result<Option<Self>> {
        let invalid = |problem| Error::InvalidRecord {
            text: String::from_utf8_lossy(raw).into_owned(),
            problem,
        };
        let Some(text) = versioned(raw, VERSION).map_err(invalid)? else {
            return Ok(None);
        };
        let [p, e, s, a] = tag_values(text, ["p", "e", "s", "a"]).map_err(invalid)?;

        let preference = match p {
            None => 0,
            Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse()
                .map_err(|_| invalid(RecordProblem::BadPreference))?,
            Some(_) => return Err(invalid(RecordProblem::BadPreference)),
        };
        let endpoint = e.ok_or_else(|| invalid(RecordProblem::MissingEndpoint))?;
        let endpoint =
            Endpoint::parse(endpoint).ok_or_else(|| invalid(RecordProblem::BadEndpoint))?;
        let service = match s {
            None => None,
            Some(s) if is_service_label(s) => Some(s.to_owned()),
            Some(_) => return Err(invalid(RecordProblem::BadService)),
        };
        let account = match a {
            None => None,
            Some(a) => Some(MimiUri::parse(a).map_err(|_| invalid(RecordProblem::BadAccount))?),
        };
        Ok(Some(Self {
            preference,
            endpoint,
            service,
            account,
        }))
    }

    /// Splits [`Display`](fmt::Display) output into TXT character-strings of at
    /// most 255 octets each.
    pub fn to_character_strings(&self) -> Vec<Vec<u8>> {
        self.to_string()
            .into_bytes()
            .chunks(255)
            .map(<[u8]>::to_vec)
            .collect()
    }
}

/// Formats the record as it is published: `v=MIMI1; p=…; e=…[; s=…][; a=…]`.
impl fmt::Display for MimiRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v={VERSION}; p={}; e={}", self.preference, self.endpoint)?;
        if let Some(s) = &self.service {
            write!(f, "; s={s}")?;
        }
        if let Some(a) = &self.account {
            write!(f, "; a={a}")?;
        }
        Ok(())
    }
}

/// The text of a tagged TXT record (`v=<version>; tag=value; …`) whose first
/// tag is `v=<version>`: `Ok(None)` for any other record (the name may hold
/// other TXT records, which may hold anything), an error for one of ours
/// that is not UTF-8.
pub(crate) fn versioned<'a>(
    raw: &'a [u8],
    version: &str,
) -> std::result::Result<Option<&'a str>, RecordProblem> {
    // Decide whether it is ours before insisting on UTF-8.
    let first = raw.split(|&b| b == b';').map(trim_blanks).next();
    let Some(found) = first.unwrap_or_default().strip_prefix(b"v=") else {
        return Ok(None);
    };
    if trim_blanks(found) != version.as_bytes() {
        return Ok(None);
    }
    std::str::from_utf8(raw)
        .map(Some)
        .map_err(|_| RecordProblem::NotUtf8)
}

/// The values of the tags `names` after the version tag, trimmed: unknown
/// tags are ignored; a tag without `=`, a tag name that is not lower case,
/// a second `v` or any repeated tag is a problem.
pub(crate) fn tag_values<'a, const N: usize>(
    text: &'a str,
    names: [&str; N],
) -> std::result::Result<[Option<&'a str>; N], RecordProblem> {
    let mut values = [None; N];
    for tag in text.split(';').skip(1).map(str::trim) {
        if tag.is_empty() {
            continue;
        }
        let (name, value) = tag.split_once('=').ok_or(RecordProblem::MissingEquals)?;
        let (name, value) = (name.trim(), value.trim());
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(RecordProblem::BadTagName);
        }
        if name == "v" {
            return Err(RecordProblem::RepeatedTag("v".into()));
        }
        let Some(i) = names.iter().position(|n| *n == name) else {
            continue; // unknown tags are ignored
        };
        if values[i].replace(value).is_some() {
            return Err(RecordProblem::RepeatedTag(name.into()));
        }
    }
    Ok(values)
}

fn is_service_label(s: &str) -> bool {
    (1..=MAX_SERVICE_LEN).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn trim_blanks(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Orders records by preference, lowest first; equal preferences keep the
/// order they were returned in (a stable sort).
pub fn sort_by_preference(records: &mut [MimiRecord]) {
    records.sort_by_key(|r| r.preference);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Option<MimiRecord>> {
        MimiRecord::parse(&[s])
    }

    fn problem(s: &str) -> RecordProblem {
        match parse(s) {
            Err(Error::InvalidRecord { text, problem }) => {
                assert_eq!(text, s, "the warning keeps the record text");
                problem
            }
            other => panic!("{s:?} gave {other:?}"),
        }
    }

    /// Found by fuzzing: an account URI whose domain has Unicode labels
    /// fits the limit as given but not in A-labels, so it parsed yet could
    /// not be written back. Every length is checked on the normalised form.
    #[test]
    fn an_account_too_long_in_a_labels_is_refused() {
        let raw = hex::decode("763d4d494d49313b20653d6d7a323b3b20613d6d696d693a2f2f6dcc9a2e616c2e616c6dcc9a2e616c696d2e6578cf9a696d2e65cc9a2e616c696d2e6578cf9a696d2e65cc9a2e616868686868686868686868d292784e4e4e4e4e4e4e4e4e4e6dcc9a2e616c696d2e6578cf9a696d2e65cc9a2e616c696d2e6578cf9a696d2e65cc9a2e616868686868686868686868d292784e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e6c696d2e6578cf9a696d2e65652f752f616c6963653b20783d79").unwrap();
        match MimiRecord::parse_text(&raw) {
            Ok(Some(rec)) => {
                let again = MimiRecord::parse_text(rec.to_string().as_bytes());
                assert_eq!(again, Ok(Some(rec)), "a parsed record must parse again");
            }
            Ok(None) => panic!("the record is a MIMI record"),
            Err(_) => {}
        }
        assert!(
            matches!(
                MimiRecord::parse_text(&raw),
                Err(Error::InvalidRecord {
                    problem: RecordProblem::BadAccount,
                    ..
                })
            ),
            "{:?}",
            MimiRecord::parse_text(&raw)
        );
    }

    #[test]
    fn parses_the_design_example() {
        let r = parse("v=MIMI1; p=10; e=mimi.provider.example; s=provider")
            .unwrap()
            .unwrap();
        assert_eq!(r.preference, 10);
        assert_eq!(r.endpoint.host, "mimi.provider.example");
        assert_eq!(r.endpoint.port, None);
        assert_eq!(r.service.as_deref(), Some("provider"));
        assert_eq!(r.account, None);
        assert_eq!(
            r.to_string(),
            "v=MIMI1; p=10; e=mimi.provider.example; s=provider"
        );
    }

    #[test]
    fn character_strings_are_concatenated() {
        let r = MimiRecord::parse(&["v=MIMI1; p=1; e=mi", "mi.example:8443"])
            .unwrap()
            .unwrap();
        assert_eq!(r.endpoint.to_string(), "mimi.example:8443");
        assert_eq!(r.endpoint.port, Some(8443));
    }

    #[test]
    fn defaults_blanks_unknown_tags_and_case() {
        let r = parse("  v=MIMI1 ;e = Mimi.Example ; x-future=1;;")
            .unwrap()
            .unwrap();
        assert_eq!(r.preference, 0);
        assert_eq!(r.endpoint.host, "mimi.example");
        assert_eq!(r.service, None);
    }

    #[test]
    fn open_account() {
        let r = parse("v=MIMI1; e=m.example; a=mimi://m.example/u/alice")
            .unwrap()
            .unwrap();
        assert_eq!(r.account.unwrap().account, "alice");
    }

    #[test]
    fn other_records_are_ignored() {
        assert_eq!(parse("google-site-verification=abc"), Ok(None));
        assert_eq!(parse("v=spf1 -all"), Ok(None));
        assert_eq!(parse("v=MIMI2; e=m.example"), Ok(None));
        assert_eq!(parse("v=MIMI10; e=m.example"), Ok(None));
        assert_eq!(parse("e=m.example; v=MIMI1"), Ok(None));
        assert_eq!(MimiRecord::parse(&[[0xffu8, 0xfe]]), Ok(None));
        assert_eq!(MimiRecord::parse::<&[u8]>(&[]), Ok(None));
    }

    #[test]
    fn every_reject_reason() {
        assert_eq!(problem("v=MIMI1; s=x"), RecordProblem::MissingEndpoint);
        assert_eq!(
            problem("v=MIMI1; e=a.example; e=b.example"),
            RecordProblem::RepeatedTag("e".into())
        );
        assert_eq!(
            problem("v=MIMI1; v=MIMI1; e=a.example"),
            RecordProblem::RepeatedTag("v".into())
        );
        assert_eq!(
            problem("v=MIMI1; p=1; p=2; e=a.example"),
            RecordProblem::RepeatedTag("p".into())
        );
        assert_eq!(
            problem("v=MIMI1; e=a.example; junk"),
            RecordProblem::MissingEquals
        );
        assert_eq!(problem("v=MIMI1; E=a.example"), RecordProblem::BadTagName);
        assert_eq!(
            problem("v=MIMI1; =x; e=a.example"),
            RecordProblem::BadTagName
        );
        for p in ["65536", "-1", "x", "", "+1", "1.5"] {
            assert_eq!(
                problem(&format!("v=MIMI1; p={p}; e=a.example")),
                RecordProblem::BadPreference
            );
        }
        for e in [
            "https://a.example",
            "a.example/path",
            "a.example:0",
            "a.example:65536",
            "a.example:x",
            "user@a.example",
            "192.0.2.1",
            "[::1]:443",
            "a..example",
            "-a.example",
            "",
        ] {
            assert_eq!(
                problem(&format!("v=MIMI1; e={e}")),
                RecordProblem::BadEndpoint,
                "{e}"
            );
        }
        for s in ["", "Provider", "a_b", &"a".repeat(33)] {
            assert_eq!(
                problem(&format!("v=MIMI1; e=a.example; s={s}")),
                RecordProblem::BadService
            );
        }
        assert_eq!(
            problem("v=MIMI1; e=a.example; a=alice"),
            RecordProblem::BadAccount
        );
        let bad_utf8 = b"v=MIMI1; e=a.example; s=\xff";
        match MimiRecord::parse(&[bad_utf8]) {
            Err(Error::InvalidRecord { problem, .. }) => {
                assert_eq!(problem, RecordProblem::NotUtf8)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn limits_that_are_allowed() {
        assert_eq!(
            parse("v=MIMI1; p=65535; e=a.example")
                .unwrap()
                .unwrap()
                .preference,
            65535
        );
        let s = "a".repeat(32);
        let r = parse(&format!("v=MIMI1; e=a.example; s={s}"))
            .unwrap()
            .unwrap();
        assert_eq!(r.service.unwrap(), s);
        assert!(parse("v=MIMI1; e=localhost").unwrap().is_some());
    }

    #[test]
    fn sorted_by_preference_stable() {
        let mut rs: Vec<MimiRecord> = [
            "p=20; e=c.example",
            "p=10; e=a.example",
            "p=10; e=b.example",
            "e=z.example",
        ]
        .iter()
        .map(|t| parse(&format!("v=MIMI1; {t}")).unwrap().unwrap())
        .collect();
        sort_by_preference(&mut rs);
        let hosts: Vec<_> = rs.iter().map(|r| r.endpoint.host.as_str()).collect();
        assert_eq!(hosts, ["z.example", "a.example", "b.example", "c.example"]);
    }

    #[test]
    fn long_records_split_into_255_octet_strings() {
        let r = parse(&format!(
            "v=MIMI1; e={}.{}.example; a=mimi://m.example/u/{}",
            "h".repeat(60),
            "i".repeat(60),
            "x".repeat(150)
        ))
        .unwrap()
        .unwrap();
        let strings = r.to_character_strings();
        assert!(strings.len() >= 2);
        assert!(strings.iter().all(|s| s.len() <= 255));
        assert_eq!(MimiRecord::parse(&strings).unwrap().unwrap(), r);
    }
}
