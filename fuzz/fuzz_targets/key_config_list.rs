#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = mimi_proto::oblivious::decode_key_config_list(data) {
        for e in entries {
            e.config().unwrap();
        }
    }
});
