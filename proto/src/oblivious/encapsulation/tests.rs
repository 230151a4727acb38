//! Our OHTTP against the `ohttp` crate, both ways, with both AEADs; and what
//! a tampering relay or a hostile client can send.

use super::*;
use crate::oblivious::{decode_key_config_list, encode_key_config_list};

const IKM: [u8; IKM_LEN] = [0x42; IKM_LEN];

fn theirs_config(aead: ohttp::hpke::Aead) -> ohttp::KeyConfig {
    ohttp::KeyConfig::derive(
        7,
        ohttp::hpke::Kem::X25519Sha256,
        vec![ohttp::SymmetricSuite::new(
            ohttp::hpke::Kdf::HkdfSha256,
            aead,
        )],
        &IKM,
    )
    .unwrap()
}

fn padded_request() -> Vec<u8> {
    crate::oblivious::encode_request("POST", "example.com", "/q", &[("date", "x")], b"hi").unwrap()
}

#[test]
fn the_same_ikm_gives_the_same_configuration_as_the_ohttp_crate() {
    let ours = ServerKey::derive(7, &IKM).unwrap();
    let theirs = ohttp::KeyConfig::derive(
        7,
        ohttp::hpke::Kem::X25519Sha256,
        vec![
            ohttp::SymmetricSuite::new(ohttp::hpke::Kdf::HkdfSha256, ohttp::hpke::Aead::Aes128Gcm),
            ohttp::SymmetricSuite::new(
                ohttp::hpke::Kdf::HkdfSha256,
                ohttp::hpke::Aead::ChaCha20Poly1305,
            ),
        ],
        &IKM,
    )
    .unwrap();
    assert_eq!(ours.encoded_config(), theirs.encode().unwrap());
    assert_eq!(
        encode_key_config_list([&ours]),
        ohttp::KeyConfig::encode_list(&[&theirs]).unwrap()
    );
}

#[test]
fn their_client_to_our_server_with_each_aead() {
    let ours = ServerKey::derive(7, &IKM).unwrap();
    for aead in [
        ohttp::hpke::Aead::Aes128Gcm,
        ohttp::hpke::Aead::ChaCha20Poly1305,
    ] {
        let mut config = theirs_config(aead);
        let client = ohttp::ClientRequest::from_config(&mut config).unwrap();
        let request = padded_request();
        let (enc_request, their_ctx) = client.encapsulate(&request).unwrap();
        let (opened, response) = ours.decapsulate(&enc_request).unwrap();
        assert_eq!(opened, request, "{aead:?}");
        let sealed = response.encapsulate(b"the answer").unwrap();
        assert_eq!(
            their_ctx.decapsulate(&sealed).unwrap(),
            b"the answer",
            "{aead:?}"
        );
    }
}

#[test]
fn our_client_to_their_server_with_each_aead() {
    for aead in [
        ohttp::hpke::Aead::Aes128Gcm,
        ohttp::hpke::Aead::ChaCha20Poly1305,
    ] {
        let config = theirs_config(aead);
        let list = ohttp::KeyConfig::encode_list(&[&config]).unwrap();
        let server = ohttp::Server::new(config).unwrap();
        let entry = decode_key_config_list(&list).unwrap().remove(0);
        assert_eq!(u16::from(aead), entry.aead.id());
        let request = padded_request();
        let (enc_request, ctx) = ClientRequest::new(&entry).encapsulate(&request).unwrap();
        let (opened, their_response) = server.decapsulate(&enc_request).unwrap();
        assert_eq!(opened, request, "{aead:?}");
        let sealed = their_response.encapsulate(b"the answer").unwrap();
        assert_eq!(ctx.decapsulate(&sealed).unwrap(), b"the answer", "{aead:?}");
    }
}

#[test]
fn ours_to_ours_and_every_response_nonce_differs() {
    let server = ServerKey::derive(3, &IKM).unwrap();
    let entry = decode_key_config_list(&encode_key_config_list([&server]))
        .unwrap()
        .remove(0);
    let (a, _) = ClientRequest::new(&entry).encapsulate(b"same").unwrap();
    let (b, ctx_b) = ClientRequest::new(&entry).encapsulate(b"same").unwrap();
    assert_ne!(a[HEADER_LEN..], b[HEADER_LEN..], "fresh ephemeral keys");
    let (_, r1) = server.decapsulate(&a).unwrap();
    let (plain, r2) = server.decapsulate(&b).unwrap();
    assert_eq!(plain, b"same");
    let s1 = r1.encapsulate(b"x").unwrap();
    let s2 = r2.encapsulate(b"x").unwrap();
    assert_ne!(s1[..16], s2[..16], "fresh response nonces");
    assert_eq!(ctx_b.decapsulate(&s2).unwrap(), b"x");
}

