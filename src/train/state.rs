//! A [`TrainState`] as one safetensors file, to continue a run after its last finished epoch.
//!
//! Layout: the trainable tensors of the current weights (`model.<module path>`) and of the best
//! weights so far (`best.<module path>`), AdamW's moments (`optimizer`: burn's burnpack record as a
//! `u8` tensor), and in the metadata (`petl_ast_state`, JSON) the training configuration, the
//! epoch and step counters, the generator position, the example order, the metrics so far and
//! the parameter ids the optimizer record is keyed by. Floating-point metadata is written as
//! Rust's shortest round-trip decimal strings, so a loaded state is bit-identical.
//!
//! Frozen tensors are not saved: the state is loaded onto a freshly built model (same base,
//! same method, same seed), whose frozen parts are the ones the run started from.

use std::collections::{BTreeMap, HashMap};

use burn::module::{Module, ParamId};
use burn::tensor::Bytes;
use rand::SeedableRng;
use rand_chacha::ChaCha12Rng;
use serde::{Deserialize, Serialize};

use crate::model::named_params::{self, Replacement};
use crate::model::weights::to_f32;

use super::trainer::{adamw, EpochMetrics, TrainConfig, TrainState, Trainable};

/// `format` value in the metadata.
pub const FORMAT: &str = "petl-ast-train-state";
/// Version of the layout.
pub const VERSION: u32 = 1;

/// Why a training state could not be written or read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StateError {
    /// The bytes are not a training state of this version.
    #[error("{file}: not a readable training state ({message})")]
    Format {
        /// Where the bytes came from.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// The state belongs to another run (configuration or model differ).
    #[error("{file}: {message}")]
    Mismatch {
        /// Where the bytes came from.
        file: String,
        /// What differs.
        message: String,
    },
    /// Serialising the optimizer state failed.
    #[error("cannot serialise the optimizer state: {0}")]
    Encode(String),
}

/// [`EpochMetrics`] with exact decimal floats.
#[derive(Debug, Serialize, Deserialize)]
struct SavedMetrics {
    epoch: usize,
    train_loss: String,
    train_accuracy: String,
    valid_loss: Option<String>,
    valid_accuracy: Option<String>,
    lr: String,
    seconds: String,
    skipped_steps: usize,
}

/// The metadata entry.
#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    /// `serde_json` of the [`TrainConfig`], compared verbatim on load.
    config: String,
    epoch: usize,
    global_step: usize,
    bad_steps: usize,
    /// Position of the generator in 32-bit words (decimal `u128`).
    rng_word_pos: String,
    order: Vec<usize>,
    best_accuracy: Option<String>,
    history: Vec<SavedMetrics>,
    /// Id of every saved parameter, by module path.
    param_ids: BTreeMap<String, u64>,
}

fn exact(v: f64) -> String {
    format!("{v:?}")
}

fn parse_exact(s: &str, file: &str) -> Result<f64, StateError> {
    s.parse().map_err(|_| StateError::Format {
        file: file.to_string(),
        message: format!("`{s}` is not a number"),
    })
}

impl SavedMetrics {
    fn new(m: &EpochMetrics) -> Self {
        Self {
            epoch: m.epoch,
            train_loss: exact(m.train_loss),
            train_accuracy: exact(m.train_accuracy),
            valid_loss: m.valid_loss.map(exact),
            valid_accuracy: m.valid_accuracy.map(exact),
            lr: exact(m.lr),
            seconds: exact(m.seconds),
            skipped_steps: m.skipped_steps,
        }
    }

    fn metrics(&self, file: &str) -> Result<EpochMetrics, StateError> {
        let opt = |v: &Option<String>| v.as_deref().map(|s| parse_exact(s, file)).transpose();
        Ok(EpochMetrics {
            epoch: self.epoch,
            train_loss: parse_exact(&self.train_loss, file)?,
            train_accuracy: parse_exact(&self.train_accuracy, file)?,
            valid_loss: opt(&self.valid_loss)?,
            valid_accuracy: opt(&self.valid_accuracy)?,
            lr: parse_exact(&self.lr, file)?,
            seconds: parse_exact(&self.seconds, file)?,
            skipped_steps: self.skipped_steps,
        })
    }
}

/// `(path, id, values, shape)` of every parameter that requires a gradient.
fn trainable<M: Module>(model: &M) -> Vec<(String, u64, Vec<f32>, Vec<usize>)> {
    let mut out = Vec::new();
    named_params::visit(model, |p| {
        if p.trains {
            let values = p.value.into_data().try_to_vec::<f32>().unwrap_or_default();
            out.push((p.path.to_string(), p.id.val(), values, p.shape));
        }
    });
    out
}

