#![no_main]
//! The gateway's first look at untrusted bytes: an encapsulated request
//! (RFC 9458 §4.3) opened with our HPKE. Never a panic; a typed error or a
//! request whose response seals.
use std::sync::OnceLock;

use mimi_proto::oblivious::ServerKey;

fn key() -> &'static ServerKey {
    static KEY: OnceLock<ServerKey> = OnceLock::new();
    KEY.get_or_init(|| ServerKey::derive(1, &[7; 32]).expect("key"))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok((_, response)) = key().decapsulate(data) {
        response.encapsulate(b"answer").expect("a response always seals");
    }
});
