//! The Privacy Pass working group's published type 2 test vectors (the
//! issuance protocol's `public_vectors.json`, five vectors), and what a
//! forger or a hostile issuer can try.

use serde::Deserialize;

use super::*;
use crate::codec::Codec;
use crate::privacypass::wire::TokenChallenge;

#[derive(Deserialize)]
struct Vector {
    sk_s: String,
    pk_s: String,
    token_challenge: String,
    nonce: String,
    token_request: String,
    token_response: String,
    token: String,
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn vectors() -> Vec<Vector> {
    serde_json::from_str(include_str!("../vectors/public_vectors.json")).unwrap()
}

#[test]
fn the_published_type_2_vectors() {
    let vs = vectors();
    assert_eq!(vs.len(), 5);
    for (i, v) in vs.iter().enumerate() {
        let pem = String::from_utf8(unhex(&v.sk_s)).unwrap();
        let issuer = IssuerKey::from_pem(&pem).unwrap();
        // The key, its SPKI (RSASSA-PSS, SHA-384) and id.
        assert_eq!(issuer.public().spki(), unhex(&v.pk_s), "vector {i}: SPKI");
        let key = TokenKey::from_spki(&unhex(&v.pk_s)).unwrap();
        assert_eq!(key, *issuer.public());
        // The request decodes; the issuer's blind signature is the
        // published response (RSA signing is deterministic).
        let request = TokenRequest::from_bytes(&unhex(&v.token_request)).unwrap();
        assert_eq!(
            request.truncated_token_key_id,
            key.truncated_id(),
            "vector {i}"
        );
        let response = issuer.issue(&request).unwrap();
        assert_eq!(
            response.to_bytes().unwrap(),
            unhex(&v.token_response),
            "vector {i}"
        );
        // The token: its fields, its encoding, and its signature.
        let token = Token::from_bytes(&unhex(&v.token)).unwrap();
        assert_eq!(token.nonce.to_vec(), unhex(&v.nonce), "vector {i}");
        let challenge = TokenChallenge::from_bytes(&unhex(&v.token_challenge)).unwrap();
        assert_eq!(
            token.challenge_digest,
            challenge.digest().unwrap(),
            "vector {i}"
        );
        assert_eq!(token.token_key_id, *key.id(), "vector {i}");
        assert_eq!(token.to_bytes().unwrap(), unhex(&v.token), "vector {i}");
        key.verify(&token).unwrap();
    }
}

#[test]
fn issue_finalize_verify_and_what_a_forger_can_try() {
    let v = &vectors()[0];
    let issuer = IssuerKey::from_pem(&String::from_utf8(unhex(&v.sk_s)).unwrap()).unwrap();
    let other =
        IssuerKey::from_pem(&String::from_utf8(unhex(&vectors()[1].sk_s)).unwrap()).unwrap();
    let key = issuer.public().clone();
    let digest = TokenChallenge::standard("p.example").digest().unwrap();
    let (request, pending) = key.blind(&digest).unwrap();
    let token = pending.finalize(&issuer.issue(&request).unwrap()).unwrap();
    key.verify(&token).unwrap();
    assert_eq!(token.challenge_digest, digest);

    // A flipped bit anywhere in the signed part or the signature.
    for at in [0, 40, 80, NK - 1] {
        let mut bad = token.clone();
        bad.authenticator[at] ^= 1;
        assert_eq!(key.verify(&bad), Err(Error::TokenInvalid));
    }
    let mut bad = token.clone();
    bad.nonce[0] ^= 1;
    assert_eq!(key.verify(&bad), Err(Error::TokenInvalid));
    let mut bad = token.clone();
    bad.challenge_digest[0] ^= 1;
    assert_eq!(key.verify(&bad), Err(Error::TokenInvalid));
    // Under another key, or naming another key.
    assert_eq!(other.public().verify(&token), Err(Error::TokenInvalid));
    // Another key's signature on this request does not finalise.
    let (request, pending) = key.blind(&digest).unwrap();
    let mut wrong = request.clone();
    wrong.truncated_token_key_id = other.public().truncated_id();
    assert!(issuer.issue(&wrong).is_err());
    let foreign = other
        .secret
        .blind_sign_with_rng(&mut OsRng, request.blinded_msg)
        .unwrap();
    let foreign = TokenResponse {
        blind_sig: foreign.0.as_slice().try_into().unwrap(),
    };
    assert_eq!(pending.finalize(&foreign).unwrap_err(), Error::TokenInvalid);
}

#[test]
fn every_token_is_fresh_and_keys_are_strict() {
    let v = &vectors()[0];
    let issuer = IssuerKey::from_pem(&String::from_utf8(unhex(&v.sk_s)).unwrap()).unwrap();
    let digest = [7u8; 32];
    let (a, _) = issuer.public().blind(&digest).unwrap();
    let (b, _) = issuer.public().blind(&digest).unwrap();
    assert_ne!(a.blinded_msg, b.blinded_msg, "fresh nonce, salt and blind");
    // A plain rsaEncryption SPKI, a truncated one, trailing bytes: refused.
    let spki = issuer.public().spki().to_vec();
    assert!(TokenKey::from_spki(&spki[..spki.len() - 1]).is_err());
    let mut long = spki.clone();
    long.push(0);
    assert!(TokenKey::from_spki(&long).is_err());
    let der = issuer.public().key.to_der().unwrap();
    assert!(TokenKey::from_spki(&der).is_err(), "rsaEncryption OID");
    let pem = issuer.to_pem().unwrap();
    let again = IssuerKey::from_pem(&pem).unwrap();
    assert_eq!(again.public(), issuer.public());
    assert!(!format!("{issuer:?}").contains("BEGIN"));
}

/// Tokens we issue and finalise verify as plain RSASSA-PSS signatures
/// (SHA-384, MGF1-SHA-384, 48-byte salt) in Python's `cryptography`, an
/// implementation we did not write; and a token with one flipped bit does
/// not. Needs `python3` with `cryptography` (scripts/test.sh installs it);
/// `MIMI_SKIP_PYTHON=1` skips it, loudly.
#[test]
fn tokens_verify_in_python_cryptography() {
    if std::env::var_os("MIMI_SKIP_PYTHON").is_some() {
        eprintln!("SKIPPED: MIMI_SKIP_PYTHON is set; the Python cross-check did not run");
        return;
    }
    let v = &vectors()[2];
    let issuer = IssuerKey::from_pem(&String::from_utf8(unhex(&v.sk_s)).unwrap()).unwrap();
    let key = issuer.public().clone();
    let digest = TokenChallenge::standard("p.example").digest().unwrap();
    let (request, pending) = key.blind(&digest).unwrap();
    let token = pending.finalize(&issuer.issue(&request).unwrap()).unwrap();
    let mut forged = token.clone();
    forged.authenticator[5] ^= 1;
    let der = key.key.to_der().unwrap();
    let script = r#"
import sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.exceptions import InvalidSignature
key = serialization.load_der_public_key(bytes.fromhex(sys.argv[1]))
for arg in sys.argv[2:]:
    token = bytes.fromhex(arg)
    signed, sig = token[:98], token[98:]
    try:
        key.verify(sig, signed, padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48), hashes.SHA384())
        print("valid")
    except InvalidSignature:
        print("invalid")
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(hex::encode(&der))
        .arg(hex::encode(token.to_bytes().unwrap()))
        .arg(hex::encode(forged.to_bytes().unwrap()))
        .output()
        .expect("python3 (run scripts/test.sh, which installs what the cross-checks need)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python3 with cryptography failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.split_whitespace().collect::<Vec<_>>(),
        ["valid", "invalid"]
    );
}
