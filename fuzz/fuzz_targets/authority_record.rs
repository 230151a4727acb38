#![no_main]
//! A `v=MIMIA1` TXT record as any DNS answer may hold it (DESIGN §11).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(Some(key)) = mimi_proto::mapping::AuthorityKey::parse_record(data) {
        // What parses prints back to a record that parses to the same key.
        let again = mimi_proto::mapping::AuthorityKey::parse_record(key.to_string().as_bytes());
        assert_eq!(again, Ok(Some(key)));
    }
});
