use super::*;
use crate::query::{IdentifierQueryCode, IdentifierUri};

const NOW: u64 = 1_800_000_000;

fn signer(name: &str, byte: u8) -> AuthoritySigner {
    AuthoritySigner::from_seed(name, &[byte; 32]).unwrap()
}

fn mapping() -> Mapping {
    Mapping {
        identifier: "alice.example.com".into(),
        account: "mimi://alpha.example/u/alice".into(),
        provider: "mimi.alpha.example".into(),
    }
}

fn providers() -> Vec<String> {
    vec!["mimi.alpha.example".into(), "mimi.beta.example".into()]
}

fn expected<'a>(providers: &'a [String]) -> Expected<'a> {
    Expected {
        identifier: "alice.example.com",
        account: "mimi://alpha.example/u/alice",
        providers,
    }
}

fn signed(s: &AuthoritySigner, m: &Mapping) -> Vec<u8> {
    s.sign(m, NOW - 10, NOW + 3600).unwrap()
}

#[test]
fn rfc8032_seed_gives_the_published_public_key() {
    // RFC 8032 §7.1, TEST 1.
    let seed =
        hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").unwrap();
    let s = AuthoritySigner::from_seed("t.example", &seed.try_into().unwrap()).unwrap();
    assert_eq!(
        hex::encode(s.public_key().key),
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    );
}

#[test]
fn sign_then_decode_gives_the_claims() {
    let s = signer("example.com", 1);
    let bytes = signed(&s, &mapping());
    assert_eq!(bytes[0], 0xd2, "tagged COSE_Sign1 (tag 18)");
    let a = Assertion::decode(&bytes).unwrap();
    assert_eq!(
        a.claims(),
        &Claims {
            authority: "example.com".into(),
            mapping: mapping(),
            issued_at: NOW - 10,
            not_before: None,
            expires_at: NOW + 3600,
        }
    );
    assert!(a.signed_by(&s.public_key()));
    assert!(!a.signed_by(&signer("example.com", 2).public_key()));
}

#[test]
fn verdicts() {
    let s = signer("example.com", 1);
    let trusted = [s.public_key()];
    let p = providers();
    let judge_now =
        |bytes: Option<&[u8]>, trusted: &[AuthorityKey]| judge(bytes, expected(&p), trusted, NOW);
    let good = signed(&s, &mapping());
    assert_eq!(
        judge_now(Some(&good), &trusted),
        Verdict::Verified {
            authority: "example.com".into(),
            expires_at: NOW + 3600
        }
    );
    assert_eq!(
        judge_now(None, &trusted),
        Verdict::Unverified(Unverified::NoAssertion)
    );
    assert_eq!(
        judge_now(Some(&good), &[]),
        Verdict::Unverified(Unverified::NoTrustedKey)
    );
    // A key the domain did not publish, under the domain's authority name.
    let forged = signed(&signer("example.com", 9), &mapping());
    assert_eq!(
        judge_now(Some(&forged), &trusted),
        Verdict::Invalid(Invalid::BadSignature)
    );
    // An authority nobody trusts for this identifier.
    let stranger = signed(&signer("evil.example", 9), &mapping());
    assert_eq!(
        judge_now(Some(&stranger), &trusted),
        Verdict::Invalid(Invalid::UntrustedAuthority("evil.example".into()))
    );
    let other = |f: fn(&mut Mapping)| {
        let mut m = mapping();
        f(&mut m);
        signed(&s, &m)
    };
    assert_eq!(
        judge_now(
            Some(&other(|m| m.identifier = "bob.example.com".into())),
            &trusted
        ),
        Verdict::Invalid(Invalid::OtherIdentifier)
    );
    assert_eq!(
        judge_now(
            Some(&other(|m| m.account = "mimi://alpha.example/u/eve".into())),
            &trusted
        ),
        Verdict::Invalid(Invalid::OtherAccount)
    );
    assert_eq!(
        judge_now(
            Some(&other(|m| m.provider = "mimi.evil.example".into())),
            &trusted
        ),
        Verdict::Invalid(Invalid::OtherProvider)
    );
    // Another listed provider's mapping, served by a distribution point.
    assert!(matches!(
        judge_now(
            Some(&other(|m| m.provider = "mimi.beta.example".into())),
            &trusted
        ),
        Verdict::Verified { .. }
    ));
    let expired = s.sign(&mapping(), NOW - 100, NOW).unwrap();
    assert_eq!(
        judge_now(Some(&expired), &trusted),
        Verdict::Invalid(Invalid::Expired(NOW))
    );
    let early = s.sign(&mapping(), NOW + 1000, NOW + 2000).unwrap();
    assert_eq!(
        judge_now(Some(&early), &trusted),
        Verdict::Invalid(Invalid::NotYetValid(NOW + 1000))
    );
    // Within the clock skew: fine.
    let soon = s.sign(&mapping(), NOW + 100, NOW + 2000).unwrap();
    assert!(matches!(
        judge_now(Some(&soon), &trusted),
        Verdict::Verified { .. }
    ));
    assert!(matches!(
        judge_now(Some(b"junk"), &trusted),
        Verdict::Invalid(Invalid::Malformed(_))
    ));
}

