//! RFC 9458 Appendix A, byte for byte (inside the crate: the hooks that
//! take a given ephemeral key and response nonce are not public), twice: through our implementation
//! (`ServerKey`, `ClientRequest`: the published request opens, our response
//! with the published nonce is the published response, and our client with
//! the published ephemeral key makes the published request), and through
//! independent ones: the `hpke` crate that `ohttp` is built on (the `ohttp`
//! API cannot import a raw private key) and RustCrypto's HKDF and AES-GCM.

use ::hpke::aead::AesGcm128;
use ::hpke::kdf::HkdfSha256;
use ::hpke::kem::X25519HkdfSha256;
use ::hpke::{Deserializable, Kem, OpModeR, Serializable};
use aes_gcm::aead::{Aead, KeyInit};

use crate::hpke::{self as our_hpke, KeyPair};
use crate::oblivious::{self, ClientRequest, ServerKey};

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

const SK_R: &str = "3c168975674b2fa8e465970b79c8dcf09f1c741626480bd4c6162fc5b6a98e1a";
const KEY_CONFIG: &str =
    "01002031e1f05a740102115220e9af918f738674aec95f54db6e04eb705aae8e79815500080001000100010003";
const REQUEST: &str = "00034745540568747470730b6578616d706c652e636f6d012f";
const ENC_REQUEST: &str = "010020000100014b28f881333e7c164ffc499ad9796f877f4e1051ee6d31bad19dec96c208b4726374e469135906992e1268c594d2a10c695d858c40a026e7965e7d86b83dd440b2c0185204b4d63525";
const SECRET: &str = "62d87a6ba569ee81014c2641f52bea36";
const PRK: &str = "979aaeae066cf211ab407b31ae49767f344e1501e475c84e8aff547cc5a683db";
const AEAD_KEY: &str = "5d0172a080e428b16d298c4ea0db620d";
const AEAD_NONCE: &str = "f6bf1aeb88d6df87007fa263";
const ENC_RESPONSE: &str = "c789e7151fcba46158ca84b04464910d86f9013e404feea014e7be4a441f234f857fbd";
const RESPONSE: &str = "0140c8";
const SK_E: &str = "bc51d5e930bda26589890ac7032f70ad12e4ecb37abb1b65b1256c9c48999c73";
const RESPONSE_NONCE: &str = "c789e7151fcba46158ca84b04464910d";

fn our_server_key() -> ServerKey {
    ServerKey::from_private(
        1,
        &unhex(SK_R),
        &[our_hpke::Aead::Aes128Gcm, our_hpke::Aead::ChaCha20Poly1305],
    )
    .unwrap()
}

#[test]
fn our_gateway_opens_the_published_request_and_seals_the_published_response() {
    let key = our_server_key();
    assert_eq!(key.encoded_config(), unhex(KEY_CONFIG));
    let (request, response) = key.decapsulate(&unhex(ENC_REQUEST)).unwrap();
    assert_eq!(request, unhex(REQUEST));
    let sealed = response
        .encapsulate_with_nonce(&unhex(RESPONSE), &unhex(RESPONSE_NONCE))
        .unwrap();
    assert_eq!(sealed, unhex(ENC_RESPONSE));
}

#[test]
fn our_client_makes_the_published_request_and_opens_the_published_response() {
    let ephemeral = KeyPair::from_private(&unhex(SK_E)).unwrap();
    // The published enc is this key's public key.
    assert_eq!(ephemeral.public_key()[..], unhex(ENC_REQUEST)[7..39]);
    let list = unhex(&format!("002d{KEY_CONFIG}"));
    let entry = oblivious::decode_key_config_list(&list).unwrap().remove(0);
    let (enc_request, ctx) = ClientRequest::new(&entry)
        .encapsulate_with(&unhex(REQUEST), &ephemeral)
        .unwrap();
    assert_eq!(enc_request, unhex(ENC_REQUEST));
    assert_eq!(
        ctx.decapsulate(&unhex(ENC_RESPONSE)).unwrap(),
        unhex(RESPONSE)
    );
}

