#![no_main]
//! Everything of Privacy Pass that a gateway, a relay or a client decodes
//! from the network: challenges, tokens, token requests and batches, the
//! `PrivateToken` headers and the issuer directory. Never a panic; what
//! decodes encodes back to the same bytes.
use mimi_proto::codec::Codec;
use mimi_proto::privacypass::{
    BatchTokenRequest, BatchTokenResponse, IssuerDirectory, Token, TokenChallenge, TokenKey,
    TokenRequest, header,
};

fn round_trip<T: Codec + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(v) = T::from_bytes(data) {
        let again = v.to_bytes().expect("a decoded value encodes");
        assert_eq!(again, data, "{} does not round-trip", T::NAME);
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    round_trip::<TokenChallenge>(data);
    round_trip::<Token>(data);
    round_trip::<TokenRequest>(data);
    round_trip::<BatchTokenRequest>(data);
    round_trip::<BatchTokenResponse>(data);
    let _ = IssuerDirectory::from_json(data);
    let _ = TokenKey::from_spki(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = header::parse_www_authenticate(text);
        let _ = header::parse_authorization(text);
    }
});
