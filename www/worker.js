// The model engine in a Web Worker: loading checkpoints, classifying, personalising (one step
// per message turn so progress flows and the stop button works), exporting/importing adapters.
// All model code is the Rust crate (petl-ast.js + petl-ast_bg.wasm); this file only routes.
import init, { createEngine } from '../petl-ast.js';

const ready = init();
let engine = null;
let stopRequested = false;
let queue = Promise.resolve();

const post = (msg, transfer) => self.postMessage(msg, transfer || []);

async function adapterName() {
  try {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return null;
    const info = adapter.info || {};
    return [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'WebGPU adapter';
  } catch (_) {
    return null;
  }
}

const ops = {
  async init({ backend }) {
    await ready;
    let fallback = null;
    if (backend !== 'cpu') {
      if (!('gpu' in navigator)) {
        fallback = 'this browser has no WebGPU';
      } else {
        const name = await adapterName();
        if (!name) {
          fallback = 'no WebGPU adapter is available';
        } else {
          try {
            engine = await createEngine('webgpu');
            return { backend: 'webgpu', adapter: name };
          } catch (e) {
            fallback = e.message || String(e);
          }
        }
      }
    }
    engine = await createEngine('cpu');
    return { backend: 'cpu', adapter: 'CPU (WebAssembly)', fallback };
  },

  async loadModel({ name, config, weights, preprocessor }) {
    return engine.loadModel(name, config, new Uint8Array(weights), preprocessor ?? undefined);
  },

  async classify({ samples, k }) {
    const t0 = performance.now();
    const top = await engine.classify(samples, k ?? 5);
    return { top, ms: performance.now() - t0 };
  },

  async train({ clips, labels, classNames, options }) {
    stopRequested = false;
    const started = engine.startTraining(clips, Uint32Array.from(labels), classNames, options);
    post({ type: 'progress', phase: 'start', ...started });
    const t0 = performance.now();
    let last = null;
    for (;;) {
      if (stopRequested) {
        engine.stopTraining();
        return { stopped: true, seconds: (performance.now() - t0) / 1000, last, ...started };
      }
      const s0 = performance.now();
      last = await engine.trainStep();
      const now = performance.now();
      post({ type: 'progress', phase: 'step', ...last, step_ms: now - s0, elapsed: (now - t0) / 1000 });
      if (last.done) break;
      // Let the stop message (a macrotask) in between steps.
      await new Promise((r) => setTimeout(r, 0));
    }
    return { stopped: false, seconds: (performance.now() - t0) / 1000, last, ...started };
  },

  async usePersonal({ personal }) {
    return engine.usePersonal(personal);
  },

  async exportAdapter() {
    const bytes = await engine.exportAdapter();
    return bytes;
  },

  async importAdapter({ bytes, name }) {
    return engine.importAdapter(new Uint8Array(bytes), name);
  },
};

async function handle(msg) {
  try {
    const op = ops[msg.type];
    if (!op) throw new Error(`unknown request ${msg.type}`);
    if (msg.type !== 'init' && !engine) throw new Error('the engine is not started');
    const result = await op(msg);
    post({ id: msg.id, ok: true, result });
  } catch (e) {
    const text = e && e.message ? e.message : String(e);
    const oom = /out of memory|allocation failed|memory access out of bounds/i.test(text);
    post({ id: msg.id, ok: false, error: oom ? `Out of memory: ${text}. Try a smaller model or fewer clips.` : text });
  }
}

self.onmessage = (event) => {
  const msg = event.data;
  if (msg.type === 'stop') {
    stopRequested = true;
    return;
  }
  queue = queue.then(() => handle(msg));
};
