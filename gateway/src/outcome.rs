//! What became of one request to the gateway: one vocabulary, named once.
//! The metrics count by it (an array index, no lookup), the errors map to
//! it, and its names are the `outcome` label of
//! `mimi_gateway_requests_total`.

macro_rules! outcomes {
    ($($variant:ident => $name:literal, $doc:literal;)*) => {
        /// What became of one request to the gateway.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Outcome {
            $(#[doc = $doc] $variant,)*
        }

        impl Outcome {
            /// Every outcome, in the order metrics list them.
            pub const ALL: &'static [Outcome] = &[$(Outcome::$variant,)*];

            /// The metrics label.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Outcome::$variant => $name,)*
                }
            }

            /// The outcome a metrics label names.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($name => Some(Outcome::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

outcomes! {
    Ok => "ok", "Answered.";
    Keys => "keys", "The key configurations were served.";
    NotFound => "not_found", "No such resource.";
    MethodNotAllowed => "method_not_allowed", "A method the resource does not take.";
    UnsupportedMediaType => "unsupported_media_type", "Not `message/ohttp-req`.";
    BodyTooLarge => "body_too_large", "A body over the limit.";
    BodyTimeout => "body_timeout", "The body did not arrive in time.";
    MalformedEncapsulation => "malformed_encapsulation", "Not an encapsulated request.";
    KeyRejected => "key_rejected", "Encrypted to a key the gateway does not hold.";
    InnerMalformed => "inner_malformed", "The inner Binary HTTP request did not decode.";
    StaleDate => "stale_date", "The inner `Date` is outside the window.";
    Replay => "replay", "A request seen before.";
    ForeignOrigin => "foreign_origin", "For an origin this gateway does not serve.";
    InnerNotFound => "inner_not_found", "No such inner resource.";
    InnerMethodNotAllowed => "inner_method_not_allowed", "An inner method the target does not take.";
    MalformedQuery => "malformed_query", "The identifierQuery did not decode.";
    UpstreamUnavailable => "upstream_unavailable", "The discovery API could not be reached.";
    UpstreamTimeout => "upstream_timeout", "The discovery API did not answer in time.";
    ReplayUnavailable => "replay_unavailable", "The replay store could not answer.";
    DirectoryUnavailable => "directory_unavailable", "The directory could not answer.";
    TokenMissing => "token_missing", "identifierQuery without the token it needs.";
    TokenInvalid => "token_invalid", "A token that does not verify, or not for our challenge.";
    TokenSpent => "token_spent", "A token spent before.";
    TokenStoreUnavailable => "token_store_unavailable", "The spent-token store could not answer.";
    IssuerDirectory => "issuer_directory", "The issuer directory was served.";
    TokensIssued => "tokens_issued", "A token request was answered.";
    AttesterUnknown => "attester_unknown", "A token request from no configured attester.";
    AttesterOverBudget => "attester_over_budget", "An attester over its budget.";
    TokenRequestMalformed => "token_request_malformed", "A token request that does not decode.";
    TokenKeyUnknown => "token_key_unknown", "A token request for a key the issuer does not hold.";
    Internal => "internal", "The gateway's own failure.";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut names: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        for o in Outcome::ALL {
            assert_eq!(Outcome::from_name(o.as_str()), Some(*o));
            assert_eq!(Outcome::ALL[*o as usize], *o, "ALL is in declaration order");
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Outcome::ALL.len());
    }
}