#[test]
fn either_key_of_a_rotation_verifies() {
    let (old, new) = (signer("example.com", 1), signer("example.com", 2));
    let p = providers();
    let both = [old.public_key(), new.public_key()];
    for s in [&old, &new] {
        let a = signed(s, &mapping());
        assert!(matches!(
            judge(Some(&a), expected(&p), &both, NOW),
            Verdict::Verified { .. }
        ));
    }
    // The old record removed: its assertions no longer verify.
    let a = signed(&old, &mapping());
    assert_eq!(
        judge(Some(&a), expected(&p), &[new.public_key()], NOW),
        Verdict::Invalid(Invalid::BadSignature)
    );
}

#[test]
fn the_signature_covers_every_claim() {
    let s = signer("example.com", 1);
    let good = signed(&s, &mapping());
    let p = providers();
    // Flip each byte of the payload and signature in turn (bounded: the
    // assertion is a few hundred bytes): never verified.
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        let v = judge(Some(&bad), expected(&p), &[s.public_key()], NOW);
        assert!(!matches!(v, Verdict::Verified { .. }), "byte {i}: {v:?}");
    }
}

#[test]
fn decoding_is_strict() {
    let s = signer("example.com", 1);
    let good = signed(&s, &mapping());
    for cut in 0..good.len() {
        assert!(Assertion::decode(&good[..cut]).is_err(), "cut {cut}");
    }
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(Assertion::decode(&trailing).is_err());
    // Untagged.
    assert!(Assertion::decode(&good[1..]).is_err());
    // Another algorithm, an extra protected field, a detached payload, an
    // extra claim: each refused.
    let sign1 = CoseSign1::from_tagged_slice(&good).unwrap();
    let rebuilt = |f: &dyn Fn(&mut CoseSign1)| {
        let mut c = sign1.clone();
        f(&mut c);
        c.protected.original_data = None;
        c.to_tagged_vec().unwrap()
    };
    let es256 = rebuilt(&|c| {
        c.protected.header.alg = Some(coset::Algorithm::Assigned(iana::Algorithm::ES256))
    });
    assert!(Assertion::decode(&es256).is_err());
    let crit = rebuilt(&|c| {
        c.protected.header.content_type =
            Some(coset::ContentType::Assigned(iana::CoapContentFormat::Cbor))
    });
    assert!(Assertion::decode(&crit).is_err());
    let detached = rebuilt(&|c| c.payload = None);
    assert!(Assertion::decode(&detached).is_err());
    let with_kid = rebuilt(&|c| c.unprotected.key_id = b"k1".to_vec());
    assert!(Assertion::decode(&with_kid).is_ok());
    let extra = rebuilt(&|c| {
        let mut set = ClaimsSet::from_slice(c.payload.as_deref().unwrap()).unwrap();
        set.audience = Some("x".into());
        c.payload = Some(set.to_vec().unwrap());
    });
    assert_eq!(
        Assertion::decode(&extra).unwrap_err(),
        Error::InvalidAssertion("an unexpected claim")
    );
    let text_time = rebuilt(&|c| {
        let mut set = ClaimsSet::from_slice(c.payload.as_deref().unwrap()).unwrap();
        set.expiration_time = Some(Timestamp::FractionalSeconds(1.5));
        c.payload = Some(set.to_vec().unwrap());
    });
    assert!(Assertion::decode(&text_time).is_err());
    assert!(Assertion::decode(&vec![0; MAX_ASSERTION_LEN + 1]).is_err());
}

