//! Lookup quotas at the origin and the issuer (DESIGN §10), each test
//! playing the attacker: a token spent twice (at one gateway and across a
//! restart), forged tokens (a bad signature, another key, another challenge,
//! another token type), and attesters the issuer does not know or that are
//! over budget.

use mimi_proto::codec::Codec;
use mimi_proto::privacypass::{IssuerKey, Token, TokenChallenge, TokenKey, header};
use mimi_server_core::client_auth::PeerCertificate;

use super::*;
use crate::config::{AttesterSection, Config};
use crate::tokens::Tokens;

struct World {
    dir: tempfile::TempDir,
    config: Config,
    cert: PeerCertificate,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let ca = rcgen::generate_simple_self_signed(vec!["relay.example".into()]).unwrap();
    let pem = dir.path().join("attester.pem");
    std::fs::write(&pem, ca.cert.pem()).unwrap();
    let mut config = Config {
        public_host: HOST.into(),
        ..Config::default()
    };
    config.tokens.required = true;
    config.tokens.key_file = dir.path().join("token-keys.json");
    config.tokens.spent_database = dir.path().join("spent.sqlite");
    config.tokens.attester = vec![AttesterSection {
        name: "relay".into(),
        certificate: pem,
        budget: 5,
        window_secs: 3600,
    }];
    let cert = PeerCertificate::of(ca.cert.der());
    World { dir, config, cert }
}

fn gateway(w: &World) -> (Gateway, Arc<Tokens>) {
    let tokens = Arc::new(
        Tokens::open(
            &w.config.tokens,
            &w.config.public_host,
            None,
            SystemTime::now(),
        )
        .unwrap(),
    );
    let keys =
        Arc::new(KeyManager::open(&w.dir.path().join("keys.json"), SystemTime::now()).unwrap());
    let directory = Directory::open(&w.dir.path().join("dir.sqlite")).unwrap();
    let settings = Settings {
        public_host: HOST.into(),
        extra_origins: vec![],
        date_window: std::time::Duration::from_secs(60),
        future_skew: std::time::Duration::from_secs(10),
        replay_capacity: 10_000,
        started: None,
    };
    let gw = Gateway::new(settings, keys, Backend::Embedded(Arc::new(directory)), None)
        .with_tokens(tokens.clone());
    (gw, tokens)
}

/// A token for `challenge` under `key`, issued by `issuer` through the
/// issuer's own code path (one request, no attester check).
fn token_from(issuer: &IssuerKey, challenge: &TokenChallenge) -> Token {
    let (request, pending) = issuer.public().blind(&challenge.digest().unwrap()).unwrap();
    pending.finalize(&issuer.issue(&request).unwrap()).unwrap()
}

/// A token obtained from the gateway's issuer, as an attester would.
fn issued(tokens: &Arc<Tokens>, cert: &PeerCertificate) -> Token {
    let (dir, _) = tokens.directory();
    let dir = mimi_proto::privacypass::IssuerDirectory::from_json(&dir).unwrap();
    let spki = header::from_b64url(&dir.token_keys[0].token_key).unwrap();
    let key = TokenKey::from_spki(&spki).unwrap();
    let challenge = TokenChallenge::standard(HOST);
    let (request, pending) = key.blind(&challenge.digest().unwrap()).unwrap();
    let issued = block_on(tokens.issue(
        Some(cert),
        false,
        &request.to_bytes().unwrap(),
        SystemTime::now(),
    ))
    .unwrap();
    let response = mimi_proto::privacypass::TokenResponse::from_bytes(&issued.body).unwrap();
    pending.finalize(&response).unwrap()
}

fn lookup_with(gw: &Gateway, authorization: Option<&str>) -> bhttp::Message {
    let now = SystemTime::now();
    let request = IdentifierRequest::single(SearchIdentifierType::Handle, "alice.example.com");
    let bhttp = oblivious::identifier_query(HOST, &request, now, authorization).unwrap();
    exchange(gw, &bhttp, now).0
}

fn challenged(m: &bhttp::Message) -> bool {
    status(m) == 401
        && m.header()
            .get(b"www-authenticate")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| header::parse_www_authenticate(v).ok())
            .is_some_and(|c| c.challenge == TokenChallenge::standard(HOST) && c.token_key.is_some())
}

