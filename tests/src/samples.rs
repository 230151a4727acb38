//! The sample world: two providers, the people on them, and the DNS records
//! that list them.

use mimi_proto::Identifier;
use mimi_proto::mapping::{AuthoritySigner, Mapping};

/// A provider in the testbed.
#[derive(Debug, Clone, Copy)]
pub struct ProviderSpec {
    /// Short name.
    pub name: &'static str,
    /// Its discovery host (`e=`).
    pub host: &'static str,
    /// The loopback address it listens on.
    pub ip: [u8; 4],
    /// Directory entries: identifier, account, searchable.
    pub entries: &'static [(&'static str, &'static str, bool)],
}

/// The providers.
pub const PROVIDERS: [ProviderSpec; 2] = [
    ProviderSpec {
        name: "alpha",
        host: "mimi.alpha.example",
        ip: [127, 0, 0, 4],
        entries: &[
            ("alice.example.com", "mimi://alpha.example/u/alice", true),
            ("bob.example.com", "mimi://alpha.example/u/bob", true),
            ("carol.example.com", "mimi://alpha.example/u/carol", false),
            ("+15550109999", "mimi://alpha.example/u/phoebe", true),
            (
                "ivan.insecure.example.com",
                "mimi://alpha.example/u/ivan",
                true,
            ),
            (
                "mallory.example.com",
                "mimi://alpha.example/u/mallory",
                true,
            ),
            (
                "olga.forged.example.com",
                "mimi://alpha.example/u/olga",
                true,
            ),
        ],
    },
    ProviderSpec {
        name: "beta",
        host: "mimi.beta.example",
        ip: [127, 0, 0, 5],
        entries: &[
            ("alice.example.com", "mimi://beta.example/u/alice.b", true),
            ("erin.example.com", "mimi://beta.example/u/erin", true),
            ("frank@example.com", "mimi://beta.example/u/frank", true),
            ("trent.example.com", "mimi://beta.example/u/trent", true),
        ],
    },
];

/// The relay's address, the client's and the DNS server's.
pub const RELAY_IP: [u8; 4] = [127, 0, 0, 3];
/// The client's address.
pub const CLIENT_IP: [u8; 4] = [127, 0, 0, 2];
/// The DNS server's address.
pub const DNS_IP: [u8; 4] = [127, 0, 0, 6];
/// The validating resolver behind the DNS gateway.
pub const RESOLVER_IP: [u8; 4] = [127, 0, 0, 11];

/// What discovering a sample should give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// These accounts, in provider preference order.
    Found(&'static [&'static str]),
    /// Listed providers, but none has a searchable account.
    NotFound,
    /// The name exists but has no MIMI record.
    NoRecord,
    /// The DNS answer fails DNSSEC validation: refused, nothing sent.
    Bogus,
    /// The provider named an account whose signed mapping is invalid
    /// (DESIGN §11): nothing is shown as found.
    Invalid,
}

/// A sample identifier.
#[derive(Debug, Clone)]
pub struct Sample {
    /// As a user would type it.
    pub input: &'static str,
    /// What it shows.
    pub what: &'static str,
    /// The expected result.
    pub expect: Expect,
}

/// The samples the demo runs.
pub fn samples() -> Vec<Sample> {
    vec![
        Sample {
            input: "alice.example.com",
            what: "on two providers",
            expect: Expect::Found(&[
                "mimi://alpha.example/u/alice",
                "mimi://beta.example/u/alice.b",
            ]),
        },
        Sample {
            input: "bob.example.com",
            what: "on one provider",
            expect: Expect::Found(&["mimi://alpha.example/u/bob"]),
        },
        Sample {
            input: "carol.example.com",
            what: "present but not searchable",
            expect: Expect::NotFound,
        },
        Sample {
            input: "dave.example.com",
            what: "no MIMI record",
            expect: Expect::NoRecord,
        },
        Sample {
            input: "erin.example.com",
            what: "a malformed record next to a good one",
            expect: Expect::Found(&["mimi://beta.example/u/erin"]),
        },
        Sample {
            input: "frank@example.com",
            what: "an email address",
            expect: Expect::Found(&["mimi://beta.example/u/frank"]),
        },
        Sample {
            input: "+1 555 010 9999",
            what: "a phone number",
            expect: Expect::Found(&["mimi://alpha.example/u/phoebe"]),
        },
        Sample {
            input: "ivan.insecure.example.com",
            what: "an unsigned zone (DNSSEC insecure)",
            expect: Expect::Found(&["mimi://alpha.example/u/ivan"]),
        },
        Sample {
            input: "mallory.example.com",
            what: "a record changed after signing",
            expect: Expect::Bogus,
        },
        Sample {
            input: "trent.example.com",
            what: "a mapping signed with a forged key",
            expect: Expect::Invalid,
        },
    ]
}

