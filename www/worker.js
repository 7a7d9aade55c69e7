// The model engine in a Web Worker: loading checkpoints, classifying, personalising (one step
// per message turn so progress flows and the stop button works), exporting/importing adapters.
// All model code is the Rust crate (petl-ast.js + petl-ast_bg.wasm); this file only routes.
// On the CPU, a cross-origin isolated page gets the threaded build of the same crate
// (threads/petl-ast.js, scripts/build_web_threads.sh): its kernels run on a pool of Web Workers.
import init, { createEngine } from '../petl-ast.js';

// The single-threaded module is instantiated only where it runs (WebGPU, or the CPU without the
// threaded build), so a threaded page compiles one module in this worker, not two.
let plainModule = null;
// The WebAssembly memory of the module that runs the engine (its size is the page's footprint).
let wasmMemory = null;
const plain = () =>
  (plainModule ??= init().then((exports) => {
    wasmMemory = exports.memory;
    return exports;
  }));
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

// The CPU engine on the threaded build, one pool thread per logical core (this worker only waits
// while they compute); `{ reason }` where the page cannot have it.
async function threadedCpuEngine() {
  if (!self.crossOriginIsolated) return { reason: 'the page is not cross-origin isolated' };
  const threads = navigator.hardwareConcurrency || 1;
  if (threads < 2) return { reason: 'one logical core' };
  try {
    const pkg = await import('../threads/petl-ast.js');
    wasmMemory = (await pkg.default()).memory;
    await pkg.initThreadPool(threads);
    return { engine: await pkg.createEngine('cpu'), threads: pkg.cpuThreads() };
  } catch (e) {
    return { reason: `the threaded build did not start: ${e.message || e}` };
  }
}

async function cpuEngine(threads) {
  if (threads !== 1) {
    const threaded = await threadedCpuEngine();
    if (threaded.engine) {
      engine = threaded.engine;
      return { threads: threaded.threads };
    }
    console.info(`CPU engine on one thread: ${threaded.reason}`);
  }
  await plain();
  engine = await createEngine('cpu');
  return { threads: 1 };
}

const ops = {
  async init({ backend, threads }) {
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
            await plain();
            engine = await createEngine('webgpu');
            return { backend: 'webgpu', adapter: name };
          } catch (e) {
            fallback = e.message || String(e);
          }
        }
      }
    }
    const cpu = await cpuEngine(threads);
    const adapter = cpu.threads > 1 ? `CPU (WebAssembly, ${cpu.threads} threads)` : 'CPU (WebAssembly)';
    return { backend: 'cpu', adapter, threads: cpu.threads, fallback };
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
    // Leave-one-out over the clips on the backbone's embeddings: computed with the start.
    started.held_out = await engine.heldOutEstimate();
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

  async memory() {
    return { bytes: wasmMemory ? wasmMemory.buffer.byteLength : null };
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
