//! The state of an agent session: the one type shared by the database, the
//! API and the UI.

use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};

/// Whether a session is ready for a message, running one, or failed its last run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(
    feature = "ssr",
    derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)
)]
#[cfg_attr(feature = "ssr", diesel(sql_type = diesel::sql_types::Text))]
pub enum SessionState {
    /// Ready for the next message (the default for new and imported sessions).
    #[default]
    Idle,
    /// An agent run is in progress.
    Working,
    /// The last run failed; the session carries an error message.
    Error,
}

impl SessionState {
    /// Every state, in display order.
    pub const ALL: [SessionState; 3] = [Self::Idle, Self::Working, Self::Error];

    /// The text stored in the database and used on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Working => "working",
            Self::Error => "error",
        }
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that names no session state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown session state {0:?}: expected one of idle, working, error")]
pub struct UnknownSessionState(pub String);

impl FromStr for SessionState {
    type Err = UnknownSessionState;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| UnknownSessionState(text.to_owned()))
    }
}

#[cfg(feature = "ssr")]
crate::db::text_sql_type!(SessionState);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_idle() {
        assert_eq!(SessionState::default(), SessionState::Idle);
    }

    #[test]
    fn text_round_trips() {
        for state in SessionState::ALL {
            assert_eq!(state.to_string().parse::<SessionState>(), Ok(state));
        }
        assert_eq!(SessionState::Working.to_string(), "working");
    }

    #[test]
    fn serde_uses_lowercase_names() {
        for state in SessionState::ALL {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(serde_json::from_str::<SessionState>(&json).unwrap(), state);
        }
    }

    #[test]
    fn unknown_text_is_rejected_with_the_value() {
        let err = "Working".parse::<SessionState>().unwrap_err();
        assert!(err.to_string().contains("\"Working\""), "{err}");
        assert!("".parse::<SessionState>().is_err());
        assert!(serde_json::from_str::<SessionState>("\"busy\"").is_err());
    }
}
