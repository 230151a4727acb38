//! Property tests: every codec round-trips, and no decoder panics on
//! arbitrary bytes.

use mimi_proto::codec::Codec;
use mimi_proto::query::{
    AppDataDictionary, ComponentData, IdentifierQueryCode, IdentifierRequest, IdentifierResponse,
    IdentifierUri, ProfileField, QueryElement, SearchIdentifierType, UserProfile,
};
use mimi_proto::{Identifier, MimiRecord, oblivious};
use proptest::prelude::*;

fn search_type() -> impl Strategy<Value = SearchIdentifierType> {
    (1u8..=8).prop_map(|v| SearchIdentifierType::from_u8(v).unwrap())
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn element() -> impl Strategy<Value = QueryElement> {
    (search_type(), bytes(20), bytes(300)).prop_map(|(search_type, sel, search_value)| {
        let selector = matches!(
            search_type,
            SearchIdentifierType::OidcStdClaim | SearchIdentifierType::VcardField
        )
        .then_some(sel);
        QueryElement {
            search_type,
            selector,
            search_value,
        }
    })
}

fn dictionary() -> impl Strategy<Value = AppDataDictionary> {
    prop::collection::vec(
        (any::<u32>(), bytes(40))
            .prop_map(|(component_id, data)| ComponentData { component_id, data }),
        0..3,
    )
    .prop_map(|component_data| AppDataDictionary { component_data })
}

fn uri() -> impl Strategy<Value = IdentifierUri> {
    "[ -~]{0,80}".prop_map(|uri| IdentifierUri { uri })
}

fn response() -> impl Strategy<Value = IdentifierResponse> {
    let code = (0u8..=4).prop_map(|c| match c {
        0 => IdentifierQueryCode::Success,
        1 => IdentifierQueryCode::NotFound,
        2 => IdentifierQueryCode::Ambiguous,
        3 => IdentifierQueryCode::Forbidden,
        _ => IdentifierQueryCode::UnsupportedField,
    });
    let field =
        (any::<u8>(), bytes(10), bytes(30)).prop_map(|(field_source, field_name, field_value)| {
            ProfileField {
                field_source,
                field_name,
                field_value,
            }
        });
    let profile = (uri(), prop::collection::vec(field, 0..3))
        .prop_map(|(stable_uri, fields)| UserProfile { stable_uri, fields });
    (
        code,
        prop::collection::vec(uri(), 0..4),
        prop::collection::vec(profile, 0..3),
        dictionary(),
    )
        .prop_map(
            |(response_code, uri, found_profiles, id_response_extensions)| IdentifierResponse {
                response_code,
                uri,
                found_profiles,
                id_response_extensions,
            },
        )
}

proptest! {
    #[test]
    fn request_round_trips(query_elements in prop::collection::vec(element(), 0..5), ext in dictionary()) {
        let req = IdentifierRequest { query_elements, id_request_extensions: ext };
        let bytes = req.to_bytes().unwrap();
        prop_assert_eq!(IdentifierRequest::from_bytes(&bytes).unwrap(), req);
    }

    #[test]
    fn response_round_trips(resp in response()) {
        let bytes = resp.to_bytes().unwrap();
        prop_assert_eq!(IdentifierResponse::from_bytes(&bytes).unwrap(), resp);
    }

    #[test]
    fn decoders_never_panic(data in bytes(600)) {
        let _ = IdentifierRequest::from_bytes(&data);
        let _ = IdentifierResponse::from_bytes(&data);
        let _ = MimiRecord::parse_text(&data);
        let _ = oblivious::decode_message(&data);
        let _ = oblivious::decode_key_config_list(&data);
        let _ = mimi_proto::directory::DirectoryDocument::from_json(&data);
        let _ = oblivious::Problem::from_json(&data);
    }

    #[test]
    fn decoded_values_re_encode_to_the_same_bytes(data in bytes(300)) {
        // Strict decoding means one encoding per value.
        if let Ok(req) = IdentifierRequest::from_bytes(&data) {
            prop_assert_eq!(req.to_bytes().unwrap(), data.clone());
        }
        if let Ok(resp) = IdentifierResponse::from_bytes(&data) {
            prop_assert_eq!(resp.to_bytes().unwrap(), data);
        }
    }

    #[test]
    fn identifiers_never_panic_and_normalise_idempotently(s in "\\PC{0,80}") {
        if let Ok(id) = Identifier::parse(&s) {
            let again = Identifier::parse(&id.to_string()).unwrap();
            prop_assert_eq!(&again, &id);
            prop_assert!(id.dns_name().len() <= 254 + 70);
        }
    }

    #[test]
    fn record_format_parses_back(p in any::<u16>(), host in "[a-z][a-z0-9]{0,10}\\.[a-z]{2,6}", port in prop::option::of(1u16..), s in prop::option::of("[a-z0-9-]{1,32}")) {
        let text = match (port, &s) {
            (Some(port), Some(s)) => format!("v=MIMI1; p={p}; e={host}:{port}; s={s}"),
            (None, Some(s)) => format!("v=MIMI1; p={p}; e={host}; s={s}"),
            (Some(port), None) => format!("v=MIMI1; p={p}; e={host}:{port}"),
            (None, None) => format!("v=MIMI1; p={p}; e={host}"),
        };
        let rec = MimiRecord::parse_text(text.as_bytes()).unwrap().unwrap();
        prop_assert_eq!(rec.to_string(), text);
    }
}
