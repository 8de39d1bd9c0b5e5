//! The error every server function and API call returns: a message a person
//! can act on, and the HTTP status a client expects.

use serde::{Deserialize, Serialize};
use server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};

/// A failed request, as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// The project or session does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The input is invalid; the message says how to fix it (422).
    #[error("{0}")]
    Invalid(String),
    /// The request conflicts with the current state, e.g. a duplicate (409).
    #[error("{0}")]
    Conflict(String),
    /// The request body is larger than allowed (413).
    #[error("{0}")]
    TooLarge(String),
    /// A limit on concurrent work is reached; the message names it (429).
    #[error("{0}")]
    TooMany(String),
    /// Something failed on the server; details are in the server log (500).
    #[error("{0}")]
    Internal(String),
    /// The request never reached the server function, or its answer was unreadable.
    #[error("request failed: {0}")]
    Transport(String),
}

impl AppError {
    /// The HTTP status this error is sent with.
    pub fn status(&self) -> u16 {
        match self {
            Self::NotFound(_) => 404,
            Self::Invalid(_) => 422,
            Self::Conflict(_) => 409,
            Self::TooLarge(_) => 413,
            Self::TooMany(_) => 429,
            Self::Internal(_) | Self::Transport(_) => 500,
        }
    }

    /// Reads a server function's error body, `{"Invalid":"…"}`, as the
    /// server writes it (compact). By hand: the derived enum decoder costs
    /// the WASM bundle ~4 KB for what a page shows as one message.
    #[cfg(any(feature = "hydrate", test))]
    pub fn from_json(text: &str) -> Option<Self> {
        let (tag, message) = text
            .strip_prefix("{\"")?
            .strip_suffix('}')?
            .split_once("\":")?;
        let message: String = serde_json::from_str(message).ok()?;
        Some(match tag {
            "NotFound" => Self::NotFound(message),
            "Invalid" => Self::Invalid(message),
            "Conflict" => Self::Conflict(message),
            "TooLarge" => Self::TooLarge(message),
            "TooMany" => Self::TooMany(message),
            "Internal" => Self::Internal(message),
            "Transport" => Self::Transport(message),
            _ => return None,
        })
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(msg) | ServerFnErrorErr::MissingArg(msg) => {
                Self::Invalid(format!("invalid request: {msg}"))
            }
            other => Self::Transport(other.to_string()),
        }
    }
}

/// Sets the response status for an error returned by a server function, so
/// scripts calling the endpoint see 404/409/422 rather than a blanket 500.
#[cfg(feature = "ssr")]
pub fn with_status<T>(result: Result<T, AppError>) -> Result<T, AppError> {
    if let Err(err) = &result {
        set_response_status(err.status());
    }
    result
}

/// Sets the HTTP status of the response being rendered (a page or a server
/// function call). Outside a request it does nothing.
#[cfg(feature = "ssr")]
pub fn set_response_status(status: u16) {
    let response = leptos::prelude::use_context::<leptos_axum::ResponseOptions>();
    if let (Some(response), Ok(status)) = (response, axum::http::StatusCode::from_u16(status)) {
        response.set_status(status);
    }
}

#[cfg(test)]
mod tests {
    use super::AppError;

    #[test]
    fn an_error_body_reads_back_as_the_error_the_server_wrote() {
        let message = "no \"x\" here \u{e9}\\ } \":";
        for err in [
            AppError::NotFound(message.into()),
            AppError::Invalid(message.into()),
            AppError::Conflict(message.into()),
            AppError::TooLarge(message.into()),
            AppError::TooMany(message.into()),
            AppError::Internal(message.into()),
            AppError::Transport(message.into()),
        ] {
            let json = serde_json::to_string(&err).unwrap();
            assert_eq!(AppError::from_json(&json), Some(err), "{json}");
        }
        assert_eq!(AppError::from_json(r#"{"Other":"x"}"#), None);
        assert_eq!(AppError::from_json("<html>"), None);
    }
}
