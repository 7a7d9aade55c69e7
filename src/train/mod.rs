//! Training: the loop, one step on one or several devices, the paper's optimiser settings and
//! schedule, SpecAugment and time shift, resumable training state.

pub mod adamw;
pub mod data_parallel;
pub mod hyper;
pub mod probe;
pub mod schedule;
pub mod session;
pub mod specaug;
pub mod state;
pub mod timeshift;
pub mod trainer;

pub use adamw::{composed_adamw, FusedAdamW};
pub use hyper::OptimizerConfig;
pub use probe::CachedProbe;
pub use schedule::CosineSchedule;
pub use session::{PendingStep, StepReport, TrainSession};
pub use specaug::SpecAugment;
pub use state::StateError;
pub use timeshift::TimeShift;
pub use trainer::{
    adamw, evaluate, predict, train, train_from, EpochMetrics, Evaluation, Example, Progress,
    TrainConfig, TrainError, TrainState, Trainable,
};