#[test]
fn the_longest_mapping_fits() {
    let name = "a".repeat(MAX_AUTHORITY_NAME_LEN);
    let s = signer(&name, 3);
    let label = "d".repeat(63);
    let domain = format!("{label}.{label}.{label}.{}", "d".repeat(61));
    assert_eq!(domain.len(), 253);
    let account_domain = "p.example";
    let account = format!(
        "mimi://{account_domain}/u/{}",
        "x".repeat(crate::query::MAX_ACCOUNT_URI_LEN - 19 - account_domain.len() + 9)
    );
    let account = account[..crate::query::MAX_ACCOUNT_URI_LEN].to_owned();
    // The longest email address that parses (its DNS name must fit too).
    let identifier = (0..domain.len())
        .map(|cut| format!("{}@{}", "l".repeat(64), &domain[cut..]))
        .find(|id| crate::Identifier::parse(id).is_ok())
        .unwrap();
    let m = Mapping {
        identifier,
        account,
        provider: format!("{domain}:65535"),
    };
    let a = s
        .sign(&m, u64::from(u32::MAX), u64::from(u32::MAX) + 1)
        .unwrap();
    assert!(a.len() <= MAX_ASSERTION_LEN, "{}", a.len());
    assert_eq!(Assertion::decode(&a).unwrap().claims().mapping, m);
}

#[test]
fn signing_refuses_what_a_verifier_would_not_match() {
    let s = signer("example.com", 1);
    for (f, why) in [
        (
            (|m: &mut Mapping| m.identifier = "Alice.example.com".into()) as fn(&mut Mapping),
            "the identifier is not normalised",
        ),
        (
            |m| m.account = "mimi://Alpha.example/u/alice".into(),
            "the account is not normalised",
        ),
        (
            |m| m.provider = "https://x".into(),
            "the provider is not a lower-case host with an optional port",
        ),
    ] {
        let mut m = mapping();
        f(&mut m);
        assert_eq!(s.sign(&m, 1, 2).unwrap_err(), Error::InvalidAssertion(why));
    }
    assert!(s.sign(&mapping(), 2, 2).is_err());
    assert_eq!(
        AuthoritySigner::from_seed("Bad Name", &[0; 32]).unwrap_err(),
        Error::InvalidAuthorityName
    );
}

#[test]
fn authority_records() {
    let key = signer("example.com", 1).public_key();
    let text = key.to_string();
    assert!(text.starts_with("v=MIMIA1; n=example.com; k="));
    assert_eq!(
        AuthorityKey::parse_record(text.as_bytes()),
        Ok(Some(key.clone()))
    );
    // Unknown tags are ignored, blanks trimmed.
    let extra = format!("v=MIMIA1;k={} ;x=1; n=example.com", key.key_base64());
    assert_eq!(
        AuthorityKey::parse_record(extra.as_bytes()),
        Ok(Some(key.clone()))
    );
    // Not ours.
    for other in ["v=MIMI1; e=x.example", "v=spf1 -all", "\u{ff}\u{fe}"] {
        assert_eq!(AuthorityKey::parse_record(other.as_bytes()), Ok(None));
    }
    assert_eq!(AuthorityKey::parse_record(&[0xff, 0xfe]), Ok(None));
    let problem = |s: &str| match AuthorityKey::parse_record(s.as_bytes()) {
        Err(Error::InvalidAuthorityRecord { problem, .. }) => problem,
        other => panic!("{s}: {other:?}"),
    };
    let k = key.key_base64();
    assert_eq!(
        problem(&format!("v=MIMIA1; k={k}")),
        RecordProblem::MissingAuthorityName
    );
    assert_eq!(
        problem("v=MIMIA1; n=example.com"),
        RecordProblem::MissingAuthorityKey
    );
    assert_eq!(
        problem(&format!("v=MIMIA1; n=Ex; k={k}")),
        RecordProblem::BadAuthorityName
    );
    assert_eq!(
        problem("v=MIMIA1; n=example.com; k=AAAA"),
        RecordProblem::BadAuthorityKey
    );
    assert_eq!(
        problem(&format!("v=MIMIA1; n=a; n=b; k={k}")),
        RecordProblem::RepeatedTag("n".into())
    );
    assert_eq!(
        problem(&format!("v=MIMIA1; n=a; k={k}=")),
        RecordProblem::BadAuthorityKey
    );
}

fn found(accounts: &[&str]) -> IdentifierResponse {
    IdentifierResponse {
        uri: accounts
            .iter()
            .map(|a| IdentifierUri {
                uri: (*a).to_owned(),
            })
            .collect(),
        ..IdentifierResponse::with_code(IdentifierQueryCode::Success)
    }
}