impl<M: Trainable> TrainState<M> {
    /// Serialises the state of a run trained with `config` (see the module doc for the layout).
    pub fn to_bytes(&self, config: &TrainConfig) -> Result<Vec<u8>, StateError> {
        let current = trainable(&self.model);
        let param_ids = current
            .iter()
            .map(|(path, id, ..)| (path.clone(), *id))
            .collect();
        let mut tensors: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        let mut push = |prefix: &str, list: Vec<(String, u64, Vec<f32>, Vec<usize>)>| {
            for (path, _, values, shape) in list {
                let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                tensors.push((
                    format!("{prefix}.{path}"),
                    safetensors::Dtype::F32,
                    shape,
                    bytes,
                ));
            }
        };
        push("model", current);
        if let Some((_, best)) = &self.best {
            push("best", trainable(best));
        }
        let optimizer = self
            .optimizer
            .into_bytes()
            .map_err(|e| StateError::Encode(format!("{e:?}")))?;
        let optimizer = optimizer.to_vec();
        tensors.push((
            "optimizer".into(),
            safetensors::Dtype::U8,
            vec![optimizer.len()],
            optimizer,
        ));
        let meta = Meta {
            config: serde_json::to_string(config).expect("the config serialises"),
            epoch: self.epoch,
            global_step: self.global_step,
            bad_steps: self.bad_steps,
            rng_word_pos: self.rng.get_word_pos().to_string(),
            order: self.order.clone(),
            best_accuracy: self.best.as_ref().map(|(a, _)| exact(*a)),
            history: self.history.iter().map(SavedMetrics::new).collect(),
            param_ids,
        };
        let mut metadata = HashMap::new();
        metadata.insert("format".to_string(), FORMAT.to_string());
        metadata.insert("version".to_string(), VERSION.to_string());
        metadata.insert(
            "petl_ast_state".to_string(),
            serde_json::to_string(&meta).expect("the state serialises"),
        );
        let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
            .iter()
            .map(|(name, dtype, shape, data)| {
                let view = safetensors::tensor::TensorView::new(*dtype, shape.clone(), data)
                    .expect("shape and data agree");
                (name.clone(), view)
            })
            .collect();
        safetensors::serialize(views, Some(metadata)).map_err(|e| StateError::Encode(e.to_string()))
    }

    /// Reads a state written by [`to_bytes`](Self::to_bytes) onto `model`, freshly built as the
    /// run built it (same base, method and seed), for a run with the same `config`. `source`
    /// names the bytes in errors.
    pub fn from_bytes(
        bytes: &[u8],
        source: &str,
        model: M,
        config: &TrainConfig,
    ) -> Result<Self, StateError> {
        let format = |message: String| StateError::Format {
            file: source.to_string(),
            message,
        };
        let (tensors, optimizer) = read_tensors(bytes, source)?;
        let meta = read_meta(bytes, source, config)?;

        let mut used = Vec::new();
        let mut problems = Vec::new();
        // Puts the values (and ids) saved under `prefix` into the trainable parameters of `model`.
        let mut restore = |prefix: &str, model: M| {
            named_params::map(model, |path, expected, trains| {
                let name = format!("{prefix}.{path}");
                let Some((values, shape)) = tensors.get(&name) else {
                    if trains {
                        problems.push(format!("`{name}` is missing"));
                    }
                    return None;
                };
                used.push(name.clone());
                if shape != expected {
                    problems.push(format!(
                        "`{name}` has shape {shape:?}, the model {expected:?}"
                    ));
                    return None;
                }
                let id = meta.param_ids.get(path).map(|&v| ParamId::from(v));
                Some(Replacement { values, id })
            })
        };
        let best = match &meta.best_accuracy {
            Some(a) => Some((parse_exact(a, source)?, restore("best", model.clone()))),
            None => None,
        };
        let model = restore("model", model);
        let used: std::collections::HashSet<_> = used.into_iter().collect();
        let mut unexpected: Vec<_> = tensors.keys().filter(|n| !used.contains(*n)).collect();
        unexpected.sort();
        problems.extend(
            unexpected
                .into_iter()
                .map(|n| format!("`{n}` is not in the model")),
        );
        if !problems.is_empty() {
            return Err(StateError::Mismatch {
                file: source.to_string(),
                message: format!(
                    "the saved tensors do not fit this model: {}",
                    problems.join("; ")
                ),
            });
        }
        let optimizer = adamw(&config.optimizer)
            .from_bytes(Bytes::from_bytes_vec(optimizer))
            .map_err(|e| format(format!("optimizer record: {e:?}")))?;
        let mut rng = ChaCha12Rng::seed_from_u64(config.seed);
        let word_pos: u128 = meta
            .rng_word_pos
            .parse()
            .map_err(|_| format(format!("generator position `{}`", meta.rng_word_pos)))?;
        rng.set_word_pos(word_pos);
        let history = meta
            .history
            .iter()
            .map(|m| m.metrics(source))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            model,
            optimizer,
            epoch: meta.epoch,
            global_step: meta.global_step,
            bad_steps: meta.bad_steps,
            rng,
            order: meta.order,
            best,
            history,
        })
    }
}

