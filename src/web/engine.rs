//! The model side of the page, run in a Web Worker: one [`Engine`] holds the device, the loaded
//! checkpoint, the active classifier (the checkpoint's own head, or a personalised one) and a
//! personalisation run in progress.
//!
//! Training is driven from JavaScript one step at a time ([`Engine::train_step`]), so the worker
//! can post progress and honour a stop button between steps; every readback is asynchronous
//! (WebGPU has no blocking readback).

use std::cell::RefCell;
use std::rc::Rc;

use burn::module::Module;
use burn::tensor::Device;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::js_error;
use crate::model::{AstConfig, Checkpoint, LoadOptions, PositionMode};
use crate::personalise::{Personalisation, PersonaliseOptions};
use crate::pipeline::{Classifier, Network};
use crate::train::StepReport;

/// Which compute backend an engine runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum BackendKind {
    WebGpu,
    Cpu,
}

struct State {
    device: Device,
    kind: BackendKind,
    checkpoint: Option<Rc<Checkpoint>>,
    base_name: String,
    base: Option<Rc<Classifier>>,
    active: Option<Rc<Classifier>>,
    personal: Option<PersonalModel>,
    run: Option<Personalisation>,
}

/// A personalised classifier and what its adapter file records.
struct PersonalModel {
    classifier: Rc<Classifier>,
    metadata: crate::petl::AdapterMetadata,
}

/// The model engine of the page.
#[wasm_bindgen]
pub struct Engine {
    state: Rc<RefCell<State>>,
}

/// What the page learns about a loaded model.
#[derive(Serialize)]
struct ModelInfo {
    name: String,
    labels: Vec<String>,
    max_length: usize,
    hidden_size: usize,
    layers: usize,
    parameters: usize,
    personal: bool,
}

/// One label and its score.
#[derive(Serialize)]
struct Scored {
    label: String,
    score: f32,
}

/// Progress of a training step, for the page.
#[derive(Serialize)]
struct StepInfo {
    #[serde(flatten)]
    report: StepReport,
    done: bool,
}

/// Starts an engine on `backend` (`"webgpu"` or `"cpu"`). WebGPU initialisation is
/// asynchronous; if it fails the error says why and the page can fall back to `"cpu"`.
#[wasm_bindgen(js_name = createEngine)]
pub async fn create_engine(backend: String) -> Result<Engine, JsError> {
    let (device, kind) = match backend.as_str() {
        "webgpu" => (webgpu_device().await?, BackendKind::WebGpu),
        "cpu" => (cpu_device()?, BackendKind::Cpu),
        other => return Err(JsError::new(&format!("unknown backend \"{other}\""))),
    };
    Ok(Engine {
        state: Rc::new(RefCell::new(State {
            device,
            kind,
            checkpoint: None,
            base_name: String::new(),
            base: None,
            active: None,
            personal: None,
            run: None,
        })),
    })
}

#[cfg(feature = "wgpu")]
async fn webgpu_device() -> Result<Device, JsError> {
    Device::wgpu_options()
        .init_async()
        .await
        .map_err(|e| JsError::new(&format!("WebGPU could not start: {e}")))
}

#[cfg(not(feature = "wgpu"))]
async fn webgpu_device() -> Result<Device, JsError> {
    Err(JsError::new("this build has no WebGPU backend"))
}

#[allow(unreachable_code)]
fn cpu_device() -> Result<Device, JsError> {
    crate::backend::cpu_device().map_err(|e| JsError::new(&e))
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(js_error)
}

impl State {
    fn checkpoint(&self) -> Result<Rc<Checkpoint>, JsError> {
        self.checkpoint
            .clone()
            .ok_or_else(|| JsError::new("no model is loaded yet"))
    }

    /// Makes the model of a finished (or stopped) run the active, personal classifier.
    fn adopt(&mut self, run: Personalisation) -> Result<(), JsError> {
        let checkpoint = self.checkpoint()?;
        let model = run.session.into_model().valid();
        let classifier = Classifier::from_petl(&checkpoint, model, run.labels, &self.device)
            .map_err(js_error)?;
        let classifier = Rc::new(classifier);
        self.active = Some(classifier.clone());
        self.personal = Some(PersonalModel {
            classifier,
            metadata: run.metadata,
        });
        Ok(())
    }

