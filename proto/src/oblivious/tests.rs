use std::time::{Duration, SystemTime};

use super::*;

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// RFC 9458 Appendix A.
mod rfc9458_appendix_a {
    use super::*;

    pub(super) const KEY_CONFIG: &str = "01002031e1f05a740102115220e9af918f738674aec95f54db6e04eb705aae8e79815500080001000100010003";
    const REQUEST: &str = "00034745540568747470730b6578616d706c652e636f6d012f";
    const RESPONSE: &str = "0140c8";
    const ENC_REQUEST: &str = "010020000100014b28f881333e7c164ffc499ad9796f877f4e1051ee6d31bad19dec96c208b4726374e469135906992e1268c594d2a10c695d858c40a026e7965e7d86b83dd440b2c0185204b4d63525";

    const SK_R: &str = "3c168975674b2fa8e465970b79c8dcf09f1c741626480bd4c6162fc5b6a98e1a";

    #[test]
    fn key_config_encodes_to_the_published_bytes_and_decodes() {
        let config =
            ServerKey::from_private(1, &unhex(SK_R), &[Aead::Aes128Gcm, Aead::ChaCha20Poly1305])
                .unwrap();
        assert_eq!(config.encoded_config(), unhex(KEY_CONFIG));
        let list = encode_key_config_list([&config]);
        assert_eq!(list, unhex(&format!("002d{KEY_CONFIG}")));
        let entries = decode_key_config_list(&list).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].key_id, 1);
        assert_eq!(entries[0].encoded, unhex(KEY_CONFIG));
        assert_eq!(entries[0].public_key[..], unhex(KEY_CONFIG)[3..35]);
        assert_eq!(entries[0].aead, Aead::Aes128Gcm);
    }

    #[test]
    fn binary_http_request_and_response_read_as_published() {
        let req = decode_message(&unhex(REQUEST)).unwrap();
        assert_eq!(req.control().method(), Some(&b"GET"[..]));
        assert_eq!(req.control().scheme(), Some(&b"https"[..]));
        assert_eq!(req.control().authority(), Some(&b"example.com"[..]));
        assert_eq!(req.control().path(), Some(&b"/"[..]));
        let resp = decode_message(&unhex(RESPONSE)).unwrap();
        assert_eq!(
            resp.control().status().map(bhttp::StatusCode::code),
            Some(200)
        );
    }

    #[test]
    fn client_encapsulation_has_the_published_shape() {
        // The crate draws a fresh ephemeral key, so the bytes differ from the
        // published ones; the header and the length must not.
        let entry = decode_key_config_list(&unhex(&format!("002d{KEY_CONFIG}")))
            .unwrap()
            .remove(0);
        let (enc, _response) = ClientRequest::new(&entry)
            .encapsulate(&unhex(REQUEST))
            .unwrap();
        let published = unhex(ENC_REQUEST);
        assert_eq!(enc.len(), published.len());
        assert_eq!(enc[..7], published[..7]);
        assert_ne!(
            enc[7..39],
            published[7..39],
            "a fresh ephemeral key per request"
        );
    }
}

#[test]
fn derived_keys_round_trip_a_padded_exchange() {
    let server = ServerKey::derive(7, &[42; IKM_LEN]).unwrap();
    let list = encode_key_config_list([&server]);

    let entry = &decode_key_config_list(&list).unwrap()[0];
    assert_eq!(entry.key_id, 7);
    let inner = encode_request(
        "POST",
        "m.example",
        "/v1/identifierQuery/m.example",
        &[("date", "x")],
        b"body",
    )
    .unwrap();
    assert_eq!(inner.len(), MIN_PADDED_LEN);
    let (enc_req, client_resp) = ClientRequest::new(entry).encapsulate(&inner).unwrap();

    let (plain, server_resp) = server.decapsulate(&enc_req).unwrap();
    let msg = decode_message(&plain).unwrap();
    assert_eq!(msg.content(), b"body");
    assert_eq!(msg.header().get(b"date"), Some(&b"x"[..]));

    let answer = encode_response(200, &[("content-type", MEDIA_OCTET_STREAM)], b"ok").unwrap();
    let enc_resp = server_resp.encapsulate(&answer).unwrap();
    let msg = decode_message(&client_resp.decapsulate(&enc_resp).unwrap()).unwrap();
    assert_eq!(
        msg.control().status().map(bhttp::StatusCode::code),
        Some(200)
    );
    assert_eq!(msg.content(), b"ok");
}

