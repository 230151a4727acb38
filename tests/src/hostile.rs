//! Hostile parties for the attack tests (DESIGN §4.1, §8): a relay that
//! hands out key lists of its own, or refuses `CONNECT`; and a gateway that
//! tries to plant state in clients (a per-request `Date`, per-request
//! directory documents) to recognise them in later requests, and asserts
//! mappings of its choosing (DESIGN §11).
//!
//! Each records what the attack achieved, so that a test can assert it
//! achieved nothing, and see it achieve something against a client without
//! the defences.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use mimi_proto::codec::Codec;
use mimi_proto::oblivious::{
    self, DIRECTORY_PATH, MEDIA_JSON, MEDIA_OCTET_STREAM, MEDIA_OHTTP_KEYS, MEDIA_OHTTP_RES,
    MEDIA_PROBLEM_JSON, Problem, ProblemType,
};
use mimi_proto::query::{IdentifierUri, UserProfile};
use mimi_proto::{IdentifierQueryCode, IdentifierRequest, IdentifierResponse};
use mimi_server_core::layer::Next;

/// What a hostile relay does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayAttack {
    /// Serves a key list of its own as the "shared copy" (the same to all).
    SubstituteKeys,
    /// Serves each client connection a key list of its own (key targeting).
    TargetKeys,
    /// Refuses every `CONNECT`, so that clients cannot check keys.
    RefuseConnect,
}

/// A key list the relay made, and the server that opens what is sealed to it.
type OwnKeys = (Vec<u8>, ohttp::Server);

/// A key list and a server from the `ohttp` crate, not ours: every hostile
/// gateway is also a cross-test of our client against an independent OHTTP
/// implementation.
fn independent_server(key_id: u8, ikm: &[u8; 32]) -> (Vec<u8>, ohttp::Server) {
    use ohttp::hpke::{Aead, Kdf, Kem};
    let suites = [Aead::Aes128Gcm, Aead::ChaCha20Poly1305]
        .map(|a| ohttp::SymmetricSuite::new(Kdf::HkdfSha256, a))
        .to_vec();
    let config =
        ohttp::KeyConfig::derive(key_id, Kem::X25519Sha256, suites, ikm).expect("key derivation");
    let list = ohttp::KeyConfig::encode_list(&[&config]).expect("key list");
    (list, ohttp::Server::new(config).expect("server"))
}

/// A relay that attacks as `attack` says, and is honest otherwise.
#[derive(Debug)]
pub struct HostileRelay {
    attack: RelayAttack,
    /// Key lists handed out, by client connection (one entry when not targeting).
    keys: Mutex<HashMap<Option<SocketAddr>, OwnKeys>>,
    /// Requests the relay managed to decrypt.
    decrypted: AtomicUsize,
    /// Key lists of its own it handed out.
    substituted: AtomicUsize,
}

fn respond(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

impl HostileRelay {
    /// A relay attacking as `attack`.
    pub fn new(attack: RelayAttack) -> Self {
        Self {
            attack,
            keys: Mutex::default(),
            decrypted: AtomicUsize::new(0),
            substituted: AtomicUsize::new(0),
        }
    }

    /// How many requests it decrypted.
    pub fn decrypted(&self) -> usize {
        self.decrypted.load(Ordering::SeqCst)
    }

    /// How many key lists of its own it handed out.
    pub fn substituted(&self) -> usize {
        self.substituted.load(Ordering::SeqCst)
    }

    /// The key list for `peer`: made on first use.
    fn own_keys(&self, peer: SocketAddr) -> Vec<u8> {
        let slot = (self.attack == RelayAttack::TargetKeys).then_some(peer);
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let n = keys.len();
        let (list, _) = keys.entry(slot).or_insert_with(|| {
            // Distinct key material for each list.
            let ikm = [u8::try_from(n % 200).unwrap_or(0) + 1; 32];
            independent_server(1, &ikm)
        });
        list.clone()
    }

    /// Answers one request, attacking where it can.
    /// `next` is the relay's own handling.
    pub async fn handle(
        &self,
        req: Request<Full<Bytes>>,
        peer: SocketAddr,
        next: Next,
    ) -> Response<Full<Bytes>> {
        if req.method() == Method::CONNECT {
            if self.attack == RelayAttack::RefuseConnect {
                return respond(
                    StatusCode::FORBIDDEN,
                    "text/plain",
                    b"no tunnels\n".to_vec(),
                );
            }
            return next(req).await;
        }
        let substitutes = matches!(
            self.attack,
            RelayAttack::SubstituteKeys | RelayAttack::TargetKeys
        );
        if substitutes && req.method() == Method::GET && req.uri().path().starts_with("/gateway/") {
            self.substituted.fetch_add(1, Ordering::SeqCst);
            let mut r = respond(StatusCode::OK, MEDIA_OHTTP_KEYS, self.own_keys(peer));
            r.headers_mut().insert(
                http::header::CACHE_CONTROL,
                http::HeaderValue::from_static("public, max-age=60"),
            );
            return r;
        }
        if req.method() == Method::POST {
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let servers: Vec<ohttp::Server> = self
                .keys
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .map(|(_, s)| s.clone())
                .collect();
            if servers.iter().any(|s| s.decapsulate(&body).is_ok()) {
                self.decrypted.fetch_add(1, Ordering::SeqCst);
                return respond(StatusCode::BAD_GATEWAY, "text/plain", Vec::new());
            }
            return next(Request::from_parts(parts, Full::new(body))).await;
        }
        next(req).await
    }
}

/// One decrypted request as the hostile gateway saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// The inner `Date`.
    pub date: String,
    /// Whether it carried an `Authorization` header (a token).
    pub authorization: bool,
}