#[test]
fn assertions_travel_one_per_account() {
    let a = signed(&signer("example.com", 1), &mapping());
    let mut r = found(&["mimi://a.example/u/1", "mimi://a.example/u/2"]);
    assert_eq!(assertions_in(&r).unwrap(), [None, None]);
    attach_assertions(&mut r, &[None, None]).unwrap();
    assert!(r.id_response_extensions.component_data.is_empty());
    attach_assertions(&mut r, &[None, Some(&a)]).unwrap();
    let decoded = IdentifierResponse::from_bytes(&r.to_bytes().unwrap()).unwrap();
    assert_eq!(assertions_in(&decoded).unwrap(), [None, Some(a.clone())]);
    // Two components, or a count that differs: malformed.
    let mut twice = r.clone();
    attach_assertions(&mut twice, &[Some(&a), None]).unwrap();
    assert!(assertions_in(&twice).is_err());
    let mut fewer = r.clone();
    fewer.uri.pop();
    assert!(assertions_in(&fewer).is_err());
    assert!(attach_assertions(&mut fewer, &[None, None]).is_err());
    // Every cut of the component's data is refused.
    let data = r.id_response_extensions.component_data[0].data.clone();
    for cut in 0..data.len() {
        let mut c = r.clone();
        c.id_response_extensions.component_data[0].data = data[..cut].to_vec();
        assert!(assertions_in(&c).is_err(), "cut {cut}");
    }
}

#[test]
fn authority_domains() {
    use crate::Identifier;
    let domain = |s: &str| Identifier::parse(s).unwrap().authority_dns_name();
    assert_eq!(domain("alice.example.com"), "_mimi-authority.example.com.");
    assert_eq!(domain("alice@Example.com"), "_mimi-authority.example.com.");
    assert_eq!(domain("+15550109999"), "_mimi-authority.e164.arpa.");
    assert_eq!(
        Identifier::parse("+15550109999")
            .unwrap()
            .authority_domain(),
        None
    );
}

#[test]
fn the_largest_answer_stays_in_the_one_response_bucket() {
    use crate::oblivious::{MIN_PADDED_RESPONSE_LEN, encode_response};
    use crate::query::{MAX_ACCOUNT_URI_LEN, MAX_ACCOUNTS_PER_IDENTIFIER, UserProfile};
    let uri = format!(
        "mimi://p.example/u/{}",
        "x".repeat(MAX_ACCOUNT_URI_LEN - 19)
    );
    assert_eq!(uri.len(), MAX_ACCOUNT_URI_LEN);
    let accounts = vec![uri.as_str(); MAX_ACCOUNTS_PER_IDENTIFIER];
    let mut r = found(&accounts);
    r.found_profiles = r
        .uri
        .iter()
        .map(|u| UserProfile {
            stable_uri: u.clone(),
            fields: Vec::new(),
        })
        .collect();
    let longest = vec![0xa5; MAX_ASSERTION_LEN];
    let slots = vec![Some(longest.as_slice()); MAX_ACCOUNTS_PER_IDENTIFIER];
    attach_assertions(&mut r, &slots).unwrap();
    let body = r.to_bytes().unwrap();
    let empty = IdentifierResponse::with_code(IdentifierQueryCode::NotFound)
        .to_bytes()
        .unwrap();
    let headers = [("content-type", "application/octet-stream")];
    let largest = encode_response(200, &headers, &body).unwrap();
    assert_eq!(
        largest.len(),
        MIN_PADDED_RESPONSE_LEN,
        "body {}",
        body.len()
    );
    assert_eq!(
        encode_response(200, &headers, &empty).unwrap().len(),
        largest.len()
    );
}

