//! Terminal sessions report to agentdeck through the agents' own hooks.

pub mod install;
