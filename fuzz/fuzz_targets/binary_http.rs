#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = mimi_proto::oblivious::decode_message(data);
});
