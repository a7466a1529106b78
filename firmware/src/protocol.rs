//! The version of the line protocol the firmware prints and `lstm-edge firmware`
//! reads; host-tools includes this file, so both sides take it from here.

/// Raised whenever a line's name or fields change.
pub const PROTOCOL_VERSION: u32 = 3;