#[test]
fn without_a_token_the_answer_is_the_standard_challenge() {
    let w = world();
    let (gw, _) = gateway(&w);
    let m = lookup_with(&gw, None);
    assert!(challenged(&m), "status {}", status(&m));
    assert_eq!(gw.metrics().get(crate::outcome::Outcome::TokenMissing), 1);
    assert_eq!(gw.metrics().get(crate::outcome::Outcome::Ok), 0);
}

#[test]
fn a_token_is_spent_once_even_across_a_restart() {
    let w = world();
    let (gw, tokens) = gateway(&w);
    let token = issued(&tokens, &w.cert);
    let auth = header::authorization(&token).unwrap();
    assert_eq!(status(&lookup_with(&gw, Some(&auth))), 200);
    let again = lookup_with(&gw, Some(&auth));
    assert!(challenged(&again), "spent twice at one gateway");
    assert_eq!(gw.metrics().get(crate::outcome::Outcome::TokenSpent), 1);
    drop((gw, tokens));
    // The gateway restarts with the same files: still spent.
    let (gw, _) = gateway(&w);
    assert!(
        challenged(&lookup_with(&gw, Some(&auth))),
        "spent again after a restart"
    );
    assert_eq!(gw.metrics().get(crate::outcome::Outcome::Ok), 0);
}

#[test]
fn forged_tokens_are_refused_with_the_challenge() {
    let w = world();
    let (gw, tokens) = gateway(&w);
    let good = issued(&tokens, &w.cert);
    // A flipped signature bit.
    let mut bad = good.clone();
    bad.authenticator[10] ^= 1;
    // A valid signature by a key the issuer does not hold.
    let other = IssuerKey::generate().unwrap();
    let foreign = token_from(&other, &TokenChallenge::standard(HOST));
    // A token for another challenge (a per-client redemption context), by
    // the gateway's own issuer.
    let mut linked = TokenChallenge::standard(HOST);
    linked.redemption_context = vec![7; 32];
    let ring_key = {
        let text = std::fs::read_to_string(&w.config.tokens.key_file).unwrap();
        let file: serde_json::Value = serde_json::from_str(&text).unwrap();
        IssuerKey::from_pem(file["keys"][0]["key"].as_str().unwrap()).unwrap()
    };
    let other_challenge = token_from(&ring_key, &linked);
    // Another token type: the same bytes with type 1.
    let mut type1 = good.to_bytes().unwrap();
    type1[1] = 1;
    let type1 = format!("PrivateToken token=\"{}\"", header::b64url(&type1));
    for (what, auth) in [
        ("bad signature", header::authorization(&bad).unwrap()),
        ("another key", header::authorization(&foreign).unwrap()),
        (
            "another challenge",
            header::authorization(&other_challenge).unwrap(),
        ),
        ("another token type", type1),
        ("garbage", "PrivateToken token=\"AAAA\"".into()),
        ("another scheme", "Bearer abc".into()),
    ] {
        assert!(challenged(&lookup_with(&gw, Some(&auth))), "{what}");
    }
    assert_eq!(gw.metrics().get(crate::outcome::Outcome::Ok), 0);
    assert_eq!(gw.metrics().get(crate::outcome::Outcome::TokenInvalid), 6);
    // The genuine token still works: nothing above spent it.
    let auth = header::authorization(&good).unwrap();
    assert_eq!(status(&lookup_with(&gw, Some(&auth))), 200);
}

#[test]
fn unknown_attesters_and_attesters_over_budget_get_nothing() {
    let w = world();
    let (_, tokens) = gateway(&w);
    let body = {
        let (dir, _) = tokens.directory();
        let dir = mimi_proto::privacypass::IssuerDirectory::from_json(&dir).unwrap();
        let key = TokenKey::from_spki(&header::from_b64url(&dir.token_keys[0].token_key).unwrap())
            .unwrap();
        key.blind(&[1; 32]).unwrap().0.to_bytes().unwrap()
    };
    let now = SystemTime::now();
    for cert in [None, Some(PeerCertificate([9; 32]))] {
        let e = block_on(tokens.issue(cert.as_ref(), false, &body, now)).unwrap_err();
        assert!(matches!(e, Error::AttesterUnknown), "{e:?}");
    }
    for _ in 0..5 {
        block_on(tokens.issue(Some(&w.cert), false, &body, now)).unwrap();
    }
    let e = block_on(tokens.issue(Some(&w.cert), false, &body, now)).unwrap_err();
    assert!(matches!(e, Error::AttesterOverBudget(s) if s > 0), "{e:?}");
    assert_eq!(e.status(), http::StatusCode::TOO_MANY_REQUESTS);
}
