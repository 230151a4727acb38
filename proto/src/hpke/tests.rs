//! RFC 9180 Appendix A test vectors for the suites we offer, base mode:
//! A.1.1 (X25519, HKDF-SHA256, AES-128-GCM) and A.2.1 (ChaCha20Poly1305),
//! from the CFRG's published vector file (the one the RFC prints from).

use serde::Deserialize;

use super::*;

#[derive(Deserialize)]
struct Vector {
    mode: u8,
    kem_id: u16,
    kdf_id: u16,
    aead_id: u16,
    info: String,
    #[serde(rename = "ikmR")]
    ikm_r: String,
    #[serde(rename = "ikmE")]
    ikm_e: String,
    #[serde(rename = "skRm")]
    sk_r: String,
    #[serde(rename = "skEm")]
    sk_e: String,
    #[serde(rename = "pkRm")]
    pk_r: String,
    #[serde(rename = "pkEm")]
    pk_e: String,
    enc: String,
    shared_secret: String,
    key_schedule_context: String,
    key: String,
    base_nonce: String,
    exporter_secret: String,
    encryptions: Vec<Encryption>,
    exports: Vec<Export>,
}

#[derive(Deserialize)]
struct Encryption {
    aad: String,
    ct: String,
    nonce: String,
    pt: String,
}

