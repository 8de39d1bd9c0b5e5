//! Terminal sessions report to agentdeck through the agents' own hooks:
//! `agentdeck hook` forwards one, `agentdeck hooks` installs them.

pub mod forward;
pub mod install;