/// A provider's gateway that tries to tag its clients: it answers every
/// request dated by the client's own clock with a `date` problem carrying a
/// `Date` of its own making, distinct each time (a tag), and serves directory
/// documents whose identifierQuery path is distinct each time. A client that
/// kept either would carry the tag into later requests.
#[derive(Debug)]
pub struct TaggingGateway {
    host: String,
    server: ohttp::Server,
    key_list: Vec<u8>,
    seen: Mutex<Vec<SeenRequest>>,
    /// Tags handed out in `Date`s: the value, its time, how often it came back.
    date_tags: Mutex<Vec<(String, SystemTime, usize)>>,
    path_tags: AtomicUsize,
    /// Answer queries with a `PrivateToken` challenge of its own making: a
    /// redemption context for each client, to link the tokens it spends.
    challenge_tags: std::sync::atomic::AtomicBool,
    /// The answers it gives for these identifiers, whatever the truth.
    lies: Mutex<HashMap<String, IdentifierResponse>>,
}

impl TaggingGateway {
    /// The gateway for `host`.
    pub fn new(host: &str) -> Self {
        let (key_list, server) = independent_server(3, &[0x5a; 32]);
        Self {
            host: host.to_owned(),
            server,
            key_list,
            seen: Mutex::default(),
            date_tags: Mutex::default(),
            path_tags: AtomicUsize::new(0),
            challenge_tags: std::sync::atomic::AtomicBool::new(false),
            lies: Mutex::default(),
        }
    }

    /// From now on, answers identifierQuery for `identifier` (normalised)
    /// with `answer`: another account, someone else's signed mapping, no
    /// signature at all.
    pub fn lie_about(&self, identifier: &str, answer: IdentifierResponse) {
        self.lies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(identifier.to_owned(), answer);
    }

    /// From now on, answers identifierQuery with a tagged token challenge.
    pub fn tag_with_token_challenges(&self) {
        self.challenge_tags.store(true, Ordering::SeqCst);
    }

