//! One module per subcommand.

pub mod aggregate;
pub mod bench;
pub mod bench_train;
pub mod classify;
pub mod convert;
pub mod datasets;
pub mod features;
pub mod params;
pub mod pretrain_demo;
pub mod report;
pub mod train;
