//! Training: the loop, the paper's optimiser settings and schedule, SpecAugment.

pub mod hyper;
pub mod schedule;
pub mod session;
pub mod specaug;
pub mod trainer;

pub use hyper::OptimizerConfig;
pub use schedule::CosineSchedule;
pub use session::{PendingStep, StepReport, TrainSession};
pub use specaug::SpecAugment;
pub use trainer::{
    evaluate, train, Classifier, EpochMetrics, Example, Progress, TrainConfig, TrainError,
};
