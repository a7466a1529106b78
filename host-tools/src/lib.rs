//! The `lstm-edge` command line's library: what its subcommands call.

pub mod firmware;
