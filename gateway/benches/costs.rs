//! What one private lookup costs, piece by piece, against the floor: one
//! X25519 Diffie-Hellman, the least work any gateway must do per request,
//! with each implementation available to Rust (the fastest is the floor).
//!
//! `cargo bench -p mimi-gateway` (see BENCHMARKS.md).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use mimi_gateway::directory::{Directory, Entry};
use mimi_gateway::inner::Backend;
use mimi_gateway::keys::KeyManager;
use mimi_gateway::{Gateway, Settings};
use mimi_proto::codec::Codec;
use mimi_proto::oblivious;
use mimi_proto::oblivious::ClientRequest;
use mimi_proto::query::{IdentifierUri, UserProfile};
use mimi_proto::{
    IdentifierQueryCode, IdentifierRequest, IdentifierResponse, MimiRecord, SearchIdentifierType,
};

const HOST: &str = "mimi.bench.example";

fn inner_request() -> Vec<u8> {
    let request = IdentifierRequest::single(SearchIdentifierType::Handle, "alice.example.com");
    oblivious::identifier_query(HOST, &request, SystemTime::now(), None).unwrap()
}

fn floor(c: &mut Criterion) {
    use aws_lc_rs::agreement as aws;
    let scalar = [7u8; 32];
    let point = x25519_dalek::x25519([9u8; 32], x25519_dalek::X25519_BASEPOINT_BYTES);
    c.bench_function("floor: one X25519 DH (x25519-dalek)", |b| {
        b.iter(|| x25519_dalek::x25519(black_box(scalar), black_box(point)))
    });
    let ours = aws::PrivateKey::from_private_key(&aws::X25519, &scalar).unwrap();
    c.bench_function("floor: one X25519 DH (aws-lc-rs)", |b| {
        b.iter(|| {
            let peer = aws::UnparsedPublicKey::new(&aws::X25519, black_box(&point[..]));
            aws::agree(&ours, peer, (), |k| Ok(black_box(k[0])))
        })
    });
    // ring has only ephemeral keys, made outside the timed part.
    let rng = ring::rand::SystemRandom::new();
    c.bench_function("floor: one X25519 DH (ring, ephemeral key)", |b| {
        b.iter_batched(
            || {
                ring::agreement::EphemeralPrivateKey::generate(&ring::agreement::X25519, &rng)
                    .unwrap()
            },
            |key| {
                let peer =
                    ring::agreement::UnparsedPublicKey::new(&ring::agreement::X25519, &point[..]);
                ring::agreement::agree_ephemeral(key, &peer, |k| black_box(k[0]))
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

fn crypto(c: &mut Criterion) {
    let server = oblivious::ServerKey::derive(1, &[3; 32]).unwrap();
    let list = oblivious::encode_key_config_list([&server]);
    let entry = oblivious::decode_key_config_list(&list).unwrap().remove(0);
    let request = inner_request();

    c.bench_function("client encapsulate (1 KiB padded request)", |b| {
        b.iter(|| black_box(ClientRequest::new(&entry).encapsulate(&request).unwrap()))
    });

    let response =
        oblivious::encode_response(200, &[("content-type", "application/octet-stream")], b"x")
            .unwrap();
    c.bench_function("gateway decapsulate + encapsulate response", |b| {
        b.iter_batched(
            || ClientRequest::new(&entry).encapsulate(&request).unwrap().0,
            |enc| {
                let (plain, ctx) = server.decapsulate(&enc).unwrap();
                black_box(plain);
                black_box(ctx.encapsulate(&response).unwrap())
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

fn gateway_handle(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let keys =
        Arc::new(KeyManager::open(&dir.path().join("keys.json"), SystemTime::now()).unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let directory = Directory::open(&dir.path().join("dir.sqlite")).unwrap();
    rt.block_on(directory.add(&Entry {
        identifier: "alice.example.com".into(),
        account: "mimi://bench.example/u/alice".into(),
        searchable: true,
        assertion: None,
    }))
    .unwrap();
    let gateway = Gateway::new(
        Settings {
            public_host: HOST.into(),
            extra_origins: vec![],
            date_window: Duration::from_secs(600),
            future_skew: std::time::Duration::from_secs(10),
            replay_capacity: 10_000_000,
            started: None,
        },
        keys.clone(),
        Backend::Embedded(Arc::new(directory)),
        None,
    );
    let entry = oblivious::decode_key_config_list(keys.ring().encoded_list())
        .unwrap()
        .remove(0);
    let request = inner_request();
    c.bench_function(
        "gateway: whole request (decapsulate, checks, SQLite lookup, seal)",
        |b| {
            b.iter_batched(
                || ClientRequest::new(&entry).encapsulate(&request).unwrap().0,
                |enc| {
                    black_box(
                        rt.block_on(gateway.handle(&enc, SystemTime::now()))
                            .unwrap(),
                    )
                },
                criterion::BatchSize::SmallInput,
            )
        },
    );
}

fn codecs(c: &mut Criterion) {
    let request = inner_request();
    c.bench_function("binary http: encode padded request", |b| {
        b.iter(inner_request)
    });
    c.bench_function("binary http: decode padded request", |b| {
        b.iter(|| black_box(oblivious::decode_message(black_box(&request)).unwrap()))
    });
    let query = IdentifierRequest::single(SearchIdentifierType::Email, "alice@example.com");
    let query_bytes = query.to_bytes().unwrap();
    c.bench_function("identifierQuery: encode request", |b| {
        b.iter(|| black_box(query.to_bytes().unwrap()))
    });
    c.bench_function("identifierQuery: decode request", |b| {
        b.iter(|| black_box(IdentifierRequest::from_bytes(black_box(&query_bytes)).unwrap()))
    });
    let uri = IdentifierUri {
        uri: "mimi://bench.example/u/alice".into(),
    };
    let response = IdentifierResponse {
        response_code: IdentifierQueryCode::Success,
        uri: vec![uri.clone()],
        found_profiles: vec![UserProfile {
            stable_uri: uri,
            fields: vec![],
        }],
        id_response_extensions: Default::default(),
    };
    let response_bytes = response.to_bytes().unwrap();
    c.bench_function("identifierQuery: decode response", |b| {
        b.iter(|| black_box(IdentifierResponse::from_bytes(black_box(&response_bytes)).unwrap()))
    });
    let record = b"v=MIMI1; p=10; e=mimi.provider.example; s=provider".to_vec();
    c.bench_function("TXT record: parse", |b| {
        b.iter(|| black_box(MimiRecord::parse_text(black_box(&record)).unwrap()))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = floor, crypto, gateway_handle, codecs
}
criterion_main!(benches);