/// The mapping authority of `example.com` (DESIGN §11): its key is
/// published at `_mimi-authority.example.com` in the signed zone, and it
/// signed alpha's mappings of `example.com` identifiers.
pub fn example_authority() -> AuthoritySigner {
    signer("example.com", 0x11)
}

/// The phone-number authority the client trusts through its trust store
/// ([`trust_store`]); it signed phoebe's number.
pub fn numbers_authority() -> AuthoritySigner {
    signer("numbers.testbed.example", 0x22)
}

/// A key nobody published, used in `example.com`'s name: by beta for
/// trent's mapping, and in the forged `_mimi-authority.forged.example.com`
/// record.
pub fn forger() -> AuthoritySigner {
    signer("example.com", 0x33)
}

fn signer(name: &str, byte: u8) -> AuthoritySigner {
    // A fixed seed: the testbed's worlds are reproducible. Never in production.
    AuthoritySigner::from_seed(name, &[byte; 32]).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The client's trust store in the sample world: the phone-number
/// authority, for numbers only.
pub fn trust_store() -> String {
    format!(
        "# Mapping authorities trusted beside those domains publish.\n{}; scope=+\n",
        numbers_authority().public_key()
    )
}

/// How long the sample world's assertions are valid.
pub const ASSERTION_LIFETIME_SECS: u64 = 30 * 86_400;

/// The assertion a provider's directory holds for an entry, if any: who
/// signs what is part of the sample world.
pub fn assertion_for(provider: &ProviderSpec, identifier: &str, account: &str) -> Option<Vec<u8>> {
    let id = Identifier::parse(identifier).ok()?;
    let signer = match (provider.name, &id) {
        (_, Identifier::Phone(_)) => numbers_authority(),
        ("beta", _) if identifier == "trent.example.com" => forger(),
        ("beta", _) => return None,
        (_, _) if identifier.ends_with(".forged.example.com") => forger(),
        (_, _) => example_authority(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mapping = Mapping {
        identifier: id.to_string(),
        account: account.to_owned(),
        provider: provider.host.to_owned(),
    };
    signer
        .sign(&mapping, now, now + ASSERTION_LIFETIME_SECS)
        .ok()
}

/// Names whose TXT record is changed after their zone was signed, with the
/// text that replaces it: their signatures no longer match (bogus).
pub fn tampered() -> Vec<(&'static str, String)> {
    vec![
        (TAMPERED, "v=MIMI1; e=mimi.attacker.example".to_owned()),
        // An attacker publishing its own key for a domain it does not own.
        (TAMPERED_AUTHORITY, {
            let mut forged = forger().public_key();
            forged.name = "example.com".into();
            forged.to_string()
        }),
    ]
}

/// The host of the hostile provider's gateway, when a world has one
/// (`Setup::tagging_gateway`).
pub const HOSTILE_PROVIDER_HOST: &str = "mimi.evil.example";

/// Identifiers only the hostile provider lists (the attack tests of signed
/// mappings tell it what to answer for each).
pub const LIED_ABOUT: [&str; 8] = [
    "swap.example.com",
    "sigforge.example.com",
    "copied.example.com",
    "expired.example.com",
    "bare.example.com",
    "old.rotating.example.com",
    "new.rotating.example.com",
    "old.rotated.example.com",
];

/// A domain's authority keys during a rotation: the old and the new key,
/// both published at `_mimi-authority.rotating.example.com`; after it, only
/// the new one at `_mimi-authority.rotated.example.com`.
pub fn rotation_keys(domain: &str) -> (AuthoritySigner, AuthoritySigner) {
    (signer(domain, 0x44), signer(domain, 0x55))
}

/// The TXT name whose record is changed after its zone was signed, for the
/// forged-answer tests: its signature no longer matches (see [`tampered`]).
pub const TAMPERED: &str = "_mimi.mallory.example.com.";

/// The authority record changed after signing (see [`tampered`]).
pub const TAMPERED_AUTHORITY: &str = "_mimi-authority.forged.example.com.";

fn record(p: u16, provider: &ProviderSpec) -> String {
    format!("v=MIMI1; p={p}; e={}; s={}", provider.host, provider.name)
}

fn name_of(input: &str) -> String {
    Identifier::parse(input)
        .map(|i| i.dns_name())
        .unwrap_or_default()
}

/// The unsigned zone delegated from `example.com.` (DNSSEC: insecure).
pub const INSECURE_ZONE: &str = "insecure.example.com.";

/// The zones: signed `example.com.` and `e164.arpa.`, and an unsigned
/// delegation below `example.com.`; names fully qualified.
pub fn zones() -> Vec<crate::dns::Zone> {
    let [alpha, beta] = &PROVIDERS;
    let mut example = vec![
        (name_of("alice.example.com"), record(10, alpha)),
        (name_of("alice.example.com"), record(20, beta)),
        (name_of("bob.example.com"), record(10, alpha)),
        (name_of("carol.example.com"), record(10, alpha)),
        (name_of("dave.example.com"), "v=spf1 -all".to_owned()),
        (
            name_of("erin.example.com"),
            "v=MIMI1; p=5; s=broken".to_owned(),
        ),
        (name_of("erin.example.com"), record(10, beta)),
        (name_of("frank@example.com"), record(10, beta)),
        (name_of("trent.example.com"), record(10, beta)),
        (name_of("olga.forged.example.com"), record(10, alpha)),
        // The domain's mapping authority (DESIGN §11).
        (
            "_mimi-authority.example.com.".to_owned(),
            example_authority().public_key().to_string(),
        ),
        // A rotation under way, and done (DESIGN §11).
        (
            "_mimi-authority.rotating.example.com.".to_owned(),
            rotation_keys("rotating.example.com")
                .0
                .public_key()
                .to_string(),
        ),
        (
            "_mimi-authority.rotating.example.com.".to_owned(),
            rotation_keys("rotating.example.com")
                .1
                .public_key()
                .to_string(),
        ),
        (
            "_mimi-authority.rotated.example.com.".to_owned(),
            rotation_keys("rotated.example.com")
                .1
                .public_key()
                .to_string(),
        ),
        // Signed with the real key, then changed to the forger's.
        (
            TAMPERED_AUTHORITY.to_owned(),
            example_authority().public_key().to_string(),
        ),
        // Signed with bob's record, then changed to name an attacker's provider.
        (TAMPERED.to_owned(), record(10, alpha)),
    ];
    example.extend(record_count_names());
    example.extend(LIED_ABOUT.iter().map(|id| {
        (
            name_of(id),
            format!("v=MIMI1; p=10; e={HOSTILE_PROVIDER_HOST}; s=evil"),
        )
    }));
    let e164 = vec![(name_of("+1 555 010 9999"), record(10, alpha))];
    let insecure = vec![
        (name_of("ivan.insecure.example.com"), record(10, alpha)),
        // A real key, but in an unsigned zone: not trusted.
        (
            "_mimi-authority.insecure.example.com.".to_owned(),
            example_authority().public_key().to_string(),
        ),
    ];
    let zone = |origin: &str, records: Vec<(String, String)>, signed| {
        // The tampered records of this zone: changed after signing.
        let tampered = tampered()
            .into_iter()
            .filter(|(name, _)| records.iter().any(|(n, _)| n == name))
            .map(|(name, text)| (name.to_owned(), text))
            .collect();
        crate::dns::Zone {
            origin: origin.to_owned(),
            records,
            signed,
            tampered,
        }
    };
    vec![
        zone("example.com.", example, true),
        zone("e164.arpa.", e164, true),
        zone(INSECURE_ZONE, insecure, false),
    ]
}

/// The longest MIMI record the padding is documented to cover, in octets
/// (16 of them fit the response bucket: DESIGN §4, `MIN_PADDED_RESPONSE_LEN`).
pub const LONGEST_RECORD: usize = 400;

/// The name that holds `k` MIMI records (for the padding tests: 0 to 16).
pub fn record_count_name(k: usize) -> String {
    format!("_mimi.r{k}.sizes.example.com.")
}

/// `k` records of [`LONGEST_RECORD`] octets at [`record_count_name`]`(k)`,
/// for k = 1 to 16, each naming a provider no relay serves; and one name
/// with no MIMI record (k = 0).
fn record_count_names() -> Vec<(String, String)> {
    let mut out = vec![(record_count_name(0), "v=spf1 -all".to_owned())];
    for k in 1..=16 {
        for i in 0..k {
            let mut text = format!("v=MIMI1; p={i}; e=mimi.p{i}.sizes.example; s=p{i}; x=");
            // An unknown tag fills the record to the documented longest.
            text.push_str(&"f".repeat(LONGEST_RECORD - text.len()));
            out.push((record_count_name(k), text));
        }
    }
    out
}
