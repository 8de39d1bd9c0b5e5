//! The state of an agent session: the one type shared by the database, the
//! API and the UI.

use crate::text_enum::text_enum;

text_enum! {
    /// Whether a session is ready for a message, running one, or failed its last run.
    #[derive(Default)]
    pub enum SessionState ("session state") {
        /// Ready for the next message (the default for new and imported sessions).
        #[default]
        Idle = "idle",
        /// An agent run is in progress.
        Working = "working",
        /// The last run failed; the session carries an error message.
        Error = "error",
    }
}

text_enum! {
    /// What a working session waits for from the person ("needs you"): a
    /// marker beside the state, not a fourth state. Any change of state
    /// clears it.
    pub enum Attention ("attention") {
        /// The agent asks to use a tool (run a command, edit a file).
        Approval = "approval",
        /// The agent asks a question or waits for input.
        Input = "input",
    }
}

impl Attention {
    /// The label shown beside the badge.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Approval => "Needs approval",
            Self::Input => "Needs input",
        }
    }

    /// The label inside a sentence ("s1: needs approval"); spelled out
    /// because `to_lowercase` brings Unicode case tables into the bundle.
    pub const fn lowercase_label(self) -> &'static str {
        match self {
            Self::Approval => "needs approval",
            Self::Input => "needs input",
        }
    }
}

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
        assert_eq!(
            err.to_string(),
            "unknown session state \"Working\": expected one of idle, working, error"
        );
        assert!("".parse::<SessionState>().is_err());
        assert!(serde_json::from_str::<SessionState>("\"busy\"").is_err());
    }
}
