// The page: microphone, spectrogram, classification results and the personalisation workflow.
// Audio front-end code (wav decoding, fbank, utterance detection) runs here from the same Rust
// crate as the native CLI; the model lives in a Web Worker (www/worker.js).
import init, { decodeWav, methodSizeMeaning, spectrogram, UtteranceDetector, version } from '../petl-ast.js';
import * as store from './store.js';

const $ = (id) => document.getElementById(id);
const DEMO = { name: 'speech-ast-tiny (built in: 580 spoken words, digits and sounds)', base: 'www/models/speech-ast-tiny/' };
const MODEL_CACHE = 'petl-ast-models';
const SAMPLE_RATE = 16000;
const params = new URLSearchParams(location.search);
// Below this top score the page answers "not sure" instead of naming a label.
const NOT_SURE_BELOW = 0.5;
// The built-in backbone's label for background without speech.
const NOISE_LABEL = '_noise_';

const state = {
  model: null, // info from the engine
  modelName: '',
  classes: [], // {name, clips: [Float32Array]}
  capture: null, // null | 'once' | 'listen' | {className}
  personal: false,
  trained: false,
  training: false,
  mic: null,
};
// Read by the end-to-end tests.
window.petl = state;
window.petlCall = (type, payload) => call(type, payload);

// ---------------------------------------------------------------- messages

function show(text, kind = 'error') {
  const el = $('message');
  el.textContent = text;
  el.className = kind === 'error' ? 'message' : 'message info';
  el.hidden = !text;
}

function status(text) {
  $('status').textContent = text;
}

function setBusy(busy) {
  document.body.dataset.busy = busy ? '1' : '0';
}

// ---------------------------------------------------------------- worker RPC

const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
let nextId = 1;
const pending = new Map();
let onProgress = () => {};

worker.onmessage = (event) => {
  const msg = event.data;
  if (msg.type === 'progress') {
    onProgress(msg);
    return;
  }
  const p = pending.get(msg.id);
  if (!p) return;
  pending.delete(msg.id);
  if (msg.ok) p.resolve(msg.result);
  else p.reject(new Error(msg.error));
};
worker.onerror = (e) => show(`The model worker failed: ${e.message || 'unknown error'}`);

function call(type, payload = {}, transfer = []) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ id, type, ...payload }, transfer);
  });
}

// ---------------------------------------------------------------- model loading

async function fetchWithProgress(url, label, onBytes) {
  const cache = 'caches' in self ? await caches.open(MODEL_CACHE) : null;
  let response = cache ? await cache.match(url) : undefined;
  const cached = Boolean(response);
  if (!response) {
    response = await fetch(url);
    if (!response.ok) {
      const error = new Error(`${label}: the server answered ${response.status} ${response.statusText} for ${url}`);
      error.status = response.status;
      throw error;
    }
  }
  const total = Number(response.headers.get('content-length')) || 0;
  const reader = response.body.getReader();
  const chunks = [];
  let received = 0;
  const stopped = (why) => new Error(`${label}: the download stopped after ${received} of ${total || '?'} bytes (${why}); nothing was kept, try again`);
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch (err) {
      throw stopped(err.message);
    }
    if (chunk.done) break;
    chunks.push(chunk.value);
    received += chunk.value.length;
    onBytes(received, total, cached);
  }
  if (total && received !== total) throw stopped('the connection closed early');
  const bytes = new Uint8Array(received);
  let offset = 0;
  for (const c of chunks) {
    bytes.set(c, offset);
    offset += c.length;
  }
  if (cache && !cached) {
    await cache.put(url, new Response(bytes, { headers: { 'content-length': String(received) } }));
  }
  return bytes;
}