#[test]
fn a_tampering_relay_or_hostile_client_gets_a_typed_error() {
    let server = ServerKey::derive(3, &IKM).unwrap();
    let entry = decode_key_config_list(&encode_key_config_list([&server]))
        .unwrap()
        .remove(0);
    let (good, ctx) = ClientRequest::new(&entry)
        .encapsulate(&padded_request())
        .unwrap();
    let open = |bytes: &[u8]| server.decapsulate(bytes).map(|_| ());

    // Every single-bit flip in header, enc or ciphertext is refused.
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        let err = open(&bad).unwrap_err();
        let expected = match i {
            0..=6 => Error::UnsupportedSuite,
            _ => Error::DecryptionFailed,
        };
        // A flipped AEAD id may name the other AEAD we offer (1 <-> 3 is a
        // two-bit change, so a one-bit flip never does): still refused.
        assert!(
            err == expected || err == Error::InvalidKey,
            "byte {i}: {err:?}"
        );
    }
    // Truncated anywhere: before the tag ends, a typed error, never a panic.
    for len in 0..HEADER_LEN + N_PK + N_T {
        assert_eq!(open(&good[..len]), Err(Error::EncapsulationTruncated));
    }
    assert_eq!(open(&good[..good.len() - 1]), Err(Error::DecryptionFailed));
    // An AEAD the key does not offer.
    let mut other = good.clone();
    other[5..7].copy_from_slice(&2u16.to_be_bytes());
    assert_eq!(open(&other), Err(Error::UnsupportedSuite));

    // Responses: each altered byte in an exchange of its own, opened with
    // that exchange's own context (which opens the unaltered response), so
    // only the tag check can refuse it.
    let sealed_len = {
        let (_, response) = server.decapsulate(&good).unwrap();
        response.encapsulate(b"answer").unwrap().len()
    };
    for i in 0..sealed_len {
        let (request, ctx) = ClientRequest::new(&entry).encapsulate(b"q").unwrap();
        let (_, response) = server.decapsulate(&request).unwrap();
        let sealed = response.encapsulate(b"answer").unwrap();
        assert_eq!(ctx.clone().decapsulate(&sealed).unwrap(), b"answer");
        let mut bad = sealed.clone();
        bad[i] ^= 0x80;
        assert_eq!(
            ctx.clone().decapsulate(&bad),
            Err(Error::DecryptionFailed),
            "byte {i} of the response"
        );
        // Cut anywhere: refused, typed.
        let cut = ctx.decapsulate(&sealed[..i]).unwrap_err();
        assert!(
            matches!(cut, Error::EncapsulationTruncated | Error::DecryptionFailed),
            "cut at {i}: {cut:?}"
        );
    }
    assert!(matches!(
        ctx.decapsulate(&[0; 20]),
        Err(Error::EncapsulationTruncated)
    ));
}

/// One ChaCha20-Poly1305 exchange made by the `ohttp` crate (its client's
/// request, its server's response), pinned: our gateway must open that
/// request and, with the response nonce the `ohttp` server drew, seal the
/// same response byte for byte.
#[test]
fn a_pinned_chacha20_exchange_made_by_the_ohttp_crate() {
    const ENC_REQUEST: &str = include_str!("vectors/ohttp_chacha20_request.hex");
    const ENC_RESPONSE: &str = include_str!("vectors/ohttp_chacha20_response.hex");
    let unhex = |s: &str| hex::decode(s.trim()).unwrap();
    let ours = ServerKey::derive(7, &IKM).unwrap();
    let (request, response) = ours.decapsulate(&unhex(ENC_REQUEST)).unwrap();
    // Pinned when requests were padded to 1024 bytes: the same message,
    // with half the zeros.
    assert_eq!(request, padded_request()[..1024]);
    let enc_response = unhex(ENC_RESPONSE);
    // ChaCha20-Poly1305: the nonce is max(Nn, Nk) = 32 bytes.
    let sealed = response
        .encapsulate_with_nonce(b"the answer", &enc_response[..32])
        .unwrap();
    assert_eq!(sealed, enc_response);
}
