//! One module per subcommand.

pub mod bench;
pub mod classify;
pub mod features;
pub mod params;
