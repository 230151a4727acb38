#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = mimi_proto::oblivious::decode_key_config_list(data) {
        for e in entries {
            // Every entry a client keeps must be usable for a request.
            let _ = mimi_proto::oblivious::ClientRequest::new(&e).encapsulate(b"q");
        }
    }
});
