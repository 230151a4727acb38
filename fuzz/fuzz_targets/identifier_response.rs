#![no_main]
use mimi_proto::codec::Codec;
use mimi_proto::IdentifierResponse;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(resp) = IdentifierResponse::from_bytes(data) {
        assert_eq!(resp.to_bytes().unwrap(), data);
    }
});