async function loadFromBase(base, name, withProgress) {
  const bar = $('download-progress');
  const text = $('download-text');
  const t0 = performance.now();
  const progress = (what) => (received, total, cached) => {
    if (!withProgress) return;
    bar.hidden = false;
    bar.value = total ? received / total : 0;
    const mb = (x) => (x / 1e6).toFixed(1);
    text.textContent = `${what}: ${mb(received)}${total ? ` / ${mb(total)}` : ''} MB${cached ? ' (from cache)' : ''}`;
  };
  const config = new TextDecoder().decode(await fetchWithProgress(base + 'config.json', 'config.json', progress('config.json')));
  let preprocessor;
  try {
    preprocessor = new TextDecoder().decode(
      await fetchWithProgress(base + 'preprocessor_config.json', 'preprocessor_config.json', progress('preprocessor_config.json')),
    );
  } catch (_) {
    preprocessor = undefined; // optional: the AST defaults apply
  }
  const weights = (withProgress && $('prefer-half').checked && (await halfPrecisionWeights(base, progress)))
    || (await fetchWithProgress(base + 'model.safetensors', 'model.safetensors', progress('model.safetensors')));
  bar.hidden = true;
  const downloadMs = performance.now() - t0;
  return { ...(await loadModel(name, config, weights, preprocessor)), downloadMs };
}

// The f16 export beside the f32 weights (transformers' `variant="fp16"` file name), or null when
// the folder has none.
async function halfPrecisionWeights(base, progress) {
  const file = 'model.fp16.safetensors';
  try {
    return await fetchWithProgress(base + file, file, progress(file));
  } catch (err) {
    if (err.status === 404) return null;
    throw err;
  }
}

