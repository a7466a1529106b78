//! The `lstm-edge` command line's library: what its subcommands call.

pub mod blob;
pub mod firmware;
pub mod import;
pub mod infer;
pub mod inspect;
pub mod interrupt;
pub mod workflow;