#[test]
fn our_implementation_refuses_a_changed_byte() {
    let key = our_server_key();
    let mut enc_request = unhex(ENC_REQUEST);
    let last = enc_request.len() - 1;
    enc_request[last] ^= 1;
    assert_eq!(
        key.decapsulate(&enc_request).map(|_| ()),
        Err(crate::Error::DecryptionFailed)
    );
}

type Receiver = ::hpke::aead::AeadCtxR<AesGcm128, HkdfSha256, X25519HkdfSha256>;

/// The gateway's side of RFC 9458 §4.3: the HPKE receiver for an
/// encapsulated request, its `enc` and its ciphertext.
fn receiver<'a>(
    sk: &<X25519HkdfSha256 as Kem>::PrivateKey,
    enc_request: &'a [u8],
) -> (Receiver, &'a [u8], &'a [u8]) {
    let (header, rest) = enc_request.split_at(7);
    let (enc, ciphertext) = rest.split_at(32);
    let mut info = b"message/bhttp request\0".to_vec();
    info.extend_from_slice(header);
    let encapped = <X25519HkdfSha256 as Kem>::EncappedKey::from_bytes(enc).unwrap();
    let ctx = ::hpke::setup_receiver(&OpModeR::Base, sk, &encapped, &info).unwrap();
    (ctx, enc, ciphertext)
}

#[test]
fn the_published_exchange_opens() {
    let sk = <X25519HkdfSha256 as Kem>::PrivateKey::from_bytes(&unhex(SK_R)).unwrap();
    // The private key belongs to the published key configuration.
    let pk = X25519HkdfSha256::sk_to_pk(&sk);
    assert_eq!(pk.to_bytes().as_slice(), &unhex(KEY_CONFIG)[3..35]);

    // Request: header (key id, KEM, KDF, AEAD), enc, ciphertext.
    let enc_request = unhex(ENC_REQUEST);
    let (mut ctx, enc, ciphertext) = receiver(&sk, &enc_request);
    let request = ctx.open(ciphertext, b"").unwrap();
    assert_eq!(request, unhex(REQUEST));
    let msg = oblivious::decode_message(&request).unwrap();
    assert_eq!(msg.control().authority(), Some(&b"example.com"[..]));

    // Response: secret = Export("message/bhttp response", Nk), salt = enc || nonce.
    let mut secret = [0u8; 16];
    ctx.export(b"message/bhttp response", &mut secret).unwrap();
    assert_eq!(secret.to_vec(), unhex(SECRET));
    let enc_response = unhex(ENC_RESPONSE);
    let (nonce, sealed) = enc_response.split_at(16);
    let salt = [enc, nonce].concat();
    let (prk, hk) = hkdf::Hkdf::<sha2::Sha256>::extract(Some(&salt), &secret);
    assert_eq!(prk.to_vec(), unhex(PRK));
    let mut key = [0u8; 16];
    let mut aead_nonce = [0u8; 12];
    hk.expand(b"key", &mut key).unwrap();
    hk.expand(b"nonce", &mut aead_nonce).unwrap();
    assert_eq!(key.to_vec(), unhex(AEAD_KEY));
    assert_eq!(aead_nonce.to_vec(), unhex(AEAD_NONCE));
    let cipher = aes_gcm::Aes128Gcm::new_from_slice(&key).unwrap();
    let response = cipher
        .decrypt(aes_gcm::Nonce::from_slice(&aead_nonce), sealed)
        .unwrap();
    assert_eq!(response, unhex(RESPONSE));
    let msg = oblivious::decode_message(&response).unwrap();
    assert_eq!(
        msg.control().status().map(crate::bhttp::StatusCode::code),
        Some(200)
    );
}

#[test]
fn a_changed_byte_does_not_open() {
    let sk = <X25519HkdfSha256 as Kem>::PrivateKey::from_bytes(&unhex(SK_R)).unwrap();
    let mut enc_request = unhex(ENC_REQUEST);
    let last = enc_request.len() - 1;
    enc_request[last] ^= 1;
    let (mut ctx, _, ciphertext) = receiver(&sk, &enc_request);
    assert!(ctx.open(ciphertext, b"").is_err());
}
