//! The embedded identifierQuery (DESIGN §5), with each found account's
//! signed mapping (§11), and the cap on accounts per answer.

use mimi_proto::codec::Codec;
use mimi_proto::mapping::{ASSERTIONS_COMPONENT_ID, assertions_in, attach_assertions};
use mimi_proto::oblivious::MEDIA_OCTET_STREAM;
use mimi_proto::query::{IdentifierUri, MAX_ACCOUNTS_PER_IDENTIFIER, UserProfile};
use mimi_proto::{
    Identifier, IdentifierQueryCode, IdentifierRequest, IdentifierResponse, SearchIdentifierType,
};

use crate::directory::{Directory, Found};
use crate::error::{Error, Result};

use super::TargetResponse;

/// The embedded identifierQuery: one query element of type handle, email or
/// phone; anything else is `unsupportedField`. Absent and not searchable give
/// the same `notFound`. The flag says whether the accounts were cut to
/// [`MAX_ACCOUNTS_PER_IDENTIFIER`].
pub async fn identifier_query(dir: &Directory, body: &[u8]) -> Result<(TargetResponse, bool)> {
    let request = IdentifierRequest::from_bytes(body).map_err(|_| Error::MalformedQuery)?;
    let mut capped = false;
    let response = match request.query_elements.as_slice() {
        [] => return Err(Error::MalformedQuery),
        [element] => {
            let supported = matches!(
                element.search_type,
                SearchIdentifierType::Handle
                    | SearchIdentifierType::Email
                    | SearchIdentifierType::Phone
            );
            if supported {
                let value = std::str::from_utf8(&element.search_value)
                    .map_err(|_| Error::MalformedQuery)?;
                let id = Identifier::parse(value).map_err(|_| Error::MalformedQuery)?;
                if id.search_type() != element.search_type {
                    return Err(Error::MalformedQuery);
                }
                let mut accounts = dir.lookup(id.search_type(), &id.to_string()).await?;
                capped = accounts.len() > MAX_ACCOUNTS_PER_IDENTIFIER;
                accounts.truncate(MAX_ACCOUNTS_PER_IDENTIFIER);
                found(accounts)?
            } else {
                IdentifierResponse::with_code(IdentifierQueryCode::UnsupportedField)
            }
        }
        _ => IdentifierResponse::with_code(IdentifierQueryCode::UnsupportedField),
    };
    Ok((
        TargetResponse {
            status: 200,
            content_type: MEDIA_OCTET_STREAM.into(),
            body: response.to_bytes().map_err(|_| Error::Internal)?,
        },
        capped,
    ))
}

/// Cuts an answer to [`MAX_ACCOUNTS_PER_IDENTIFIER`] accounts (and as many
/// profiles, and the assertions of the accounts kept); says whether it had
/// more.
fn cap_accounts(mut response: IdentifierResponse) -> (IdentifierResponse, bool) {
    let capped = response.uri.len() > MAX_ACCOUNTS_PER_IDENTIFIER
        || response.found_profiles.len() > MAX_ACCOUNTS_PER_IDENTIFIER;
    if !capped {
        return (response, false);
    }
    // Assertions that do not decode pass as they came: the client judges them.
    let assertions = assertions_in(&response).ok();
    response.uri.truncate(MAX_ACCOUNTS_PER_IDENTIFIER);
    response
        .found_profiles
        .truncate(MAX_ACCOUNTS_PER_IDENTIFIER);
    if let Some(mut kept) = assertions {
        kept.truncate(response.uri.len());
        response
            .id_response_extensions
            .component_data
            .retain(|c| c.component_id != ASSERTIONS_COMPONENT_ID);
        let slots: Vec<Option<&[u8]>> = kept.iter().map(Option::as_deref).collect();
        // The counts match by construction.
        let _ = attach_assertions(&mut response, &slots);
    }
    (response, true)
}

/// The provider's own API may hold more accounts for an identifier than a
/// client is sent: a successful answer that decodes is cut like the embedded
/// directory's; anything else passes as it came.
pub(super) fn cap_upstream_answer(answer: TargetResponse) -> (TargetResponse, bool) {
    if answer.status != 200 {
        return (answer, false);
    }
    let Ok(response) = IdentifierResponse::from_bytes(&answer.body) else {
        return (answer, false);
    };
    match cap_accounts(response) {
        (cut, true) => match cut.to_bytes() {
            Ok(body) => (TargetResponse { body, ..answer }, true),
            Err(_) => (answer, false),
        },
        (_, false) => (answer, false),
    }
}

/// The answer for the accounts found, each with the assertion the directory
/// holds for it (DESIGN §11), padded later like every other answer.
fn found(mut accounts: Vec<Found>) -> Result<IdentifierResponse> {
    if accounts.is_empty() {
        return Ok(IdentifierResponse::with_code(IdentifierQueryCode::NotFound));
    }
    // The assertions first, so that the accounts move into the answer.
    let signed = accounts.iter().any(|f| f.assertion.is_some());
    let assertions: Vec<Option<Vec<u8>>> = if signed {
        accounts.iter_mut().map(|f| f.assertion.take()).collect()
    } else {
        Vec::new()
    };
    let uris: Vec<IdentifierUri> = accounts
        .into_iter()
        .map(|f| IdentifierUri { uri: f.account })
        .collect();
    let mut response = IdentifierResponse {
        response_code: IdentifierQueryCode::Success,
        found_profiles: uris
            .iter()
            .map(|u| UserProfile {
                stable_uri: u.clone(),
                fields: Vec::new(),
            })
            .collect(),
        uri: uris,
        id_response_extensions: Default::default(),
    };
    if signed {
        let slots: Vec<Option<&[u8]>> = assertions.iter().map(Option::as_deref).collect();
        attach_assertions(&mut response, &slots).map_err(|_| Error::Internal)?;
    }
    Ok(response)
}