#[test]
fn derivation_is_deterministic() {
    let config = |ikm: u8| {
        ServerKey::derive(1, &[ikm; IKM_LEN])
            .unwrap()
            .encoded_config()
            .to_vec()
    };
    let (a, b, c) = (config(9), config(9), config(8));
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn padding_buckets() {
    assert_eq!(padded_len(0), 2048);
    assert_eq!(padded_len(1024), 2048);
    assert_eq!(padded_len(1025), 2048);
    assert_eq!(padded_len(5000), 8192);
    assert_eq!(padded_response_len(0), 24576);
    assert_eq!(padded_response_len(24576), 24576);
    assert_eq!(padded_response_len(24577), 32768);
}

#[test]
fn authority_may_come_from_host() {
    // RFC 9292 §5.1's example request: empty :authority, a Host header.
    let mut msg = bhttp::Message::request(
        b"GET".to_vec(),
        b"https".to_vec(),
        Vec::new(),
        b"/hello.txt".to_vec(),
    );
    msg.put_header(b"host", b"www.example.com");
    let mut bytes = Vec::new();
    msg.write_bhttp(bhttp::Mode::KnownLength, &mut bytes)
        .unwrap();
    let decoded = decode_message(&bytes).unwrap();
    assert_eq!(request_authority(&decoded), Some(&b"www.example.com"[..]));
    let named = decode_message(
        &encode_request("GET", "m.example", "/", &[("host", "other.example")], b"").unwrap(),
    )
    .unwrap();
    assert_eq!(request_authority(&named), Some(&b"m.example"[..]));
}

#[test]
fn requests_for_short_and_long_identifiers_pad_alike() {
    let short = encode_request(
        "POST",
        "m.example",
        "/v1/identifierQuery/m.example",
        &[],
        &[b'a'; 3],
    )
    .unwrap();
    let long = encode_request(
        "POST",
        "m.example",
        "/v1/identifierQuery/m.example",
        &[],
        &[b'a'; 318],
    )
    .unwrap();
    assert_eq!(short.len(), long.len());
}

#[test]
fn padding_must_be_zero() {
    let mut msg = encode_response(200, &[], b"ok").unwrap();
    let last = msg.len() - 1;
    msg[last] = 1;
    assert_eq!(decode_message(&msg).map(|_| ()), Err(Error::InvalidPadding));
}

#[test]
fn malformed_binary_http_is_refused() {
    assert_eq!(
        decode_message(&[]).map(|_| ()),
        Err(Error::InvalidBinaryHttp)
    );
    assert_eq!(
        decode_message(&[0x07]).map(|_| ()),
        Err(Error::InvalidBinaryHttp)
    );
    assert_eq!(
        decode_message(&[0x00, 0x05, b'G']).map(|_| ()),
        Err(Error::InvalidBinaryHttp)
    );
}

#[test]
fn key_list_framing_errors() {
    let good = unhex(rfc9458_appendix_a::KEY_CONFIG);
    let mut list = vec![0x00, 0x2d];
    list.extend_from_slice(&good);
    // Prefix past the end.
    let mut long = list.clone();
    long[1] = 0x2e;
    assert!(matches!(
        decode_key_config_list(&long),
        Err(Error::InvalidKeyConfigList)
    ));
    // A stray byte after the last entry.
    let mut stray = list.clone();
    stray.push(0);
    assert!(matches!(
        decode_key_config_list(&stray),
        Err(Error::InvalidKeyConfigList)
    ));
    // Suites not whole pairs.
    let mut odd = list.clone();
    odd[2 + 36] = 6;
    assert!(matches!(
        decode_key_config_list(&odd),
        Err(Error::InvalidKeyConfigList)
    ));
    // Empty list, or only another KEM: nothing usable.
    assert!(matches!(
        decode_key_config_list(&[]),
        Err(Error::NoSupportedKeyConfig)
    ));
    let mut other_kem = list.clone();
    other_kem[2 + 2] = 0x10;
    assert!(matches!(
        decode_key_config_list(&other_kem),
        Err(Error::NoSupportedKeyConfig)
    ));
    // Another KEM is skipped, the usable one after it kept.
    let mut both = other_kem.clone();
    both.extend_from_slice(&list);
    assert_eq!(decode_key_config_list(&both).unwrap().len(), 1);
    // Only suites we do not speak: unusable.
    let mut sha512 = list.clone();
    sha512[2 + 38] = 3;
    sha512[2 + 42] = 3;
    assert!(matches!(
        decode_key_config_list(&sha512),
        Err(Error::NoSupportedKeyConfig)
    ));
}

#[test]
fn problems() {
    let body = Problem::of(ProblemType::OhttpKey).to_json();
    let p = Problem::from_json(&body).unwrap();
    assert_eq!(
        p.type_uri,
        "https://iana.org/assignments/http-problem-types#ohttp-key"
    );
    assert_eq!(p.kind(), Some(ProblemType::OhttpKey));
    assert_eq!(
        Problem::from_json(&Problem::of(ProblemType::Date).to_json())
            .unwrap()
            .kind(),
        Some(ProblemType::Date)
    );
    assert_eq!(Problem::from_json(b"{}").unwrap().kind(), None);
    assert_eq!(Problem::from_json(b"nope"), Err(Error::InvalidProblem));
}

#[test]
fn date_skew_both_ways() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let later = format_date(now + Duration::from_secs(90));
    assert_eq!(date_skew(&later, now), Ok(90));
    let earlier = format_date(now - Duration::from_secs(30));
    assert_eq!(date_skew(&earlier, now), Ok(-30));
    assert_eq!(date_skew("yesterday", now), Err(Error::InvalidDate));
}

#[test]
fn cache_control_parsing() {
    assert_eq!(max_age("public, max-age=600"), Some(600));
    assert_eq!(max_age("max-age=\"30\""), Some(30));
    assert_eq!(max_age("public"), None);
    assert_eq!(max_age("no-store, max-age=600"), Some(0));
    assert_eq!(max_age("max-age=x"), None);
}
