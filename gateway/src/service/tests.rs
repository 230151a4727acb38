//! The gateway logic driven by a client built on `ohttp` + `proto`, no sockets.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mimi_proto::bhttp;
use mimi_proto::codec::Codec;
use mimi_proto::oblivious::{self, Problem, ProblemType};
use mimi_proto::query::QueryElement;
use mimi_proto::{
    IdentifierQueryCode, IdentifierRequest, IdentifierResponse, SearchIdentifierType,
};

use super::*;
use crate::directory::{Directory, Entry};

const HOST: &str = "mimi.p.example";

struct Fixture {
    _dir: tempfile::TempDir,
    gw: Gateway,
}

fn fixture() -> Fixture {
    fixture_with(10_000)
}

fn fixture_with(replay_capacity: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let keys =
        Arc::new(KeyManager::open(&dir.path().join("keys.json"), SystemTime::now()).unwrap());
    let directory = Directory::open(&dir.path().join("dir.sqlite")).unwrap();
    for (id, account, searchable) in [
        ("alice.example.com", "mimi://p.example/u/alice", true),
        ("hidden.example.com", "mimi://p.example/u/hidden", false),
    ] {
        block_on(directory.add(&Entry {
            identifier: id.into(),
            account: account.into(),
            searchable,
            assertion: None,
        }))
        .unwrap();
    }
    let settings = Settings {
        public_host: HOST.into(),
        extra_origins: vec![],
        date_window: Duration::from_secs(60),
        future_skew: std::time::Duration::from_secs(10),
        replay_capacity,
        started: None,
    };
    let gw = Gateway::new(settings, keys, Backend::Embedded(Arc::new(directory)), None);
    Fixture { _dir: dir, gw }
}

fn seal(gw: &Gateway, bhttp: &[u8]) -> (Vec<u8>, ohttp::ClientResponse) {
    let list = gw.keys().ring().encoded_list().to_vec();
    let entry = &oblivious::decode_key_config_list(&list).unwrap()[0];
    let client =
        ohttp::ClientRequest::from_config(&mut ohttp::KeyConfig::decode(&entry.encoded).unwrap())
            .unwrap();
    client.encapsulate(bhttp).unwrap()
}

fn query_bhttp(authority: &str, date: &str, body: &[u8]) -> Vec<u8> {
    oblivious::encode_request(
        "POST",
        authority,
        &format!("/v1/identifierQuery/{authority}"),
        &[("date", date), ("content-type", "application/octet-stream")],
        body,
    )
    .unwrap()
}

fn handle_query(gw: &Gateway, body: &[u8]) -> (bhttp::Message, usize) {
    let now = SystemTime::now();
    let bhttp = query_bhttp(HOST, &oblivious::format_date(now), body);
    exchange(gw, &bhttp, now)
}