    fn info(&self, classifier: &Classifier, personal: bool) -> Result<ModelInfo, JsError> {
        let checkpoint = self.checkpoint()?;
        let c = &checkpoint.config;
        Ok(ModelInfo {
            name: self.base_name.clone(),
            labels: classifier.labels.clone(),
            max_length: classifier.model.max_length(),
            hidden_size: c.hidden_size,
            layers: c.num_hidden_layers,
            parameters: match &classifier.model {
                Network::Ast(m) => m.num_params(),
                Network::Petl(m) => m.num_params(),
            },
            personal,
        })
    }
}

#[wasm_bindgen]
impl Engine {
    /// `"webgpu"` or `"cpu"`.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        match self.state.borrow().kind {
            BackendKind::WebGpu => "webgpu".into(),
            BackendKind::Cpu => "cpu".into(),
        }
    }

    /// Loads a checkpoint from its `config.json` text, `model.safetensors` bytes and optional
    /// `preprocessor_config.json`; `name` names it in messages and adapter files. Returns the
    /// model's description.
    #[wasm_bindgen(js_name = loadModel)]
    pub fn load_model(
        &self,
        name: String,
        config: String,
        weights: Vec<u8>,
        preprocessor: Option<String>,
    ) -> Result<JsValue, JsError> {
        fits_in_wasm_memory(&name, &config, weights.len())?;
        let mut state = self.state.borrow_mut();
        let checkpoint = Checkpoint::from_parts(
            &config,
            &format!("{name}/config.json"),
            preprocessor
                .as_deref()
                .map(|t| (t, format!("{name}/preprocessor_config.json"))),
            weights,
            &format!("{name}/model.safetensors"),
        )
        .map_err(js_error)?;
        let options = LoadOptions {
            max_length: None,
            position: PositionMode::Adapt,
            new_head: None,
        };
        let classifier = Classifier::new(&checkpoint, &options, &state.device).map_err(js_error)?;
        let classifier = Rc::new(classifier);
        state.checkpoint = Some(Rc::new(checkpoint));
        state.base_name = name;
        state.base = Some(classifier.clone());
        state.active = Some(classifier.clone());
        state.personal = None;
        state.run = None;
        to_js(&state.info(&classifier, false)?)
    }

    /// Classifies one clip of 16 kHz samples; resolves to the `k` best `{label, score}`.
    pub fn classify(&self, samples: Vec<f32>, k: usize) -> js_sys::Promise {
        let state = self.state.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let classifier = state
                .borrow()
                .active
                .clone()
                .ok_or_else(|| JsError::new("no model is loaded yet"))?;
            let features = classifier.extractor.extract(&samples);
            let logits = logits_of(&classifier, features)
                .await
                .map_err(|e| JsError::new(&e))?;
            let row = logits.into_iter().next().unwrap_or_default();
            let top: Vec<Scored> = classifier
                .top_k(&row, k.max(1))
                .into_iter()
                .map(|(label, score)| Scored { label, score })
                .collect();
            Ok(to_js(&top)?)
        })
    }

    /// Prepares personalisation on `clips` (an array of 16 kHz sample arrays) with class indices
    /// `labels` into `class_names`; `options` is `{method, epochs, batch_size, lr, size, max_length,
    /// augment, speed_perturb, seed}` (any may be left out). Returns `{total_steps, trainable_params, max_length}`.
    #[wasm_bindgen(js_name = startTraining)]
    pub fn start_training(
        &self,
        clips: js_sys::Array,
        labels: Vec<u32>,
        class_names: Vec<String>,
        options: JsValue,
    ) -> Result<JsValue, JsError> {
        let mut state = self.state.borrow_mut();
        let checkpoint = state.checkpoint()?;
        if clips.length() as usize != labels.len() {
            return Err(JsError::new("each clip needs one label"));
        }
        let clips: Vec<(Vec<f32>, usize)> = clips
            .iter()
            .zip(labels)
            .map(|(c, l)| (js_sys::Float32Array::new(&c).to_vec(), l as usize))
            .collect();
        let options = parse_options(options)?;
        let device = state.device.clone().autodiff();
        let run = Personalisation::start(
            &checkpoint,
            &state.base_name,
            &clips,
            class_names,
            &options,
            &device,
        )
        .map_err(js_error)?;
        #[derive(Serialize)]
        struct Started {
            total_steps: usize,
            trainable_params: usize,
            max_length: usize,
        }
        let started = Started {
            total_steps: run.session.total_steps(),
            trainable_params: run.session.model().param_counts().trainable,
            max_length: run.metadata.max_length,
        };
        state.run = Some(run);
        to_js(&started)
    }

    /// The leave-one-out estimate of the run just started (each clip classified by the class
    /// means of the other clips on the backbone's embeddings); resolves to `{accuracy,
    /// evaluated, correct, confusions: [{label, predicted, count}]}`, `accuracy` null when no
    /// class has two clips.
    #[wasm_bindgen(js_name = heldOutEstimate)]
    pub fn held_out_estimate(&self) -> js_sys::Promise {
        let state = self.state.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let (predicted, truth, labels) = {
                let s = state.borrow();
                let run = s
                    .run
                    .as_ref()
                    .ok_or_else(|| JsError::new("no training is in progress"))?;
                (
                    run.held_out.predicted.clone(),
                    run.held_out.truth.clone(),
                    run.labels.clone(),
                )
            };
            let predicted = predicted
                .into_data_async()
                .await
                .map_err(|e| JsError::new(&format!("reading the estimate failed: {e:?}")))?
                .try_into_vec_as::<i64>()
                .unwrap_or_default();
            let estimate = crate::prototypes::HeldOutEstimate::new(&predicted, &truth, &labels);
            Ok(to_js(&estimate)?)
        })
    }

    /// Runs one training step; resolves to the step's progress (`done` is true after the last
    /// step, when the personalised classifier becomes the active one).
    #[wasm_bindgen(js_name = trainStep)]
    pub fn train_step(&self) -> js_sys::Promise {
        let state = self.state.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            // The run leaves the state while the step awaits, so other calls never see it
            // half-updated.
            let mut run = state
                .borrow_mut()
                .run
                .take()
                .ok_or_else(|| JsError::new("no training is in progress"))?;
            let Some(pending) = on_pool(|| run.session.forward()) else {
                return Err(JsError::new("training is already finished").into());
            };
            let loss = read_f32(pending.loss.clone()).await?;
            let predicted = pending
                .predicted
                .clone()
                .into_data_async()
                .await
                .map_err(|e| JsError::new(&format!("reading predictions failed: {e:?}")))?
                .try_into_vec_as::<i64>()
                .unwrap_or_default();
            let report = on_pool(|| run.session.finish(pending, loss as f64, &predicted))
                .map_err(js_error)?;
            let done = run.session.is_done();
            let info = StepInfo { report, done };
            let mut s = state.borrow_mut();
            if done {
                s.adopt(run)?;
            } else {
                s.run = Some(run);
            }
            Ok(to_js(&info)?)
        })
    }

    /// Stops a training run early, keeping the model as trained so far as the personal one.
    #[wasm_bindgen(js_name = stopTraining)]
    pub fn stop_training(&self) -> Result<bool, JsError> {
        let mut s = self.state.borrow_mut();
        let Some(run) = s.run.take() else {
            return Ok(false);
        };
        s.adopt(run)?;
        Ok(true)
    }

    /// Switches between the checkpoint's own labels (`false`) and the personal ones (`true`).
    #[wasm_bindgen(js_name = usePersonal)]
    pub fn use_personal(&self, personal: bool) -> Result<JsValue, JsError> {
        let mut s = self.state.borrow_mut();
        let classifier = if personal {
            s.personal
                .as_ref()
                .map(|p| p.classifier.clone())
                .ok_or_else(|| JsError::new("nothing has been personalised yet"))?
        } else {
            s.base
                .clone()
                .ok_or_else(|| JsError::new("no model is loaded yet"))?
        };
        s.active = Some(classifier.clone());
        to_js(&s.info(&classifier, personal)?)
    }

    /// The personal adapter (trained tensors, head, label names and method) as the bytes of one
    /// `.safetensors` file, the same format `native-train classify --adapter` reads.
    #[wasm_bindgen(js_name = exportAdapter)]
    pub fn export_adapter(&self) -> js_sys::Promise {
        let state = self.state.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let (classifier, metadata) = {
                let s = state.borrow();
                let p = s
                    .personal
                    .as_ref()
                    .ok_or_else(|| JsError::new("nothing has been personalised yet"))?;
                (p.classifier.clone(), p.metadata.clone())
            };
            let Network::Petl(model) = &classifier.model else {
                return Err(JsError::new("the personal model has no adapter").into());
            };
            let bytes = model
                .adapter_bytes_async(&metadata)
                .await
                .map_err(|e| JsError::new(&e))?;
            Ok(js_sys::Uint8Array::from(bytes.as_slice()).into())
        })
    }

    /// Loads an adapter file made for the loaded checkpoint (here or by `native-train train`)
    /// and makes it the active classifier; `name` names the file in messages.
    #[wasm_bindgen(js_name = importAdapter)]
    pub fn import_adapter(&self, bytes: Vec<u8>, name: String) -> Result<JsValue, JsError> {
        let mut s = self.state.borrow_mut();
        let checkpoint = s.checkpoint()?;
        let metadata = crate::petl::checkpoint::read_metadata(&bytes, &name).map_err(js_error)?;
        let classifier =
            Classifier::with_adapter(&checkpoint, &bytes, &name, &s.device).map_err(js_error)?;
        let classifier = Rc::new(classifier);
        s.active = Some(classifier.clone());
        s.personal = Some(PersonalModel {
            classifier: classifier.clone(),
            metadata,
        });
        s.run = None;
        to_js(&s.info(&classifier, true)?)
    }
}

