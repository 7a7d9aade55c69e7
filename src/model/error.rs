//! Errors raised while reading a checkpoint (config, weights) from disk or bytes.

/// Why a checkpoint could not be loaded. Every variant names the file (`file`).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{file}: cannot read: {message}")]
    Io {
        /// The file.
        file: String,
        /// The operating system's message.
        message: String,
    },
    /// The file is not valid JSON, or a key has the wrong type.
    #[error("{file}: invalid JSON: {message}")]
    Json {
        /// The file.
        file: String,
        /// What the parser reported.
        message: String,
    },
    /// The JSON is valid but the values describe no buildable model.
    #[error("{file}: {message}")]
    Config {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// The weights file is not a valid safetensors file.
    #[error("{file}: not a valid safetensors file ({message}); re-download or re-export it")]
    Safetensors {
        /// The file.
        file: String,
        /// What the parser reported.
        message: String,
    },
    /// Tensors are missing, unexpected, of the wrong shape or of an unsupported dtype.
    #[error("{file}: the weights do not match the model:{}", format_problems(.problems))]
    Tensors {
        /// The file.
        file: String,
        /// One line per tensor.
        problems: Vec<TensorProblem>,
    },
}

/// One tensor that does not fit the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TensorProblem {
    /// The model needs this tensor and the file lacks it.
    Missing {
        /// Tensor name.
        name: String,
        /// Shape the model expects.
        expected: Vec<usize>,
    },
    /// The file has this tensor and the model has no place for it.
    Unexpected {
        /// Tensor name.
        name: String,
    },
    /// Present, but with another shape.
    Shape {
        /// Tensor name.
        name: String,
        /// Shape the model expects.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// Present, but stored in a dtype that cannot be read as floats.
    Dtype {
        /// Tensor name.
        name: String,
        /// The dtype in the file.
        dtype: String,
    },
}

impl std::fmt::Display for TensorProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing { name, expected } => write!(f, "missing `{name}` {expected:?}"),
            Self::Unexpected { name } => write!(f, "unexpected `{name}`"),
            Self::Shape {
                name,
                expected,
                found,
            } => write!(f, "`{name}` has shape {found:?}, expected {expected:?}"),
            Self::Dtype { name, dtype } => {
                write!(
                    f,
                    "`{name}` has dtype {dtype} (supported: F32, F16, BF16, F64)"
                )
            }
        }
    }
}

fn format_problems(problems: &[TensorProblem]) -> String {
    const SHOWN: usize = 20;
    let mut text: String = problems
        .iter()
        .take(SHOWN)
        .map(|p| format!("\n  - {p}"))
        .collect();
    if problems.len() > SHOWN {
        text.push_str(&format!("\n  … and {} more", problems.len() - SHOWN));
    }
    text
}

impl LoadError {
    /// An [`LoadError::Io`] for `path`.
    pub fn io(path: impl AsRef<std::path::Path>, err: std::io::Error) -> Self {
        Self::Io {
            file: path.as_ref().display().to_string(),
            message: err.to_string(),
        }
    }
}
