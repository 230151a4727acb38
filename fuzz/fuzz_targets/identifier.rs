#![no_main]
use mimi_proto::Identifier;

// Normalisation is idempotent.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(id) = Identifier::parse(s) {
            assert_eq!(Identifier::parse(&id.to_string()).unwrap(), id);
        }
    }
});
