//! Who is asking: the access a request was granted. The server decides it
//! (token, cookie, loopback) before a page renders or an API call runs; the
//! pages read it to hide the forms a read-only viewer cannot use.

use serde::{Deserialize, Serialize};

/// What a request may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Access {
    /// Sees everything and may change anything (the full token, or a
    /// tokenless loopback server).
    Full,
    /// Sees everything live, changes nothing (the read-only token).
    ReadOnly,
}

impl Access {
    /// Whether requests with this access may change anything.
    pub const fn can_write(self) -> bool {
        matches!(self, Self::Full)
    }
}

/// The access of the request being rendered. Outside a request (and in the
/// browser, where islands get it as a prop) it is `Full`: the server never
/// renders a page for a request it has not granted access to.
pub fn current() -> Access {
    leptos::prelude::use_context::<Access>().unwrap_or(Access::Full)
}