/// What a wasm32 module can address at most.
const WASM32_MEMORY_BYTES: u128 = 4 << 30;

/// Refuses, before anything is allocated, a model whose f32 weights and file cannot fit in a
/// wasm32 memory with room left for the activations (a quarter of it).
fn fits_in_wasm_memory(name: &str, config: &str, file_bytes: usize) -> Result<(), JsError> {
    let config = AstConfig::from_json(config, &format!("{name}/config.json")).map_err(js_error)?;
    let needed = 4 * config.backbone_weight_values(config.max_length) + file_bytes as u128;
    if needed > WASM32_MEMORY_BYTES / 4 * 3 {
        let gib = needed as f64 / (1u64 << 30) as f64;
        return Err(JsError::new(&format!(
            "{name} needs about {gib:.1} GiB of memory for its weights; the page's WebAssembly \
             memory holds at most 4 GiB, so pick a smaller model (or run it with native-train)"
        )));
    }
    Ok(())
}

/// The page's options; any field left out keeps its default.
fn parse_options(options: JsValue) -> Result<PersonaliseOptions, JsError> {
    if options.is_undefined() || options.is_null() {
        return Ok(PersonaliseOptions::default());
    }
    serde_wasm_bindgen::from_value(options).map_err(js_error)
}

/// Runs `work` on a worker of the rayon pool in the threaded build, on this thread otherwise.
///
/// This thread is not in the pool, so each parallel loop it starts is handed to a pool worker
/// and waited for (`Atomics.wait`); started on a pool worker, the loops fork inside the pool,
/// one hand-off per call instead of one per loop.
fn on_pool<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    #[cfg(feature = "threads")]
    {
        rayon::scope(|_| work())
    }
    #[cfg(not(feature = "threads"))]
    {
        work()
    }
}

/// The logits of one clip. The threaded build has only the CPU backend: it computes them on the
/// pool ([`on_pool`]). The other build may be on WebGPU, which has no blocking readback.
#[cfg(feature = "threads")]
async fn logits_of(classifier: &Classifier, features: Vec<f32>) -> Result<Vec<Vec<f32>>, String> {
    Ok(on_pool(|| classifier.logits(&[features])))
}

#[cfg(not(feature = "threads"))]
async fn logits_of(classifier: &Classifier, features: Vec<f32>) -> Result<Vec<Vec<f32>>, String> {
    classifier.logits_async(&[features]).await
}

async fn read_f32(t: burn::tensor::Tensor<1>) -> Result<f32, JsError> {
    let data = t
        .into_data_async()
        .await
        .map_err(|e| JsError::new(&format!("reading the loss failed: {e:?}")))?;
    Ok(data
        .try_into_vec_as::<f32>()
        .ok()
        .and_then(|v| v.first().copied())
        .unwrap_or(f32::NAN))
}