    /// Every decrypted request, in order.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The `Date` tags handed out, each with how many requests carried it back.
    pub fn date_tags(&self) -> Vec<(String, usize)> {
        self.date_tags
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(tag, _, uses)| (tag.clone(), *uses))
            .collect()
    }

    /// How many directory documents with a tagged path it served.
    pub fn path_tags(&self) -> usize {
        self.path_tags.load(Ordering::SeqCst)
    }

    /// Answers one request to its gateway resource.
    pub async fn handle(&self, req: Request<Full<Bytes>>) -> Response<Full<Bytes>> {
        if req.method() == Method::GET {
            let mut r = respond(StatusCode::OK, MEDIA_OHTTP_KEYS, self.key_list.clone());
            r.headers_mut().insert(
                http::header::CACHE_CONTROL,
                http::HeaderValue::from_static("public, max-age=60"),
            );
            return r;
        }
        let body = req
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let Ok((plain, sealer)) = self.server.decapsulate(&body) else {
            let p = Problem::of(ProblemType::OhttpKey);
            return respond(
                StatusCode::UNPROCESSABLE_ENTITY,
                MEDIA_PROBLEM_JSON,
                p.to_json(),
            );
        };
        let Ok(msg) = oblivious::decode_message(&plain) else {
            return respond(StatusCode::BAD_REQUEST, "text/plain", Vec::new());
        };
        let text = |v: Option<&[u8]>| String::from_utf8_lossy(v.unwrap_or_default()).into_owned();
        let seen = SeenRequest {
            method: text(msg.control().method()),
            path: text(msg.control().path()),
            date: text(msg.header().get(b"date")),
            authorization: msg.header().get(b"authorization").is_some(),
        };
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(seen.clone());
        let asked = IdentifierRequest::from_bytes(msg.content())
            .ok()
            .and_then(|r| r.query_elements.into_iter().next())
            .map(|e| String::from_utf8_lossy(&e.search_value).into_owned());
        let inner = self.answer(&seen, asked.as_deref());
        let sealed = sealer.encapsulate(&inner).unwrap_or_default();
        respond(StatusCode::OK, MEDIA_OHTTP_RES, sealed)
    }

    fn answer(&self, seen: &SeenRequest, asked: Option<&str>) -> Vec<u8> {
        let mut tags = self.date_tags.lock().unwrap_or_else(|p| p.into_inner());
        // A Date within a few seconds of a tag is that tag (they are an hour
        // apart): a client that kept it would have moved on a little.
        let tagged = tags
            .iter_mut()
            .find(|(_, at, _)| oblivious::date_skew(&seen.date, *at).is_ok_and(|s| s.abs() <= 5));
        let Some((_, _, uses)) = tagged else {
            // Not one of our Dates: hand out a new tag, far from any clock.
            let n = u64::try_from(tags.len()).unwrap_or(0);
            let at = SystemTime::now() + Duration::from_secs(100_000 + 3_600 * n);
            let tag = oblivious::format_date(at);
            tags.push((tag.clone(), at, 0));
            let p = Problem::of(ProblemType::Date);
            return oblivious::encode_response(
                400,
                &[("content-type", MEDIA_PROBLEM_JSON), ("date", &tag)],
                &p.to_json(),
            )
            .unwrap_or_default();
        };
        *uses += 1;
        drop(tags);
        if self.challenge_tags.load(Ordering::SeqCst) && seen.path != DIRECTORY_PATH {
            use mimi_proto::privacypass::{TokenChallenge, header};
            let mut challenge = TokenChallenge::standard(&self.host);
            challenge.redemption_context = rand::random::<[u8; 32]>().to_vec();
            let spki = serde_json::from_str::<serde_json::Value>(include_str!(
                "../../proto/src/privacypass/vectors/public_vectors.json"
            ))
            .ok()
            .and_then(|v| hex::decode(v[0]["pk_s"].as_str()?).ok())
            .unwrap_or_default();
            let value = header::www_authenticate(&challenge, &spki).unwrap_or_default();
            return oblivious::encode_response(
                401,
                &[
                    ("content-type", MEDIA_PROBLEM_JSON),
                    ("www-authenticate", &value),
                ],
                b"{}",
            )
            .unwrap_or_default();
        }
        if seen.path == DIRECTORY_PATH {
            let n = self.path_tags.fetch_add(1, Ordering::SeqCst);
            let doc = format!(
                r#"{{"identifierQuery":"https://{}/v1/identifierQuery/tag-{n}/{{domain}}"}}"#,
                self.host
            );
            return oblivious::encode_response(
                200,
                &[("content-type", MEDIA_JSON)],
                doc.as_bytes(),
            )
            .unwrap_or_default();
        }
        let lie = asked.and_then(|id| {
            self.lies
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(id)
                .cloned()
        });
        if let Some(lie) = lie {
            return oblivious::encode_response(
                200,
                &[("content-type", MEDIA_OCTET_STREAM)],
                &lie.to_bytes().unwrap_or_default(),
            )
            .unwrap_or_default();
        }
        let uri = IdentifierUri {
            uri: "mimi://evil.example/u/someone".into(),
        };
        let found = IdentifierResponse {
            response_code: IdentifierQueryCode::Success,
            found_profiles: vec![UserProfile {
                stable_uri: uri.clone(),
                fields: Vec::new(),
            }],
            uri: vec![uri],
            id_response_extensions: Default::default(),
        };
        oblivious::encode_response(
            200,
            &[("content-type", MEDIA_OCTET_STREAM)],
            &found.to_bytes().unwrap_or_default(),
        )
        .unwrap_or_default()
    }
}

/// A hostile issuer's directory for a client (DESIGN §10): a request for the
/// issuer directory that comes without a client certificate (a client,
/// through the relay's tunnel, not the relay's attester) gets a token key of
/// its own, so that its tokens could be told apart when spent. `None` for
/// every other request.
pub fn per_client_token_key(req: &Request<Full<Bytes>>) -> Option<Response<Full<Bytes>>> {
    use mimi_proto::privacypass::{
        ISSUER_DIRECTORY_PATH, ISSUER_REQUEST_PATH, IssuerDirectory, MEDIA_ISSUER_DIRECTORY,
        TOKEN_TYPE_BLIND_RSA, TokenKeyEntry, header,
    };
    if req.uri().path() != ISSUER_DIRECTORY_PATH
        || req
            .extensions()
            .get::<mimi_server_core::client_auth::PeerCertificate>()
            .is_some()
    {
        return None;
    }
    // A valid key that is not the issuer's: RFC 9578's test vector key.
    let vectors: serde_json::Value = serde_json::from_str(include_str!(
        "../../proto/src/privacypass/vectors/public_vectors.json"
    ))
    .ok()?;
    let spki = hex::decode(vectors[0]["pk_s"].as_str()?).ok()?;
    let host = req.headers().get(http::header::HOST)?.to_str().ok()?;
    let dir = IssuerDirectory {
        issuer_request_uri: format!("https://{host}{ISSUER_REQUEST_PATH}"),
        token_keys: vec![TokenKeyEntry {
            token_type: TOKEN_TYPE_BLIND_RSA,
            token_key: header::b64url(&spki),
            not_before: None,
        }],
    };
    Response::builder()
        .header(http::header::CONTENT_TYPE, MEDIA_ISSUER_DIRECTORY)
        .header(http::header::CACHE_CONTROL, "public, max-age=3600")
        .body(Full::new(Bytes::from(dir.to_json())))
        .ok()
}
