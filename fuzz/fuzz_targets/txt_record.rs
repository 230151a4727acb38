#![no_main]
use mimi_proto::MimiRecord;

// A record that parses formats to a text that parses to the same record.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(Some(rec)) = MimiRecord::parse_text(data) {
        let again = MimiRecord::parse_text(rec.to_string().as_bytes()).unwrap().unwrap();
        assert_eq!(again, rec);
    }
});