#[test]
fn trust_store_lines_and_their_scope() {
    use crate::Identifier;
    let key = signer("numbers.example", 5).public_key();
    let id = |s: &str| Identifier::parse(s).unwrap();
    let all = TrustedAuthority::parse_line(&format!("  {key}  ")).unwrap();
    assert_eq!(all.scope, Scope::Everything);
    assert!(all.covers(&id("+15550109999")) && all.covers(&id("a.example.com")));
    let some = TrustedAuthority::parse_line(&format!("{key}; scope=+1, +44 ,Example.COM")).unwrap();
    assert_eq!(some.key, key);
    assert!(some.covers(&id("+15550109999")));
    assert!(some.covers(&id("+447700900123")));
    assert!(!some.covers(&id("+33612345678")));
    assert!(some.covers(&id("alice.example.com")));
    assert!(some.covers(&id("alice@example.com")));
    assert!(!some.covers(&id("alice.sub.example.com")));
    assert!(!some.covers(&id("alice.example.org")));
    for bad in [
        "v=MIMI1; e=x.example".to_owned(),
        format!("{key}; scope=+1x"),
        format!("{key}; scope=a..b"),
        "v=MIMIA1; n=x".to_owned(),
    ] {
        assert!(
            matches!(
                TrustedAuthority::parse_line(&bad),
                Err(Error::InvalidAuthorityRecord { .. })
            ),
            "{bad}"
        );
    }
}

/// Assertions cross-checked with Python's `cwt` (a COSE/CWT implementation
/// we did not write), both ways: ours verify there, with the claims we
/// meant, and a flipped bit does not; one signed there verifies in our
/// verdict. Needs `python3` with `cwt` (scripts/test.sh installs it);
/// `MIMI_SKIP_PYTHON=1` skips it, loudly.
#[test]
fn assertions_cross_check_with_python_cwt() {
    if std::env::var_os("MIMI_SKIP_PYTHON").is_some() {
        eprintln!("SKIPPED: MIMI_SKIP_PYTHON is set; the Python cross-check did not run");
        return;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let s = signer("example.com", 7);
    let ours = s.sign(&mapping(), now - 10, now + 3600).unwrap();
    let mut flipped = ours.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let script = r#"
import sys, json, base64, cwt, cbor2
from cwt import COSE, COSEKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
public = COSEKey.from_jwk({"kty": "OKP", "crv": "Ed25519", "x": b64(bytes.fromhex(sys.argv[1])), "alg": "EdDSA"})
for arg in sys.argv[2:4]:
    try:
        # COSE verifies the signature; the claims set is CBOR (cwt's own
        # decode insists on a kid, which our assertions do not carry).
        c = cbor2.loads(COSE.new().decode(bytes.fromhex(arg), public))
        print(json.dumps({"iss": c[1], "sub": c[2], "account": c[-65537], "provider": c[-65538], "iat": c[6], "exp": c[4]}))
    except Exception as e:
        print("invalid")
        print(repr(e), file=sys.stderr)
sk = Ed25519PrivateKey.generate()
d = sk.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
x = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
private = COSEKey.from_jwk({"kty": "OKP", "crv": "Ed25519", "d": b64(d), "x": b64(x), "alg": "EdDSA"})
now = int(sys.argv[4])
token = cwt.encode({1: "py.example", 2: "alice.example.com", 6: now - 5, 4: now + 600,
                    -65537: "mimi://alpha.example/u/alice", -65538: "mimi.alpha.example"}, private)
print(x.hex())
print(token.hex())
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(hex::encode(s.public_key().key))
        .arg(hex::encode(&ours))
        .arg(hex::encode(&flipped))
        .arg(now.to_string())
        .output()
        .expect("python3 (run scripts/test.sh, which installs what the cross-checks need)");
    assert!(
        out.status.success(),
        "python3 with cwt failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    let claims: serde_json::Value = serde_json::from_str(lines[0])
        .unwrap_or_else(|e| panic!("{e}: {stdout} {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        claims,
        serde_json::json!({
            "iss": "example.com",
            "sub": "alice.example.com",
            "account": "mimi://alpha.example/u/alice",
            "provider": "mimi.alpha.example",
            "iat": now - 10,
            "exp": now + 3600,
        })
    );
    assert_eq!(lines[1], "invalid");
    // Signed in Python: our verdict, with the key Python used.
    let key = AuthorityKey {
        name: "py.example".into(),
        key: hex::decode(lines[2]).unwrap().try_into().unwrap(),
    };
    let theirs = hex::decode(lines[3]).unwrap();
    let p = providers();
    assert_eq!(
        judge(Some(&theirs), expected(&p), std::slice::from_ref(&key), now),
        Verdict::Verified {
            authority: "py.example".into(),
            expires_at: now + 600
        }
    );
    let mut theirs_flipped = theirs.clone();
    let last = theirs_flipped.len() - 1;
    theirs_flipped[last] ^= 1;
    assert_eq!(
        judge(Some(&theirs_flipped), expected(&p), &[key], now),
        Verdict::Invalid(Invalid::BadSignature)
    );
}
