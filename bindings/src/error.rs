//! Errors across the boundary: [`DiscoveryError`] is what a call throws
//! (one exception class per code, carrying the library's sentence), and
//! [`ErrorCode`] is the same vocabulary as data, for a provider's failed
//! outcome and a failed identifier in a batch.
//!
//! Both are declared from the client's own list of codes, so that a code
//! added there is a code here, with no list to keep in step.

/// Declares the two enums and their conversions over the client's codes.
macro_rules! binding_errors {
    ($($variant:ident => $code:literal,)*) => {
        /// Why a lookup, or one provider's part of it, failed: the codes of
        /// the README's table, as data.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
        pub enum ErrorCode {
            $(
                #[doc = $code]
                $variant,
            )*
            /// `internal`: a task of the library's own died.
            Internal,
            /// `shut_down`: the discoverer was shut down while the lookup
            /// ran, or before it started.
            ShutDown,
        }

        /// Why a call failed. Each variant is one code of the README's table
        /// (its exception class in Python, Kotlin and Swift) and carries the
        /// library's sentence, which never contains the identifier.
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
        #[uniffi(flat_error)]
        pub enum DiscoveryError {
            $(
                #[doc = $code]
                #[error("{0}")]
                $variant(String),
            )*
            /// `internal`: a task of the library's own died.
            #[error("{0}")]
            Internal(String),
            /// `shut_down`: the discoverer was shut down.
            #[error("{0}")]
            ShutDown(String),
        }

        impl ErrorCode {
            /// The code as the README and the JSON output write it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)*
                    Self::Internal => "internal",
                    Self::ShutDown => "shut_down",
                }
            }

            /// The error of this code with `message`.
            pub(crate) fn with_message(self, message: String) -> DiscoveryError {
                match self {
                    $(Self::$variant => DiscoveryError::$variant(message),)*
                    Self::Internal => DiscoveryError::Internal(message),
                    Self::ShutDown => DiscoveryError::ShutDown(message),
                }
            }
        }

        impl DiscoveryError {
            /// This error's code.
            pub fn code(&self) -> ErrorCode {
                match self {
                    $(Self::$variant(_) => ErrorCode::$variant,)*
                    Self::Internal(_) => ErrorCode::Internal,
                    Self::ShutDown(_) => ErrorCode::ShutDown,
                }
            }
        }

        impl From<mimi_client::ErrorCode> for ErrorCode {
            fn from(code: mimi_client::ErrorCode) -> Self {
                match code {
                    $(mimi_client::ErrorCode::$variant => Self::$variant,)*
                    // The client's own `internal`, and any code it adds
                    // without this crate being rebuilt from its list.
                    _ => Self::Internal,
                }
            }
        }
    };
}

mimi_client::for_each_error_code!(binding_errors);

impl From<mimi_client::Error> for DiscoveryError {
    fn from(e: mimi_client::Error) -> Self {
        ErrorCode::from(e.code()).with_message(e.to_string())
    }
}

impl DiscoveryError {
    /// The error of a lookup that the discoverer's shutdown stopped.
    pub(crate) fn shut_down() -> Self {
        Self::ShutDown("the discoverer was shut down; nothing more is sent".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code the client has is the same text here, through both enums.
    #[test]
    fn every_client_code_keeps_its_text_and_sentence() {
        let samples = [
            mimi_client::Error::KeyInconsistent,
            mimi_client::Error::DnsBogus,
            mimi_client::Error::NoMimiRecord,
            mimi_client::Error::QuotaReached {
                retry_after: 5,
                resets_at: "Sun, 06 Dec 2026 09:00:00 GMT".into(),
            },
            mimi_client::Error::Unverified("no trusted signature".into()),
            mimi_client::Error::InvalidIdentifier(mimi_proto::Error::EmptyIdentifier),
        ];
        for e in samples {
            let ours = DiscoveryError::from(e.clone());
            assert_eq!(ours.code().as_str(), e.code().as_str());
            assert_eq!(ours.to_string(), e.to_string());
            assert_ne!(ours.code(), ErrorCode::Internal, "{e}");
        }
    }
}
