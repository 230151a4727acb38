#![no_main]
use mimi_proto::codec::Codec;
use mimi_proto::IdentifierRequest;

// Decode, and if it decodes, re-encoding must give the same bytes back.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(req) = IdentifierRequest::from_bytes(data) {
        assert_eq!(req.to_bytes().unwrap(), data);
    }
});