#[derive(Deserialize)]
struct Export {
    exporter_context: String,
    #[serde(rename = "L")]
    len: usize,
    exported_value: String,
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn vectors() -> Vec<Vector> {
    let v: Vec<Vector> = serde_json::from_str(include_str!(
        "../../tests/vectors/rfc9180_base_x25519_hkdf_sha256.json"
    ))
    .unwrap();
    assert_eq!(v.len(), 2, "A.1.1 and A.2.1");
    v
}

#[test]
fn rfc9180_base_mode_vectors() {
    for v in vectors() {
        assert_eq!((v.mode, v.kem_id, v.kdf_id), (0, 0x20, 1));
        let aead = Aead::from_id(v.aead_id).unwrap();
        let what = format!("aead {}", v.aead_id);

        // DeriveKeyPair gives the published keys.
        let r = KeyPair::derive(&unhex(&v.ikm_r)).unwrap();
        let e = KeyPair::derive(&unhex(&v.ikm_e)).unwrap();
        assert_eq!(r.public_key().to_vec(), unhex(&v.pk_r), "{what}");
        assert_eq!(e.public_key().to_vec(), unhex(&v.pk_e), "{what}");
        let r2 = KeyPair::from_private(&unhex(&v.sk_r)).unwrap();
        assert_eq!(r2.public_key(), r.public_key());
        let e2 = KeyPair::from_private(&unhex(&v.sk_e)).unwrap();
        assert_eq!(e2.public_key(), e.public_key());

        // The KEM's shared secret, both ways.
        let dh = e.dh(r.public_key()).unwrap();
        let ss = shared_secret(&dh[..], e.public_key(), r.public_key()).unwrap();
        assert_eq!(ss.to_vec(), unhex(&v.shared_secret), "{what}");
        let dh_r = r.dh(e.public_key()).unwrap();
        assert_eq!(dh_r, dh);

        // The key schedule.
        let schedule = Schedule::new(aead, &unhex(&v.info));
        assert_eq!(
            schedule.context.to_vec(),
            unhex(&v.key_schedule_context),
            "{what}"
        );
        let pk_r: [u8; N_PK] = unhex(&v.pk_r).try_into().unwrap();
        let (enc, mut sender) = schedule.sender(&pk_r, &e).unwrap();
        assert_eq!(enc.to_vec(), unhex(&v.enc), "{what}");
        let mut receiver = schedule.receiver(&r, &enc).unwrap();
        for ctx in [&sender, &receiver] {
            assert_eq!(ctx.raw_key, unhex(&v.key), "{what}");
            assert_eq!(ctx.base_nonce.to_vec(), unhex(&v.base_nonce), "{what}");
            assert_eq!(
                ctx.exporter_secret.to_vec(),
                unhex(&v.exporter_secret),
                "{what}"
            );
        }

        // Every encryption in sequence (seq 0 to 256), sealed and opened.
        assert_eq!(v.encryptions.len(), 257);
        for (seq, x) in v.encryptions.iter().enumerate() {
            let mut nonce = sender.base_nonce;
            for (n, s) in nonce[4..].iter_mut().zip((seq as u64).to_be_bytes()) {
                *n ^= s;
            }
            assert_eq!(nonce.to_vec(), unhex(&x.nonce), "{what} seq {seq}");
            let ct = sender.seal(&unhex(&x.aad), &unhex(&x.pt)).unwrap();
            assert_eq!(ct, unhex(&x.ct), "{what} seq {seq}");
            let pt = receiver.open(&unhex(&x.aad), &ct).unwrap();
            assert_eq!(pt, unhex(&x.pt), "{what} seq {seq}");
        }

        // Exported secrets.
        for x in &v.exports {
            let mut out = vec![0u8; x.len];
            sender
                .export(&unhex(&x.exporter_context), &mut out)
                .unwrap();
            assert_eq!(out, unhex(&x.exported_value), "{what}");
            receiver
                .export(&unhex(&x.exporter_context), &mut out)
                .unwrap();
            assert_eq!(out, unhex(&x.exported_value), "{what}");
        }
    }
}

#[test]
fn a_changed_ciphertext_aad_or_order_does_not_open() {
    let v = &vectors()[0];
    let aead = Aead::from_id(v.aead_id).unwrap();
    let schedule = Schedule::new(aead, &unhex(&v.info));
    let r = KeyPair::derive(&unhex(&v.ikm_r)).unwrap();
    let x = &v.encryptions[0];
    let mut ct = unhex(&x.ct);
    let open = |ct: &[u8], aad: &[u8]| schedule.receiver(&r, &unhex(&v.enc)).unwrap().open(aad, ct);
    assert!(open(&ct, &unhex(&x.aad)).is_ok());
    ct[0] ^= 1;
    assert_eq!(open(&ct, &unhex(&x.aad)), Err(Error::DecryptionFailed));
    ct[0] ^= 1;
    assert_eq!(open(&ct, b"other aad"), Err(Error::DecryptionFailed));
    assert_eq!(
        open(&ct[..10], &unhex(&x.aad)),
        Err(Error::DecryptionFailed)
    );
    // The second message does not open as the first.
    assert_eq!(
        open(&unhex(&v.encryptions[1].ct), &unhex(&v.encryptions[1].aad)),
        Err(Error::DecryptionFailed)
    );
}

#[test]
fn low_order_and_malformed_encapsulated_keys_are_refused() {
    let r = KeyPair::derive(&[1; 32]).unwrap();
    let schedule = Schedule::new(Aead::Aes128Gcm, b"info");
    // The identity and a point of order 8: the DH would be all zero.
    let mut order8 = [0u8; 32];
    order8.copy_from_slice(&unhex(
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    ));
    for bad in [[0u8; 32], order8] {
        assert_eq!(
            schedule.receiver(&r, &bad).map(|_| ()),
            Err(Error::InvalidKey)
        );
    }
    assert_eq!(
        schedule.receiver(&r, &[9; 31]).map(|_| ()),
        Err(Error::InvalidKey)
    );
}

#[test]
fn a_failed_open_leaves_the_sequence_where_it_was() {
    let v = &vectors()[0];
    let aead = Aead::from_id(v.aead_id).unwrap();
    let schedule = Schedule::new(aead, &unhex(&v.info));
    let r = KeyPair::derive(&unhex(&v.ikm_r)).unwrap();
    let mut receiver = schedule.receiver(&r, &unhex(&v.enc)).unwrap();
    let x0 = &v.encryptions[0];
    let mut forged = unhex(&x0.ct);
    forged[3] ^= 0x80;
    // A forgery (and a ciphertext too short to hold a tag) is refused...
    assert_eq!(
        receiver.open(&unhex(&x0.aad), &forged),
        Err(Error::DecryptionFailed)
    );
    assert_eq!(
        receiver.open(&unhex(&x0.aad), &forged[..5]),
        Err(Error::DecryptionFailed)
    );
    assert_eq!(receiver.seq, 0);
    // ...and the genuine messages still open, in order.
    for x in &v.encryptions[..3] {
        assert_eq!(
            receiver.open(&unhex(&x.aad), &unhex(&x.ct)).unwrap(),
            unhex(&x.pt)
        );
    }
    assert_eq!(receiver.seq, 3);
}

#[test]
fn the_last_sequence_number_is_never_used() {
    let v = &vectors()[0];
    let aead = Aead::from_id(v.aead_id).unwrap();
    let schedule = Schedule::new(aead, &unhex(&v.info));
    let e = KeyPair::derive(&unhex(&v.ikm_e)).unwrap();
    let pk_r: [u8; N_PK] = unhex(&v.pk_r).try_into().unwrap();
    let (_, mut sender) = schedule.sender(&pk_r, &e).unwrap();
    sender.seq = u64::MAX - 1;
    assert!(sender.seal(b"", b"last").is_ok());
    assert_eq!(sender.seq, u64::MAX);
    // RFC 9180 §5.2: MessageLimitReachedError, and no nonce reused.
    assert_eq!(sender.seal(b"", b"over"), Err(Error::CryptoFailure));
    assert_eq!(sender.open(b"", &[0; 32]), Err(Error::CryptoFailure));
    assert_eq!(sender.seq, u64::MAX);
}
