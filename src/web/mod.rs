//! The browser API (wasm-bindgen) behind the web page in `www/`.
//!
//! - [`audio`]: wav decoding, the log-Mel spectrogram and utterance detection for the page's
//!   main thread (the same code as the native CLI).
//! - [`engine`]: the model in a Web Worker: load a checkpoint, classify clips, personalise with a
//!   few clips per class one step at a time, export and import adapter files.
//!
//! Every function that can fail returns a `JsError` whose message is meant for the page to show.

pub mod audio;
pub mod engine;

use wasm_bindgen::prelude::*;

/// `initThreadPool(n)` (a Promise): starts `n` Web Workers sharing this module's memory as the
/// rayon pool the CPU kernels run on. Only in the threaded build (`threads` feature, see
/// `scripts/build_web_threads.sh`), which needs a cross-origin isolated page.
#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

/// Threads the CPU kernels run on: the rayon pool's size in the threaded build, else 1.
#[wasm_bindgen(js_name = cpuThreads)]
pub fn cpu_threads() -> usize {
    threads_in_pool()
}

#[cfg(feature = "threads")]
fn threads_in_pool() -> usize {
    rayon::current_num_threads()
}

#[cfg(not(feature = "threads"))]
fn threads_in_pool() -> usize {
    1
}

/// What the size box sets for the personalisation method named `method` (e.g. "adapter
/// width"), or nothing for a method without a size or an unknown name.
#[wasm_bindgen(js_name = methodSizeMeaning)]
pub fn method_size_meaning(method: &str) -> Option<String> {
    let method: crate::personalise::PersonaliseMethod = method.parse().ok()?;
    method.size_meaning().map(str::to_string)
}

/// Installs a panic hook that logs Rust panics to the console (called once per instance).
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// The crate version, shown on the page.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Turns any displayable error into a `JsError`.
pub(crate) fn js_error(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}