async function loadModel(name, config, weights, preprocessor) {
  status(`Loading ${name}…`);
  const t0 = performance.now();
  const info = await call('loadModel', { name, config, weights: weights.buffer, preprocessor }, [weights.buffer]);
  state.model = info;
  state.modelName = name;
  state.personal = false;
  state.trained = false;
  renderModelLine();
  clearPredictions('');
  const ms = performance.now() - t0;
  status(`Ready: ${name} loaded in ${ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(1)} s`}.`);
  $('use-personal').checked = false;
  $('use-personal').disabled = true;
  $('export').disabled = true;
  $('record').disabled = false;
  $('listen').disabled = false;
  updateTrainButton();
  await restoreAdapter();
  return info;
}

async function loadDemo() {
  return loadFromBase(DEMO.base, DEMO.name, false);
}

$('url-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  let base = $('model-url').value.trim();
  if (!/^https?:\/\//.test(base)) {
    show('Enter an http(s) URL of a folder holding config.json and model.safetensors.');
    return;
  }
  if (!base.endsWith('/')) base += '/';
  show('');
  $('load-url').disabled = true;
  try {
    const name = base.replace(/^https?:\/\/(huggingface\.co\/)?/, '').replace(/\/resolve\/main\/$|\/$/, '');
    await loadFromBase(base, name, true);
  } catch (err) {
    show(`Could not load the model: ${err.message}`);
    status('Model not changed.');
  } finally {
    $('load-url').disabled = false;
    $('download-progress').hidden = true;
  }
});

$('model-files').addEventListener('change', async (e) => {
  const files = [...e.target.files];
  const find = (n) => files.find((f) => f.name === n);
  const config = find('config.json');
  const weights = find('model.safetensors') || files.find((f) => f.name.endsWith('.safetensors'));
  if (!config || !weights) {
    show('Pick both config.json and model.safetensors (and optionally preprocessor_config.json).');
    return;
  }
  show('');
  try {
    const pre = find('preprocessor_config.json');
    await loadModel(
      weights.name === 'model.safetensors' ? 'local model' : weights.name,
      await config.text(),
      new Uint8Array(await weights.arrayBuffer()),
      pre ? await pre.text() : undefined,
    );
  } catch (err) {
    show(`Could not load the model files: ${err.message}`);
  }
});

$('load-demo').addEventListener('click', async () => {
  try {
    await loadDemo();
  } catch (err) {
    show(`Could not load the demo model: ${err.message}`);
  }
});

// ---------------------------------------------------------------- microphone

let detector = null;
let recent = new Float32Array(0); // last 3 s for the spectrogram
let lastDraw = 0;
let silentBlocks = 0;

async function startMic() {
  if (state.mic) return state.mic;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new Error('This browser cannot record audio here (the page needs https or localhost).');
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 },
    });
  } catch (err) {
    if (err.name === 'NotAllowedError' || err.name === 'SecurityError') {
      throw new Error('Microphone access was denied. Allow the microphone for this page in the browser settings, then try again.');
    }
    if (err.name === 'NotFoundError') throw new Error('No microphone was found.');
    throw new Error(`The microphone could not start: ${err.message}`);
  }
  const context = new AudioContext({ sampleRate: SAMPLE_RATE });
  await context.audioWorklet.addModule(new URL('./recorder-worklet.js', import.meta.url));
  const source = context.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(context, 'recorder');
  source.connect(node);
  detector = new UtteranceDetector();
  silentBlocks = 0;
  node.port.onmessage = (event) => onAudio(event.data);
  state.mic = { stream, context, node };
  return state.mic;
}

function stopMic() {
  if (!state.mic) return;
  state.mic.stream.getTracks().forEach((t) => t.stop());
  state.mic.context.close();
  state.mic = null;
  if (detector) detector.free();
  detector = null;
  $('level').style.width = '0';
}

function onAudio(block) {
  let energy = 0;
  let peak = 0;
  for (const x of block) {
    energy += x * x;
    peak = Math.max(peak, Math.abs(x));
  }
  const rms = Math.sqrt(energy / block.length);
  const db = 20 * Math.log10(rms + 1e-9);
  $('level').style.width = `${Math.max(0, Math.min(100, ((db + 60) / 60) * 100))}%`;
  silentBlocks = peak === 0 ? silentBlocks + 1 : 0;
  if (silentBlocks === 30) show('No audio is being captured: the microphone delivers silence. Check that it is connected and not muted.');

  const merged = new Float32Array(Math.min(recent.length + block.length, 3 * SAMPLE_RATE));
  const keep = merged.length - block.length;
  merged.set(recent.subarray(recent.length - keep), 0);
  merged.set(block, keep);
  recent = merged;
  const now = performance.now();
  if (now - lastDraw > 100) {
    lastDraw = now;
    drawSpectrogram(recent);
  }
  if (!detector) return;
  for (const utterance of detector.push(block)) onUtterance(utterance);
}

function drawSpectrogram(samples) {
  if (samples.length < 400) return;
  const spec = spectrogram(samples);
  const { frames, bins } = spec;
  const values = spec.values;
  spec.free();
  const canvas = $('spectrogram');
  canvas.hidden = false; // shown from the first sound on
  const ctx = canvas.getContext('2d');
  const width = 300;
  const image = ctx.createImageData(width, bins);
  let max = -Infinity;
  for (const v of values) max = Math.max(max, v);
  const min = max - 12; // 12 nats ≈ 52 dB of range
  for (let x = 0; x < width; x++) {
    const f = frames - width + x;
    for (let b = 0; b < bins; b++) {
      const v = f >= 0 ? (values[f * bins + b] - min) / (max - min) : 0;
      const t = Math.max(0, Math.min(1, v));
      const i = ((bins - 1 - b) * width + x) * 4;
      image.data[i] = 255 * Math.min(1, t * 1.8);
      image.data[i + 1] = 255 * Math.max(0, t * 1.6 - 0.6);
      image.data[i + 2] = 255 * (t < 0.4 ? t * 1.5 : Math.max(0, 1.2 - t * 1.5));
      image.data[i + 3] = 255;
    }
  }
  const off = new OffscreenCanvas(width, bins);
  off.getContext('2d').putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
}

async function onUtterance(samples) {
  const capture = state.capture;
  if (!capture) return;
  if (capture === 'once') {
    state.capture = null;
    $('record').textContent = '● Record a clip';
    stopMic();
    await classify(samples);
  } else if (capture === 'listen') {
    await classify(samples);
  } else if (capture.className) {
    state.capture = null;
    stopMic();
    const problem = await addClip(capture.className, samples);
    if (problem) show(`${problem[0].toUpperCase()}${problem.slice(1)}; record it again.`);
  }
}

$('record').addEventListener('click', async () => {
  if (state.capture === 'once') {
    state.capture = null;
    const rest = detector && detector.flush();
    stopMic();
    $('record').textContent = '● Record a clip';
    if (rest) await classify(rest);
    return;
  }
  try {
    show('');
    await startMic();
    state.capture = 'once';
    $('record').textContent = '■ Stop (speak now)';
    status('Listening for one sound…');
  } catch (err) {
    show(err.message);
  }
});

$('listen').addEventListener('click', async () => {
  const on = state.capture !== 'listen';
  $('listen').setAttribute('aria-pressed', String(on));
  if (!on) {
    state.capture = null;
    stopMic();
    status('Stopped listening.');
    return;
  }
  try {
    show('');
    await startMic();
    state.capture = 'listen';
    status('Listening continuously: every sound is classified.');
  } catch (err) {
    $('listen').setAttribute('aria-pressed', 'false');
    show(err.message);
  }
});

$('classify-file').addEventListener('change', async (e) => {
  const file = e.target.files[0];
  e.target.value = '';
  if (!file) return;
  try {
    const samples = decodeWav(new Uint8Array(await file.arrayBuffer()), file.name);
    drawSpectrogram(samples);
    await classify(samples);
  } catch (err) {
    show(err.message);
  }
});

// ---------------------------------------------------------------- classification

let firstClassification = null;

async function classify(samples) {
  try {
    const { top, ms } = await call('classify', { samples, k: 5 });
    if (firstClassification === null) firstClassification = performance.now();
    renderPredictions(top);
    show(''); // an earlier error no longer describes the page
    status(`Classified ${(samples.length / SAMPLE_RATE).toFixed(2)} s of audio in ${ms.toFixed(0)} ms.`);
    return top;
  } catch (err) {
    show(`Classification failed: ${err.message}`);
    return null;
  }
}

// What the page says about the best label: a name, "not sure", or "no speech".
function verdictOf(top) {
  const best = top[0];
  if (!best) return '';
  if (best.label === NOISE_LABEL) return 'No speech: only background noise.';
  if (best.score < NOT_SURE_BELOW) {
    return `Not sure: no label fits well (closest: "${best.label}", ${(best.score * 100).toFixed(0)} %).`;
  }
  return `Heard: "${best.label}".`;
}

function clearPredictions(note) {
  $('predictions').replaceChildren();
  $('verdict').textContent = note;
  $('which-labels').textContent = state.personal ? '(my classes)' : `(${state.modelName})`;
}

// The model line: the backbone, and the personal classes when they answer.
function renderModelLine() {
  const info = state.model;
  if (!info) return;
  let line = `${state.modelName} — ${info.labels.length} labels, ${info.layers} layers, d=${info.hidden_size}`;
  if (state.personal && state.personalLabels) {
    line += ` · answering with your ${state.personalLabels.length} classes (${state.personalLabels.join(', ')})`;
  }
  $('model-name').textContent = line;
}

function renderPredictions(top) {
  $('verdict').textContent = verdictOf(top);
  const list = $('predictions');
  list.replaceChildren();
  for (const { label, score } of top) {
    const li = document.createElement('li');
    li.className = 'pred';
    const name = document.createElement('span');
    name.className = 'label';
    name.textContent = label;
    const track = document.createElement('span');
    const bar = document.createElement('span');
    bar.className = 'bar';
    bar.style.display = 'block';
    bar.style.width = `${Math.max(1, score * 100)}%`;
    track.append(bar);
    const value = document.createElement('span');
    value.className = 'score';
    value.textContent = `${(score * 100).toFixed(1)}%`;
    li.append(name, track, value);
    list.append(li);
  }
  $('which-labels').textContent = state.personal ? '(my classes)' : `(${state.modelName})`;
}

// ---------------------------------------------------------------- personal classes

function renderClasses() {
  const list = $('classes');
  list.replaceChildren();
  for (const cls of state.classes) {
    const li = document.createElement('li');
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = cls.name;
    const count = document.createElement('span');
    count.className = 'count';
    count.textContent = `${cls.clips.length} clip${cls.clips.length === 1 ? '' : 's'}`;
    const rec = document.createElement('button');
    rec.type = 'button';
    rec.textContent = '● Record';
    rec.setAttribute('aria-label', `Record a clip of ${cls.name}`);
    rec.disabled = cls.clips.length >= 8 || !state.model;
    rec.addEventListener('click', () => recordFor(cls.name));
    const upload = document.createElement('input');
    upload.type = 'file';
    upload.accept = '.wav,audio/wav';
    upload.multiple = true;
    upload.className = 'visually-hidden';
    upload.setAttribute('aria-label', `Add wav files to ${cls.name}`);
    upload.dataset.className = cls.name;
    upload.addEventListener('change', async (e) => {
      const files = [...e.target.files];
      e.target.value = '';
      await addFiles(cls.name, files);
    });
    const uploadButton = document.createElement('label');
    uploadButton.className = 'button';
    uploadButton.textContent = 'Add wav files';
    uploadButton.append(upload);
    const del = document.createElement('button');
    del.type = 'button';
    del.className = 'danger';
    del.textContent = 'Delete';
    del.setAttribute('aria-label', `Delete class ${cls.name}`);
    del.addEventListener('click', async () => {
      state.classes = state.classes.filter((c) => c.name !== cls.name);
      await store.deleteClass(cls.name);
      renderClasses();
    });
    li.append(name, count, rec, uploadButton, del);
    list.append(li);
  }
  updateTrainButton();
}

// Enables Train, or says what is missing.
function updateTrainButton() {
  let why = '';
  if (!state.model) why = 'Load a model to train.';
  else if (state.classes.length < 2) why = 'Add at least two classes to train.';
  else {
    const empty = state.classes.filter((c) => c.clips.length === 0).map((c) => `“${c.name}”`);
    if (empty.length) why = `Record or add a clip for ${empty.join(', ')} to train.`;
  }
  $('train').disabled = Boolean(why) || state.training;
  $('train').title = why;
  $('train-why').textContent = state.training ? '' : why;
}

// The leave-one-out estimate: how often a clip is recognised from the user's other clips.
function renderEstimate(estimate) {
  const el = $('estimate');
  if (!estimate || estimate.accuracy === null || estimate.accuracy === undefined) {
    el.textContent = 'Record at least two clips per class for an estimate of how well the classes are told apart.';
    return;
  }
  let text =
    `Estimated accuracy on new clips: ${(estimate.accuracy * 100).toFixed(0)} % ` +
    `(cautious: each of ${estimate.evaluated} clips recognised from your other clips before training, ` +
    `${estimate.correct} right; the trained model usually does better).`;
  const worst = estimate.confusions.slice(0, 3);
  if (worst.length) {
    text += ` Confused: ${worst.map((c) => `“${c.label}” taken for “${c.predicted}” (${c.count}×)`).join(', ')}` +
      ' — record more clips of these.';
  }
  el.textContent = text;
}

function clipCount() {
  return state.classes.reduce((n, c) => n + c.clips.length, 0);
}

// A reminder when the classes changed since the last training.
function retrainHint() {
  return state.trained && state.trainedClipCount !== undefined && clipCount() !== state.trainedClipCount
    ? ' Your classes changed since training: press Train to include the new clips.'
    : '';
}

// Adds a clip to a class; resolves to null, or to what is wrong with the clip.
async function addClip(className, samples) {
  const cls = state.classes.find((c) => c.name === className);
  if (!cls) return `there is no class “${className}”`;
  if (cls.clips.length >= 8) return `“${className}” already has 8 clips, the most this page trains with`;
  if (samples.length < SAMPLE_RATE * 0.1) return 'the clip is shorter than 0.1 s';
  cls.clips.push(samples);
  await store.saveClass(cls);
  renderClasses();
  status(`Added a ${(samples.length / SAMPLE_RATE).toFixed(2)} s clip to “${className}”.${retrainHint()}`);
  return null;
}

// Adds wav files to a class; every refused file is named with its reason.
async function addFiles(className, files) {
  const refused = [];
  for (const file of files) {
    let problem;
    try {
      problem = await addClip(className, decodeWav(new Uint8Array(await file.arrayBuffer()), file.name));
    } catch (err) {
      problem = err.message;
    }
    // Decoding errors name the file already.
    if (problem) refused.push(problem.includes(file.name) ? problem : `${file.name}: ${problem}`);
  }
  if (refused.length) {
    show(`Added ${files.length - refused.length} of ${files.length} files to “${className}”. Refused — ${refused.join('; ')}`);
  } else {
    show('');
  }
}

async function recordFor(className) {
  try {
    show('');
    await startMic();
    state.capture = { className };
    status(`Recording for “${className}”: make the sound now.`);
  } catch (err) {
    show(err.message);
  }
}

$('class-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const name = $('class-name').value.trim();
  if (!name) return;
  if (state.classes.some((c) => c.name === name)) {
    show(`There is already a class “${name}”.`);
    return;
  }
  const cls = { name, clips: [] };
  state.classes.push(cls);
  await store.saveClass(cls);
  $('class-name').value = '';
  renderClasses();
});

// ---------------------------------------------------------------- training

const curve = { loss: [], acc: [] };

function drawCurve() {
  const canvas = $('curve');
  const ctx = canvas.getContext('2d');
  const { width, height } = canvas;
  const styles = getComputedStyle(document.documentElement);
  ctx.clearRect(0, 0, width, height);
  ctx.font = '12px system-ui';
  const n = curve.loss.length;
  if (!n) return;
  const maxLoss = Math.max(...curve.loss, 1e-6);
  const plot = (values, max, color) => {
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    values.forEach((v, i) => {
      const x = 30 + (i / Math.max(1, n - 1)) * (width - 40);
      const y = height - 20 - (v / max) * (height - 35);
      if (i) ctx.lineTo(x, y);
      else ctx.moveTo(x, y);
    });
    ctx.stroke();
  };
  plot(curve.loss, maxLoss, '#d93025');
  plot(curve.acc, 1, '#1e8e3e');
  ctx.fillStyle = styles.getPropertyValue('--fg') || '#000';
  ctx.fillText(`loss (max ${maxLoss.toFixed(2)})`, 34, 14);
  ctx.fillStyle = '#1e8e3e';
  ctx.fillText('batch accuracy', 180, 14);
  ctx.fillStyle = styles.getPropertyValue('--muted') || '#555';
  ctx.fillText(`step ${n}`, width - 60, height - 4);
}

// What the size box sets for the chosen method (PersonaliseOptions::size, said by the wasm
// module once it is loaded); methods without one grey it out.
function updateSizeBox() {
  const meaning = methodSizeMeaning($('method').value);
  $('size').disabled = !meaning;
  $('size').placeholder = meaning ? `${meaning} (default)` : 'none';
  $('size').title = meaning ? `The method's ${meaning}; empty: the page's default` : 'This method has no size';
  if (!meaning) $('size').value = '';
}

$('train').addEventListener('click', async () => {
  const clips = [];
  const labels = [];
  state.classes.forEach((cls, i) => {
    for (const c of cls.clips) {
      clips.push(c);
      labels.push(i);
    }
  });
  const classNames = state.classes.map((c) => c.name);
  const options = {
    method: $('method').value,
    epochs: Number($('epochs').value) || 7,
    batch_size: Math.min(16, clips.length),
    speed_perturb: $('speed-perturb').checked,
  };
  const size = Number($('size').value);
  if (!$('size').disabled && size > 0) options.size = size;
  curve.loss = [];
  curve.acc = [];
  $('curve').hidden = false;
  drawCurve();
  state.training = true;
  updateTrainButton();
  $('stop').disabled = false;
  show('');
  const bar = $('train-progress');
  bar.hidden = false;
  onProgress = (p) => {
    if (p.phase === 'start') {
      $('train-text').textContent = `Training ${p.trainable_params.toLocaleString()} parameters for ${p.total_steps} steps…`;
      renderEstimate(p.held_out);
      return;
    }
    bar.value = p.global_step / p.total_steps;
    curve.loss.push(p.loss);
    curve.acc.push(p.correct / p.batch_len);
    drawCurve();
    const eta = (p.elapsed / p.global_step) * (p.total_steps - p.global_step);
    $('train-text').textContent =
      `Epoch ${p.epoch}, step ${p.global_step}/${p.total_steps} · loss ${p.loss.toFixed(3)} · ` +
      `${p.step_ms.toFixed(0)} ms/step · ETA ${eta.toFixed(0)} s`;
  };
  try {
    const result = await call('train', { clips, labels, classNames, options });
    state.trained = true;
    state.personal = true;
    state.lastTraining = result;
    state.personalLabels = classNames;
    state.trainedClipCount = clipCount();
    $('use-personal').disabled = false;
    $('use-personal').checked = true;
    $('export').disabled = false;
    renderModelLine();
    clearPredictions('Trained: record or drop a clip to hear your classes.');
    renderEstimate(result.held_out);
    status(
      `${result.stopped ? 'Stopped' : 'Trained'} in ${result.seconds.toFixed(1)} s` +
        (result.last ? ` (last loss ${result.last.loss.toFixed(3)})` : '') +
        '. New sounds are now classified with your classes.',
    );
    await persistAdapter();
  } catch (err) {
    show(`Training failed: ${err.message}`);
  } finally {
    state.training = false;
    $('stop').disabled = true;
    updateTrainButton();
  }
});

$('stop').addEventListener('click', () => {
  worker.postMessage({ type: 'stop' });
  $('stop').disabled = true;
});

$('use-personal').addEventListener('change', async (e) => {
  try {
    await call('usePersonal', { personal: e.target.checked });
    state.personal = e.target.checked;
    renderModelLine();
    clearPredictions('');
  } catch (err) {
    e.target.checked = !e.target.checked;
    show(err.message);
  }
});

// ---------------------------------------------------------------- adapters

async function persistAdapter() {
  try {
    const bytes = await call('exportAdapter');
    await store.saveAdapter({ bytes, model: state.modelName, saved: Date.now() });
  } catch (err) {
    show(`The adapter could not be saved in this browser: ${err.message}`, 'info');
  }
}

async function restoreAdapter() {
  const saved = await store.loadAdapter().catch(() => null);
  if (!saved || saved.model !== state.modelName) return;
  try {
    const info = await call('importAdapter', { bytes: saved.bytes.slice().buffer, name: 'saved adapter' });
    state.trained = true;
    state.personal = true;
    state.personalLabels = info.labels;
    renderModelLine();
    $('use-personal').disabled = false;
    $('use-personal').checked = true;
    $('export').disabled = false;
    status(`Ready: ${state.modelName} with your saved classes.`);
  } catch (err) {
    show(`Your saved adapter does not fit this model: ${err.message}`, 'info');
  }
}

$('export').addEventListener('click', async () => {
  try {
    const bytes = await call('exportAdapter');
    const url = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = 'petl-ast-adapter.safetensors';
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (err) {
    show(`Export failed: ${err.message}`);
  }
});

$('import').addEventListener('change', async (e) => {
  const file = e.target.files[0];
  e.target.value = '';
  if (!file) return;
  try {
    const bytes = new Uint8Array(await file.arrayBuffer());
    const info = await call('importAdapter', { bytes: bytes.slice().buffer, name: file.name });
    await store.saveAdapter({ bytes, model: state.modelName, saved: Date.now() });
    state.trained = true;
    state.personal = true;
    state.personalLabels = info.labels;
    $('use-personal').disabled = false;
    $('use-personal').checked = true;
    $('export').disabled = false;
    renderModelLine();
    clearPredictions('');
    status(`Imported ${file.name}: ${info.labels.join(', ')}.`);
  } catch (err) {
    show(`Could not import ${file.name}: ${err.message}`);
  }
});

$('forget').addEventListener('click', async () => {
  if (!params.has('noconfirm') && !confirm('Delete your classes, clips, saved adapter and downloaded models?')) return;
  await store.forgetEverything();
  state.classes = [];
  renderClasses();
  if (state.personal) await call('usePersonal', { personal: false }).catch(() => {});
  state.personal = false;
  state.trained = false;
  $('use-personal').checked = false;
  $('use-personal').disabled = true;
  $('export').disabled = true;
  status('Everything stored by this page was deleted.');
});

// ---------------------------------------------------------------- start

async function main() {
  const t0 = performance.now();
  if (typeof WebAssembly !== 'object') {
    status('This browser cannot run WebAssembly, which this page needs.');
    return;
  }
  await init();
  $('version').textContent = `petl-ast ${version()}`;
  $('method').addEventListener('change', updateSizeBox);
  updateSizeBox();
  const wanted = params.get('backend') === 'cpu' ? 'cpu' : 'webgpu';
  // `?threads=1` keeps the CPU engine on one thread even where the threaded build could run.
  const threads = params.get('threads') === '1' ? 1 : undefined;
  const backend = await call('init', { backend: wanted, threads });
  state.backend = backend;
  $('backend').textContent = backend.backend === 'webgpu' ? `WebGPU: ${backend.adapter}` : backend.adapter;
  if (backend.fallback) show(`Using the CPU: ${backend.fallback}. Training will be slower.`, 'info');
  state.classes = await store.loadClasses().catch(() => []);
  renderClasses();
  await loadDemo();
  state.startupMs = performance.now() - t0;
  document.body.dataset.ready = '1';
}

main().catch((err) => {
  show(`The page could not start: ${err.message}`);
  status('Not ready.');
});