fn exchange(gw: &Gateway, bhttp: &[u8], now: SystemTime) -> (bhttp::Message, usize) {
    let (enc, resp) = seal(gw, bhttp);
    let sealed = block_on(gw.handle(&enc, now)).unwrap();
    let plain = resp.decapsulate(&sealed).unwrap();
    (oblivious::decode_message(&plain).unwrap(), sealed.len())
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn status(m: &bhttp::Message) -> u16 {
    m.control().status().unwrap().code()
}

fn lookup(id: &str) -> Vec<u8> {
    IdentifierRequest::single(SearchIdentifierType::Handle, id)
        .to_bytes()
        .unwrap()
}

fn problem_of(m: &bhttp::Message) -> Problem {
    assert_eq!(
        m.header().get(b"content-type"),
        Some(&b"application/problem+json"[..])
    );
    Problem::from_json(m.content()).unwrap()
}

#[test]
fn found_and_not_found_have_the_same_size() {
    let f = fixture();
    let (found, found_len) = handle_query(&f.gw, &lookup("alice.example.com"));
    assert_eq!(status(&found), 200);
    let resp = IdentifierResponse::from_bytes(found.content()).unwrap();
    assert_eq!(resp.response_code, IdentifierQueryCode::Success);
    assert_eq!(resp.uri[0].uri, "mimi://p.example/u/alice");
    assert_eq!(
        resp.found_profiles[0].stable_uri.uri,
        "mimi://p.example/u/alice"
    );

    let (absent, absent_len) = handle_query(&f.gw, &lookup("nobody.example.com"));
    let (hidden, hidden_len) = handle_query(&f.gw, &lookup("hidden.example.com"));
    for m in [&absent, &hidden] {
        assert_eq!(status(m), 200);
        assert_eq!(
            IdentifierResponse::from_bytes(m.content())
                .unwrap()
                .response_code,
            IdentifierQueryCode::NotFound
        );
    }
    assert_eq!(
        absent.content(),
        hidden.content(),
        "absent and not searchable are indistinguishable"
    );
    assert_eq!(found_len, absent_len);
    assert_eq!(absent_len, hidden_len);
    assert_eq!(f.gw.metrics().get(crate::outcome::Outcome::Ok), 3);
}

#[test]
fn directory_document_names_the_public_host() {
    let f = fixture();
    let now = SystemTime::now();
    let bhttp = oblivious::encode_request(
        "GET",
        HOST,
        oblivious::DIRECTORY_PATH,
        &[("date", &oblivious::format_date(now))],
        b"",
    )
    .unwrap();
    let (m, _) = exchange(&f.gw, &bhttp, now);
    assert_eq!(status(&m), 200);
    let doc = mimi_proto::directory::DirectoryDocument::from_json(m.content()).unwrap();
    assert_eq!(
        doc.identifier_query,
        format!("https://{HOST}/v1/identifierQuery/{{domain}}")
    );
}

#[test]
fn malformed_outer_message_is_400_in_the_clear() {
    let f = fixture();
    let now = SystemTime::now();
    assert!(matches!(
        block_on(f.gw.handle(&[], now)),
        Err(Error::MalformedEncapsulation)
    ));
    let (enc, _) = seal(&f.gw, &lookup("x"));
    assert!(matches!(
        block_on(f.gw.handle(&enc[..20], now)),
        Err(Error::MalformedEncapsulation)
    ));
    assert_eq!(Error::MalformedEncapsulation.status(), 400);
}

#[test]
fn unknown_key_id_and_failed_decryption_are_422_ohttp_key() {
    let f = fixture();
    let now = SystemTime::now();
    let (mut enc, _) = seal(
        &f.gw,
        &query_bhttp(HOST, &oblivious::format_date(now), &lookup("a.example")),
    );
    let mut unknown = enc.clone();
    unknown[0] = unknown[0].wrapping_add(1);
    let e = block_on(f.gw.handle(&unknown, now)).unwrap_err();
    assert!(matches!(e, Error::KeyRejected));
    assert_eq!(e.status(), 422);
    assert_eq!(e.problem().unwrap().kind(), Some(ProblemType::OhttpKey));
    let last = enc.len() - 1;
    enc[last] ^= 1;
    assert!(matches!(
        block_on(f.gw.handle(&enc, now)),
        Err(Error::KeyRejected)
    ));
    // An AEAD the key does not offer.
    let (mut other_suite, _) = seal(&f.gw, &lookup("x"));
    other_suite[6] = 2; // AES-256-GCM
    assert!(matches!(
        block_on(f.gw.handle(&other_suite, now)),
        Err(Error::KeyRejected)
    ));
    assert_eq!(f.gw.metrics().get(crate::outcome::Outcome::Ok), 0);
}

#[test]
fn malformed_binary_http_is_an_encrypted_400() {
    let f = fixture();
    let (m, _) = exchange(&f.gw, &[0x07, 0xff, 0xff], SystemTime::now());
    assert_eq!(status(&m), 400);
    assert_eq!(problem_of(&m).title, "malformed Binary HTTP request");
}

#[test]
fn malformed_identifier_request_is_an_encrypted_400() {
    let f = fixture();
    for body in [
        &[0xffu8, 0xff][..],
        &[0][..],
        &[0, 0, 0][..],
        &[2, 1, 0, 0][..],
    ] {
        let (m, _) = handle_query(&f.gw, body);
        assert_eq!(status(&m), 400, "{body:?}");
        assert_eq!(problem_of(&m).title, "malformed query");
    }
    // A value that is not an identifier of its type.
    let (m, _) = handle_query(
        &f.gw,
        &IdentifierRequest::single(SearchIdentifierType::Phone, "alice.example.com")
            .to_bytes()
            .unwrap(),
    );
    assert_eq!(status(&m), 400);
}

#[test]
fn unsupported_search_type_is_unsupported_field() {
    let f = fixture();
    for req in [
        IdentifierRequest::single(SearchIdentifierType::Nick, "alice"),
        IdentifierRequest {
            query_elements: vec![
                QueryElement {
                    search_type: SearchIdentifierType::Handle,
                    selector: None,
                    search_value: b"a.example".to_vec(),
                },
                QueryElement {
                    search_type: SearchIdentifierType::Handle,
                    selector: None,
                    search_value: b"b.example".to_vec(),
                },
            ],
            ..Default::default()
        },
    ] {
        let (m, _) = handle_query(&f.gw, &req.to_bytes().unwrap());
        assert_eq!(status(&m), 200);
        assert_eq!(
            IdentifierResponse::from_bytes(m.content())
                .unwrap()
                .response_code,
            IdentifierQueryCode::UnsupportedField
        );
    }
}

#[test]
fn foreign_origin_is_an_encrypted_403() {
    let f = fixture();
    let now = SystemTime::now();
    let bhttp = query_bhttp(
        "evil.example",
        &oblivious::format_date(now),
        &lookup("alice.example.com"),
    );
    let (m, _) = exchange(&f.gw, &bhttp, now);
    assert_eq!(status(&m), 403);
    assert!(
        m.content().windows(5).all(|w| w != b"alice"),
        "no answer leaks"
    );
}

#[test]
fn an_empty_authority_with_a_host_header_is_served() {
    // RFC 9292 §3.5 and its §5.1 example: `:authority` empty, `Host` given.
    let f = fixture();
    let now = SystemTime::now();
    let date = oblivious::format_date(now);
    let mut msg = bhttp::Message::request(
        b"POST".to_vec(),
        b"https".to_vec(),
        Vec::new(),
        format!("/v1/identifierQuery/{HOST}").into_bytes(),
    );
    msg.put_header(b"host", HOST.as_bytes());
    msg.put_header(b"date", date.as_bytes());
    msg.write_content(lookup("alice.example.com"));
    let mut bytes = Vec::new();
    msg.write_bhttp(bhttp::Mode::KnownLength, &mut bytes)
        .unwrap();
    let (m, _) = exchange(&f.gw, &bytes, now);
    assert_eq!(status(&m), 200);
    let r = IdentifierResponse::from_bytes(m.content()).unwrap();
    assert_eq!(r.response_code, IdentifierQueryCode::Success);

    // A foreign Host is as foreign as a foreign :authority.
    let mut msg = bhttp::Message::request(
        b"POST".to_vec(),
        b"https".to_vec(),
        Vec::new(),
        format!("/v1/identifierQuery/{HOST}").into_bytes(),
    );
    msg.put_header(b"host", b"evil.example");
    msg.put_header(b"date", date.as_bytes());
    msg.write_content(lookup("alice.example.com"));
    let mut bytes = Vec::new();
    msg.write_bhttp(bhttp::Mode::KnownLength, &mut bytes)
        .unwrap();
    assert_eq!(status(&exchange(&f.gw, &bytes, now).0), 403);
}

#[test]
fn unknown_inner_path_and_method() {
    let f = fixture();
    let now = SystemTime::now();
    let date = oblivious::format_date(now);
    let get = oblivious::encode_request(
        "GET",
        HOST,
        &format!("/v1/identifierQuery/{HOST}"),
        &[("date", &date)],
        b"",
    )
    .unwrap();
    assert_eq!(status(&exchange(&f.gw, &get, now).0), 405);
    let other = oblivious::encode_request("GET", HOST, "/admin", &[("date", &date)], b"").unwrap();
    assert_eq!(status(&exchange(&f.gw, &other, now).0), 404);
    // No resolver configured: /dns-query does not exist here.
    let dns =
        oblivious::encode_request("POST", HOST, "/dns-query", &[("date", &date)], b"").unwrap();
    assert_eq!(status(&exchange(&f.gw, &dns, now).0), 404);
}

#[test]
fn stale_or_missing_date_is_the_date_problem_with_the_gateway_clock() {
    let f = fixture();
    let now = SystemTime::now();
    for date in [
        Some(oblivious::format_date(now - Duration::from_secs(120))),
        Some(oblivious::format_date(now + Duration::from_secs(120))),
        Some("not a date".to_owned()),
        None,
    ] {
        let headers: Vec<(&str, &str)> = date.iter().map(|d| ("date", d.as_str())).collect();
        let bhttp = oblivious::encode_request(
            "POST",
            HOST,
            &format!("/v1/identifierQuery/{HOST}"),
            &headers,
            &lookup("alice.example.com"),
        )
        .unwrap();
        let (m, _) = exchange(&f.gw, &bhttp, now);
        assert_eq!(status(&m), 400);
        assert_eq!(problem_of(&m).kind(), Some(ProblemType::Date));
        let gateway_date = std::str::from_utf8(m.header().get(b"date").unwrap()).unwrap();
        assert_eq!(oblivious::date_skew(gateway_date, now), Ok(0));
    }
    // Inside the window is fine.
    let ok = query_bhttp(
        HOST,
        &oblivious::format_date(now - Duration::from_secs(50)),
        &lookup("alice.example.com"),
    );
    assert_eq!(status(&exchange(&f.gw, &ok, now).0), 200);
}

#[test]
fn a_replay_is_refused() {
    let f = fixture();
    let now = SystemTime::now();
    let (enc, resp) = seal(
        &f.gw,
        &query_bhttp(
            HOST,
            &oblivious::format_date(now),
            &lookup("alice.example.com"),
        ),
    );
    let first = block_on(f.gw.handle(&enc, now)).unwrap();
    assert_eq!(
        status(&oblivious::decode_message(&resp.decapsulate(&first).unwrap()).unwrap()),
        200
    );
    let again = block_on(f.gw.handle(&enc, now + Duration::from_secs(1))).unwrap();
    // The replayer cannot read the answer, but the original client could: it is a 400.
    let (_, resp2) = seal(&f.gw, b"");
    assert!(resp2.decapsulate(&again).is_err());
    assert_eq!(f.gw.metrics().get(crate::outcome::Outcome::Replay), 1);
}

/// The fixture's gateway after a restart at `started`: the same key file
/// and directory, an empty in-memory replay cache.
fn restarted(f: &Fixture, started: SystemTime) -> Gateway {
    let directory = Directory::open(&f._dir.path().join("dir.sqlite")).unwrap();
    let keys = Arc::new(KeyManager::open(&f._dir.path().join("keys.json"), started).unwrap());
    Gateway::new(
        Settings {
            public_host: HOST.into(),
            extra_origins: vec![],
            date_window: Duration::from_secs(60),
            future_skew: std::time::Duration::from_secs(10),
            replay_capacity: 10_000,
            started: Some(started),
        },
        keys,
        Backend::Embedded(Arc::new(directory)),
        None,
    )
}

#[test]
fn a_request_captured_before_a_restart_cannot_be_replayed_after_it() {
    let f = fixture();
    let sent = SystemTime::now();
    let (enc, _) = seal(
        &f.gw,
        &query_bhttp(
            HOST,
            &oblivious::format_date(sent),
            &lookup("alice.example.com"),
        ),
    );
    assert!(block_on(f.gw.handle(&enc, sent)).is_ok());
    assert_eq!(f.gw.metrics().get(crate::outcome::Outcome::Ok), 1);

    // The gateway restarts 5 s later with the same keys and an empty cache.
    let started = sent + Duration::from_secs(5);
    let restarted = restarted(&f, started);
    // The captured request, replayed: the date problem, not an answer.
    let now = started + Duration::from_secs(1);
    assert!(block_on(restarted.handle(&enc, now)).is_ok());
    assert_eq!(
        restarted.metrics().get(crate::outcome::Outcome::Ok),
        0,
        "the replay was answered"
    );
    assert_eq!(
        restarted.metrics().get(crate::outcome::Outcome::StaleDate),
        1
    );
    // The client's own retry, dated by the gateway's clock, is served.
    let bhttp = query_bhttp(
        HOST,
        &oblivious::format_date(now),
        &lookup("alice.example.com"),
    );
    let (m, _) = exchange(&restarted, &bhttp, now);
    assert_eq!(status(&m), 200);
    // One window after the start, the rule no longer applies.
    let later = started + Duration::from_secs(61);
    let bhttp = query_bhttp(
        HOST,
        &oblivious::format_date(later - Duration::from_secs(30)),
        &lookup("alice.example.com"),
    );
    let (m, _) = exchange(&restarted, &bhttp, later);
    assert_eq!(status(&m), 200);
}

/// A request sent, captured and replayed after a crash and a fast restart
/// within the same second: the replay is refused (the date problem), and the
/// client's retry with the gateway's `Date` is served.
#[test]
fn a_request_replayed_after_a_restart_in_the_same_second_is_refused() {
    let f = fixture();
    // Whole seconds, as dates have.
    let sent = UNIX_EPOCH + Duration::from_secs(unix_secs(SystemTime::now()) as u64);
    let (enc, _) = seal(
        &f.gw,
        &query_bhttp(
            HOST,
            &oblivious::format_date(sent),
            &lookup("alice.example.com"),
        ),
    );
    assert!(block_on(f.gw.handle(&enc, sent)).is_ok());
    assert_eq!(f.gw.metrics().get(crate::outcome::Outcome::Ok), 1);

    // kill -9 and an immediate restart: the same second, an empty cache.
    let started = sent + Duration::from_millis(400);
    let restarted = restarted(&f, started);
    let now = started + Duration::from_millis(300);
    assert!(block_on(restarted.handle(&enc, now)).is_ok());
    assert_eq!(
        restarted.metrics().get(crate::outcome::Outcome::Ok),
        0,
        "the replay was answered"
    );
    assert_eq!(
        restarted.metrics().get(crate::outcome::Outcome::StaleDate),
        1
    );

    // The client's own retry: a fresh request dated by the Date the
    // gateway sent (after the start second), still within that second.
    let bhttp = query_bhttp(
        HOST,
        &oblivious::format_date(now),
        &lookup("alice.example.com"),
    );
    let (m, _) = exchange(&restarted, &bhttp, now);
    assert_eq!(status(&m), 400, "dated in the start second: told to retry");
    let date = std::str::from_utf8(m.header().get(b"date").unwrap()).unwrap();
    let skew = oblivious::date_skew(date, now).unwrap();
    assert_eq!(skew, 1, "the retry date is the second after the start");
    let retry = query_bhttp(HOST, date, &lookup("alice.example.com"));
    let (m, _) = exchange(&restarted, &retry, now);
    assert_eq!(status(&m), 200);
}

#[test]
fn a_flood_dated_ahead_cannot_lock_out_honest_requests() {
    // A small cache (16 a shard) and a flood larger than it, of valid
    // requests dated 59 s ahead: inside the old symmetric window.
    let f = fixture_with(1_000);
    let now = SystemTime::now();
    let ahead = oblivious::format_date(now + Duration::from_secs(59));
    for _ in 0..1_200 {
        let (enc, _) = seal(
            &f.gw,
            &query_bhttp(HOST, &ahead, &lookup("alice.example.com")),
        );
        assert!(block_on(f.gw.handle(&enc, now)).is_ok());
    }
    assert_eq!(
        f.gw.metrics().get(crate::outcome::Outcome::Ok),
        0,
        "the flood was served"
    );
    assert_eq!(
        f.gw.metrics().get(crate::outcome::Outcome::StaleDate),
        1_200
    );
    // An honest request dated by a correct clock is served.
    let later = now + Duration::from_secs(2);
    let bhttp = query_bhttp(
        HOST,
        &oblivious::format_date(later),
        &lookup("alice.example.com"),
    );
    assert_eq!(status(&exchange(&f.gw, &bhttp, later).0), 200);
    // A client whose clock runs 30 s fast gets the gateway's Date, and its
    // one retry with that Date is served.
    let bhttp = query_bhttp(
        HOST,
        &oblivious::format_date(later + Duration::from_secs(30)),
        &lookup("alice.example.com"),
    );
    let (m, _) = exchange(&f.gw, &bhttp, later);
    assert_eq!(problem_of(&m).kind(), Some(ProblemType::Date));
    let gateway_date = std::str::from_utf8(m.header().get(b"date").unwrap()).unwrap();
    let retry = query_bhttp(HOST, gateway_date, &lookup("alice.example.com"));
    assert_eq!(status(&exchange(&f.gw, &retry, later).0), 200);
}

#[test]
fn a_full_replay_cache_refuses_new_requests_with_an_encrypted_503() {
    let f = fixture_with(1_000);
    let now = SystemTime::now();
    let date = oblivious::format_date(now);
    let mut sent = Vec::new();
    let mut refused = 0;
    for _ in 0..1_100 {
        let (enc, resp) = seal(
            &f.gw,
            &query_bhttp(HOST, &date, &lookup("alice.example.com")),
        );
        let sealed = block_on(f.gw.handle(&enc, now)).unwrap();
        let m = oblivious::decode_message(&resp.decapsulate(&sealed).unwrap()).unwrap();
        match status(&m) {
            200 => sent.push(enc),
            503 => refused += 1,
            other => panic!("{other}"),
        }
    }
    assert!(
        refused > 0
            && f.gw
                .metrics()
                .get(crate::outcome::Outcome::ReplayUnavailable)
                == refused
    );
    // Nothing accepted was forgotten to make room: every replay is refused.
    for enc in &sent {
        assert!(block_on(f.gw.handle(enc, now + Duration::from_secs(30))).is_ok());
    }
    assert_eq!(
        f.gw.metrics().get(crate::outcome::Outcome::Replay),
        sent.len() as u64
    );
}

mod token_tests;
