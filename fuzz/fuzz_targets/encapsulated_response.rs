#![no_main]
//! The client's first look at what comes back through the relay: an
//! encapsulated response (RFC 9458 §4.4). Never a panic, only a typed error
//! (a forgery cannot open).
use mimi_proto::oblivious::{self, ClientRequest, ServerKey};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let server = ServerKey::derive(1, &[7; 32]).expect("key");
    let list = oblivious::encode_key_config_list([&server]);
    let entry = oblivious::decode_key_config_list(&list).expect("list").remove(0);
    let (_, context) = ClientRequest::new(&entry).encapsulate(b"q").expect("encapsulate");
    assert!(context.decapsulate(data).is_err(), "a forged response opened");
});
