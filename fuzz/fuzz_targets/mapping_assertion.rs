#![no_main]
//! A signed mapping as a hostile provider may send it (DESIGN §11): the
//! strict decoder, the verdict, and the response component that carries it.
use mimi_proto::codec::Codec;
use mimi_proto::mapping::{self, Assertion, AuthorityKey, Expected, MappingAssertions};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(a) = Assertion::decode(data) {
        let key = AuthorityKey {
            name: a.claims().authority.clone(),
            key: [7; 32],
        };
        let _ = a.signed_by(&key);
        let providers = [a.claims().mapping.provider.clone()];
        let expected = Expected {
            identifier: &a.claims().mapping.identifier,
            account: &a.claims().mapping.account,
            providers: &providers,
        };
        let _ = mapping::judge(Some(data), expected, &[key], 1_800_000_000);
    }
    let _ = MappingAssertions::from_bytes(data);
});