/// The run description in a state file's metadata, checked against this build and `config`.
fn read_meta(bytes: &[u8], source: &str, config: &TrainConfig) -> Result<Meta, StateError> {
    let format = |message: String| StateError::Format {
        file: source.to_string(),
        message,
    };
    let (_, header) =
        safetensors::SafeTensors::read_metadata(bytes).map_err(|e| format(e.to_string()))?;
    let meta_map = header.metadata().clone().unwrap_or_default();
    if meta_map.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(format(format!(
            "metadata `format` is {:?}, expected {FORMAT:?}",
            meta_map.get("format")
        )));
    }
    let version = VERSION.to_string();
    if meta_map.get("version") != Some(&version) {
        return Err(format(format!(
            "layout version {:?}, this build reads {VERSION}",
            meta_map.get("version")
        )));
    }
    let meta: Meta = meta_map
        .get("petl_ast_state")
        .ok_or_else(|| format("no `petl_ast_state` metadata".into()))
        .and_then(|t| serde_json::from_str(t).map_err(|e| format(e.to_string())))?;
    let now = serde_json::to_string(config).expect("the config serialises");
    if meta.config != now {
        return Err(StateError::Mismatch {
            file: source.to_string(),
            message: format!(
                "it was saved by a run with another training configuration (saved {}, now {now}); \
                 resume with the same arguments",
                meta.config
            ),
        });
    }
    Ok(meta)
}

/// A state file's f32 tensors by name (values, shape) and its optimizer record.
#[allow(clippy::type_complexity)]
fn read_tensors(
    bytes: &[u8],
    source: &str,
) -> Result<(HashMap<String, (Vec<f32>, Vec<usize>)>, Vec<u8>), StateError> {
    let format = |message: String| StateError::Format {
        file: source.to_string(),
        message,
    };
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| format(e.to_string()))?;
    let mut tensors = HashMap::new();
    let mut optimizer = None;
    for (name, view) in st.tensors() {
        match view.dtype() {
            safetensors::Dtype::U8 if name == "optimizer" => {
                optimizer = Some(view.data().to_vec());
            }
            safetensors::Dtype::F32 => {
                let values = to_f32(view.dtype(), view.data()).expect("an f32 tensor");
                tensors.insert(name, (values, view.shape().to_vec()));
            }
            dtype => return Err(format(format!("tensor `{name}` has dtype {dtype:?}"))),
        }
    }
    let optimizer = optimizer.ok_or_else(|| format("no `optimizer` tensor".into()))?;
    Ok((tensors, optimizer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, RngCore};

    #[test]
    fn std_rng_is_chacha12_so_old_runs_are_unchanged() {
        let mut a = rand::rngs::StdRng::seed_from_u64(42);
        let mut b = ChaCha12Rng::seed_from_u64(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn the_generator_continues_from_its_word_position() {
        let mut a = ChaCha12Rng::seed_from_u64(7);
        for _ in 0..37 {
            let _: f64 = a.random();
        }
        let _ = a.next_u32();
        let mut b = ChaCha12Rng::seed_from_u64(7);
        b.set_word_pos(a.get_word_pos());
        for _ in 0..50 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn floats_round_trip_exactly() {
        for v in [
            0.1,
            1.0 / 3.0,
            5e-3 * 0.999_999_9,
            f64::MIN_POSITIVE,
            1e300,
            -0.0,
        ] {
            assert_eq!(parse_exact(&exact(v), "x").unwrap().to_bits(), v.to_bits());
        }
        assert!(parse_exact(&exact(f64::NAN), "x").unwrap().is_nan());
    }
}
