// End-to-end test of the web app in headless Chromium (Debian `chromium`, driven by
// playwright-core), against the trunk build in dist/ served on 127.0.0.1.
//
//   1. The fake microphone plays a held-out FSDD test clip; the page shows its digit as top-1.
//   2. CPU fallback (WebGPU disabled): three words the backbone never heard, spoken by espeak-ng
//      voices it never heard, 4 clips per word uploaded and trained in the page; held-out clips
//      (other voices) are classified correctly (≥ 8 of 9, ≥ 2 of 3 per word); the page's scores match the native CLI within 1e-3 (base
//      model and the exported adapter); export → reload (IndexedDB restores classes and adapter)
//      → forget → import gives the same predictions; a denied microphone and a truncated model
//      file show clear messages.
//      The page is cross-origin isolated, so this runs the threaded CPU build; a second run with
//      `?threads=1` (the single-threaded build) checks the native numbers and times the same training.
//      Prompt tuning, BitFit, a Pfeiffer adapter and IA³ train too; their files classify natively
//      as in the page.
//   3. A model downloaded by URL from a hub-like server: the f16 file, a moving progress bar,
//      Cache Storage on reload, a download cut half-way (hubScenario).
//   4. WebGPU (SwiftShader): the base model and the CPU-trained adapter give the native numbers;
//      a short training run on WebGPU exports an adapter whose native logits match the page's.
//   5. Only with `--only ast-base` (too slow for every CI run): the AudioSet AST's shape (random
//      weights, 527 labels, f16 download), its load, Cache Storage, native-equal scores on the
//      threaded CPU and on WebGPU, adapter training steps and the page's memory (astBaseScenario).
//
// Screenshots of the main states and a timing summary (web-bench.json) go to $E2E_OUT
// (default: $CARGO_TARGET_DIR/e2e). Usage: node tests/e2e/web.test.mjs [--only webgpu|cpu|hub|ast-base]
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DIST = join(ROOT, 'dist');
const FSDD = resolve(ROOT, process.env.FSDD_DIR || '../shared/data/fsdd/recordings');
const TARGET = process.env.CARGO_TARGET_DIR || join(process.env.HOME, '.cache/petl-ast-target');
const OUT = process.env.E2E_OUT || join(TARGET, 'e2e');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const NATIVE = process.env.NATIVE_TRAIN || join(TARGET, 'release', 'native-train');
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : null;
mkdirSync(OUT, { recursive: true });
const WORK = mkdtempSync(join(tmpdir(), 'petl-e2e-'));
const bench = { wasm_bytes: 0 };

function log(...args) {
  console.log('[e2e]', ...args);
}

// ---------------------------------------------------------------- static server

const MIME = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript',
  '.wasm': 'application/wasm', '.json': 'application/json', '.css': 'text/css',
  '.safetensors': 'application/octet-stream', '.jsonl': 'application/json',
};
const requests = [];

function serve() {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    requests.push(path);
    if (path.startsWith('/hub/')) {
      serveHub(path.slice('/hub'.length), req, res);
      return;
    }
    let file = join(DIST, path === '/' ? 'index.html' : path);
    if (!file.startsWith(DIST) || !existsSync(file) || statSync(file).isDirectory()) {
      res.writeHead(404);
      res.end('not found');
      return;
    }
    const body = readFileSync(file);
    res.writeHead(200, {
      'content-type': MIME[extname(file)] || 'application/octet-stream', 'content-length': body.length,
      // Cross-origin isolation (as Trunk.toml's `trunk serve`): the CPU fallback may use threads.
      'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp',
    });
    res.end(body);
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
}

// Model folders the way the Hugging Face hub serves them (`/<repo>/resolve/main/<file>`:
// Content-Length, byte ranges, 404 for a file the repo lacks), the weights in slow chunks so the
// page's progress bar moves. A repo named `broken` cuts the weights off half-way.
const HUB = join(WORK, 'hub');

function serveHub(path, req, res) {
  const match = path.match(/^\/([^/]+\/[^/]+)\/resolve\/main\/([^/]+)$/);
  const file = match && join(HUB, match[1], match[2]);
  const cors = { 'access-control-allow-origin': '*', 'cross-origin-resource-policy': 'cross-origin' };
  if (!file || !file.startsWith(HUB) || !existsSync(file)) {
    res.writeHead(404, cors);
    res.end('Entry not found');
    return;
  }
  const body = readFileSync(file);
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range || '');
  if (range) {
    const [start, end] = [Number(range[1]), range[2] ? Number(range[2]) : body.length - 1];
    res.writeHead(206, { ...cors, 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${body.length}`, 'accept-ranges': 'bytes' });
    res.end(body.subarray(start, end + 1));
    return;
  }
  res.writeHead(200, { ...cors, 'content-type': MIME[extname(file)] || 'application/octet-stream', 'content-length': body.length, 'accept-ranges': 'bytes' });
  const weights = extname(file) === '.safetensors';
  const cut = match[1].endsWith('/broken') && weights ? body.length >> 1 : body.length;
  const chunk = weights ? 1 << 16 : body.length;
  let sent = 0;
  const next = () => {
    if (sent >= cut) {
      if (cut < body.length) res.destroy();
      else res.end();
      return;
    }
    res.write(body.subarray(sent, Math.min(sent + chunk, cut)));
    sent += chunk;
    setTimeout(next, 15);
  };
  next();
}

// The built-in backbone as a hub repo with its f32 weights and, beside them, the f16 export of
// `native-train quantize` under transformers' variant name; and a repo whose download breaks.
function makeHubRepos() {
  const model = join(ROOT, 'www/models/speech-ast-tiny');
  const half = join(WORK, 'speech-ast-tiny-f16');
  sh(NATIVE, ['quantize', '--checkpoint', model, '--dtype', 'f16', '--out', half]);
  for (const repo of ['petl/speech-ast-tiny', 'petl/broken']) {
    const dir = join(HUB, repo);
    mkdirSync(dir, { recursive: true });
    for (const f of ['config.json', 'preprocessor_config.json', 'model.safetensors']) writeFileSync(join(dir, f), readFileSync(join(model, f)));
    writeFileSync(join(dir, 'model.fp16.safetensors'), readFileSync(join(half, 'model.safetensors')));
  }
  return half;
}

// ---------------------------------------------------------------- audio

function sh(cmd, args) {
  return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

// The fake microphone loops its file: a digit between two seconds of silence.
function micFile(clip) {
  const out = join(WORK, `mic-${clip}`);
  sh('sox', [join(FSDD, clip), '-r', '16000', '-b', '16', out, 'pad', '1.5', '1.5']);
  return out;
}

// Words and voices the built-in backbone never heard: held out of its pretraining corpus
// (scripts/make_pretrain_corpus.py: HELDOUT_WORDS, ESPEAK_HELDOUT_VARIANTS).
const WORDS = ['apple', 'river', 'lantern'];
const VOICES = ['en-us-nyc+Annie', 'en-gb+f4', 'en-us+f5', 'en-gb-scotland+travis', 'en-029+michel', 'en-us+m7', 'en-gb-x-rp+linda'];
const SPEEDS = [150, 135, 165, 145, 155, 140, 160];

// One second of pink noise: no speech at all. `-R` makes sox's generator repeatable, so every
// run hears the same noise.
function noiseFile() {
  const out = join(WORK, 'noise.wav');
  sh('sox', ['-R', '-n', '-r', '16000', '-b', '16', out, 'synth', '1.0', 'pinknoise', 'gain', '-n', '-25']);
  return out;
}

function speak() {
  const files = {};
  for (const word of WORDS) {
    files[word] = VOICES.map((voice, i) => {
      const out = join(WORK, `${word}-${i}.wav`);
      sh('espeak-ng', ['-v', voice, '-s', String(SPEEDS[i]), '-w', out, word]);
      return out;
    });
  }
  return files; // 7 per word: the first 4 train, the last 3 test
}

// ---------------------------------------------------------------- page helpers

async function launch({ webgpu, mic }) {
  const args = [
    '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-quic', '--no-first-run', '--autoplay-policy=no-user-gesture-required',
  ];
  if (webgpu) args.push('--enable-unsafe-webgpu');
  else args.push('--disable-features=WebGPU');
  if (mic) args.push('--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${mic}`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args });
}

async function open(browser, url) {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 900, height: 1400 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  const t0 = Date.now();
  await page.goto(url);
  await page.waitForSelector('body[data-ready="1"]', { timeout: 180_000 }).catch(async (e) => {
    await page.screenshot({ path: join(OUT, 'failed-start.png') });
    throw new Error(`the page did not become ready: ${await page.textContent('#message')} ${errors.join(' | ')} (${e.message})`);
  });
  return { context, page, errors, startupMs: Date.now() - t0 };
}

async function shot(page, name) {
  const path = join(OUT, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  log('screenshot', path);
}

async function topLabels(page) {
  return page.$$eval('#predictions li', (lis) =>
    lis.map((li) => ({ label: li.querySelector('.label').textContent, score: parseFloat(li.querySelector('.score').textContent) / 100 })),
  );
}

// Classifies a wav file through the page's file input; resolves to the top labels.
async function classifyFile(page, file) {
  const before = await page.evaluate(() => document.querySelector('#status').textContent);
  await page.setInputFiles('#classify-file', file);
  await page.waitForFunction((b) => document.querySelector('#status').textContent !== b && document.querySelector('#status').textContent.startsWith('Classified'), before, { timeout: 120_000 });
  return topLabels(page);
}

async function scoresOf(page, file) {
  // Exact scores (the list shows one decimal): ask the worker-backed classifier via the page.
  return page.evaluate(async (bytes) => {
    const mod = await import('/petl-ast.js');
    const samples = mod.decodeWav(new Uint8Array(bytes), 'clip.wav');
    const { top } = await window.petlCall('classify', { samples, k: 5 });
    return top;
  }, [...readFileSync(file)]);
}

// The worker's own time for one classification of `file` (decoded once), best of `runs`.
async function classifyMs(page, file, runs) {
  return page.evaluate(async ([bytes, runs]) => {
    const mod = await import('/petl-ast.js');
    const samples = mod.decodeWav(new Uint8Array(bytes), 'clip.wav');
    let best = Infinity;
    for (let i = 0; i < runs; i++) best = Math.min(best, (await window.petlCall('classify', { samples, k: 5 })).ms);
    return best;
  }, [[...readFileSync(file)], runs]);
}

// The page classifies a held-out FSDD digit as the native CLI does; records the first and the
// warm classification times under `bench[prefix + '_…']`.
async function digitMatchesNative(page, prefix, what) {
  const digit = join(FSDD, '5_nicolas_2.wav');
  const t0 = Date.now();
  assertClose(await scoresOf(page, digit), nativeScores(digit), what);
  bench[`${prefix}_first_classification_ms`] = Date.now() - t0;
  bench[`${prefix}_classification_ms`] = await classifyMs(page, digit, 5);
}

function nativeScores(file, adapter, checkpoint) {
  const args = ['classify', '--json', '--top-k', '5', file];
  if (adapter) args.splice(1, 0, '--adapter', adapter);
  if (checkpoint) args.splice(1, 0, '--checkpoint', checkpoint);
  const out = JSON.parse(sh(NATIVE, args));
  const entry = Array.isArray(out) ? out[0] : out;
  return entry.top || entry.labels || entry.predictions;
}

// The `petl_ast` metadata of an adapter file (the safetensors header's `__metadata__`).
function adapterMetadata(file) {
  const bytes = readFileSync(file);
  const length = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + length).toString('utf8'));
  return JSON.parse(header.__metadata__.petl_ast);
}

function assertClose(web, native, what) {
  const byLabel = new Map(native.map((p) => [p.label, p.score]));
  for (const p of web) {
    assert.ok(byLabel.has(p.label), `${what}: label ${p.label} missing natively`);
    assert.ok(Math.abs(byLabel.get(p.label) - p.score) <= 1e-3, `${what}: ${p.label} ${p.score} (web) vs ${byLabel.get(p.label)} (native)`);
  }
}

// ---------------------------------------------------------------- scenarios

async function digitFromMicrophone(url) {
  const clip = '3_jackson_0.wav'; // official test split: never trained on
  const browser = await launch({ webgpu: true, mic: micFile(clip) });
  try {
    const { page, errors, startupMs } = await open(browser, url);
    bench.webgpu_startup_ms = startupMs;
    await shot(page, '1-start');
    const t0 = Date.now();
    await page.click('#record');
    await page.waitForSelector('#predictions li', { timeout: 60_000 });
    bench.mic_to_result_ms = Date.now() - t0;
    const top = await topLabels(page);
    await shot(page, '2-digit-from-microphone');
    log('microphone digit:', JSON.stringify(top.slice(0, 3)));
    assert.equal(top[0].label, clip[0], `the page heard ${top[0].label}, expected ${clip[0]}`);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
}

async function addClasses(page, words, backend) {
  // Train is greyed out with the reason said.
  assert.match(await page.textContent('#train-why'), /at least two classes/);
  for (const word of WORDS) {
    await page.fill('#class-name', word);
    await page.click('#class-form button[type=submit]');
    await page.waitForSelector(`input[data-class-name="${word}"]`, { state: 'attached' });
    await page.setInputFiles(`input[data-class-name="${word}"]`, words[word].slice(0, 4));
    await page.waitForFunction((w) => window.petl.classes.find((c) => c.name === w)?.clips.length === 4, word);
  }
  await shot(page, `3-classes-${backend}`);
}

async function train(page, epochs, backend) {
  await page.fill('#epochs', String(epochs));
  await page.click('#train');
  await page
    .waitForFunction(() => window.petl.trained && !window.petl.training, null, { timeout: 900_000, polling: 1000 })
    .catch(async (e) => {
      await shot(page, `failed-training-${backend}`);
      throw new Error(`${backend}: training did not finish: ${await page.textContent('#train-text')} ${await page.textContent('#message')} (${e.message})`);
    });
  const training = await page.evaluate(() => window.petl.lastTraining);
  await shot(page, `4-trained-${backend}`);
  // The leave-one-out estimate over the user's clips is shown, and is a share.
  const estimate = training.held_out;
  assert.ok(estimate && estimate.accuracy >= 0 && estimate.accuracy <= 1, `${backend}: held-out estimate ${JSON.stringify(estimate)}`);
  assert.match(await page.textContent('#estimate'), /Estimated accuracy on new clips: \d+ %/);
  bench[`${backend}_held_out_estimate`] = estimate.accuracy;
  // Nothing on screen still speaks for the model before training.
  assert.equal(await page.$$eval('#predictions li', (l) => l.length), 0, `${backend}: stale predictions after training`);
  assert.match(await page.textContent('#model-name'), new RegExp(`your ${WORDS.length} classes`), `${backend}: the model line ignores the personal classes`);
  log(`${backend}: trained ${training.total_steps} steps in ${training.seconds.toFixed(1)} s, last loss ${training.last.loss.toFixed(3)}`);
  assert.ok(Number.isFinite(training.last.loss), `${backend}: the loss is not finite`);
  bench[`${backend}_train_seconds`] = training.seconds;
  bench[`${backend}_step_ms`] = (1000 * training.seconds) / training.total_steps;
  bench[`${backend}_steps`] = training.total_steps;
  return training;
}

async function heldOut(page, words, backend) {
  const predictions = {};
  for (const word of WORDS) {
    predictions[word] = [];
    for (const file of words[word].slice(4)) {
      const top = await classifyFile(page, file);
      predictions[word].push(top[0].label);
    }
    log(`${backend}: held-out "${word}" → ${predictions[word].join(', ')}`);
  }
  await shot(page, `5-personal-prediction-${backend}`);
  return predictions;
}

async function exportAdapter(page, name) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export')]);
  const path = join(WORK, name);
  await download.saveAs(path);
  log('exported adapter:', path, statSync(path).size, 'bytes');
  return path;
}

// The CPU fallback (WebGPU disabled): personalise to three espeak-ng words, held-out accuracy,
// export → reload (IndexedDB) → forget → import, error messages.
async function cpuScenario(url, words) {
  const browser = await launch({ webgpu: false });
  try {
    const { page, errors, startupMs } = await open(browser, url);
    bench.cpu_startup_ms = startupMs;
    const backend = await page.textContent('#backend');
    log('backend:', backend);
    // The page is cross-origin isolated (serve()), so on ≥ 2 cores it runs the threaded build.
    const cores = await page.evaluate(() => navigator.hardwareConcurrency);
    assert.match(backend, cores > 1 ? new RegExp(`CPU \\(WebAssembly, ${cores} threads\\)`) : /CPU/);
    bench.cpu_threads = cores > 1 ? cores : 1;
    await digitMatchesNative(page, 'cpu', 'CPU wasm vs native');
    // No speech: the page says so instead of naming a word.
    await classifyFile(page, noiseFile());
    const verdict = await page.textContent('#verdict');
    log('noise verdict:', verdict);
    assert.match(verdict, /No speech|Not sure/, 'pink noise named as a label');
    // A word the backbone never learnt: not confidently named as one it knows.
    await classifyFile(page, words[WORDS[0]][4]);
    const unknown = await page.textContent('#verdict');
    log('unknown-word verdict:', unknown);
    assert.match(unknown, /Not sure/, 'an unknown word named as a known label');

    await addClasses(page, words, 'cpu');
    await train(page, 7, 'cpu');
    const predictions = await heldOut(page, words, 'cpu');
    // New words by new voices: at most one held-out clip of the nine wrong, none of the words lost.
    let total = 0;
    for (const word of WORDS) {
      const right = predictions[word].filter((p) => p === word).length;
      total += right;
      assert.ok(right >= 2, `only ${right} of 3 held-out "${word}" clips classified as "${word}"`);
    }
    assert.ok(total >= 8, `only ${total} of 9 held-out clips classified right`);
    bench.cpu_held_out_right = total;
    const probe = words[WORDS[0]][4];
    const reference = await scoresOf(page, probe);
    const adapter = await exportAdapter(page, 'adapter-cpu.safetensors');
    // The adapter file works natively too, with the same numbers.
    assertClose(reference, nativeScores(probe, adapter), 'exported adapter: web vs native');

    await page.reload();
    await page.waitForSelector('body[data-ready="1"]', { timeout: 180_000 });
    const restored = await page.evaluate(() => ({ classes: window.petl.classes.map((c) => c.clips.length), personal: window.petl.personal }));
    assert.deepEqual(restored, { classes: [4, 4, 4], personal: true }, 'reload restores the classes and the adapter');
    assertClose(await scoresOf(page, probe), reference, 'after reload');

    page.on('dialog', (d) => d.accept());
    await page.click('#forget');
    await page.waitForFunction(() => window.petl.classes.length === 0 && !window.petl.personal);
    await page.setInputFiles('#import', adapter);
    await page.waitForFunction(() => window.petl.personal, null, { timeout: 60_000 });
    assertClose(await scoresOf(page, probe), reference, 'after import');
    for (const word of WORDS) {
      const top = await classifyFile(page, words[word][4]);
      assert.equal(top[0].label, predictions[word][0], `import changed the prediction of ${word}`);
    }
    await shot(page, '6-imported-cpu');

    // Error messages: no microphone permission (no fake UI in this browser), a truncated model.
    await page.click('#record');
    await page.waitForFunction(() => /microphone/i.test(document.querySelector('#message').textContent), null, { timeout: 30_000 });
    log('microphone message:', await page.textContent('#message'));
    const model = join(ROOT, 'www/models/speech-ast-tiny');
    const truncated = join(WORK, 'model.safetensors');
    writeFileSync(truncated, readFileSync(join(model, 'model.safetensors')).subarray(0, 100_000));
    await page.click('summary');
    await page.setInputFiles('#model-files', [join(model, 'config.json'), truncated]);
    await page.waitForFunction(() => /Could not load the model files/.test(document.querySelector('#message').textContent), null, { timeout: 30_000 });
    const modelMessage = await page.textContent('#message');
    log('truncated model message:', modelMessage);
    assert.match(modelMessage, /model\.safetensors/);
    await shot(page, '7-errors-cpu');
    // The demo stays usable, and a success clears the error banner.
    await classifyFile(page, words[WORDS[0]][4]);
    assert.ok(await page.isHidden('#message'), 'the error banner stays up after a successful classification');
    assert.deepEqual(errors.filter((e) => !/Permission|NotAllowed|Failed to load resource/.test(e)), []);
    return { adapter, reference, probe };
  } finally {
    await browser.close();
  }
}

// The CPU fallback on one thread (`?threads=1`, the build a page without cross-origin isolation
// gets): the native numbers, and the same training run's speed for comparison with the threads.
async function singleThreadCpuScenario(url, words) {
  const browser = await launch({ webgpu: false });
  try {
    const { page, errors } = await open(browser, `${url}?threads=1`);
    assert.equal(await page.textContent('#backend'), 'CPU (WebAssembly)');
    await digitMatchesNative(page, 'cpu1', 'CPU wasm (one thread) vs native');
    await addClasses(page, words, 'cpu1');
    await train(page, 7, 'cpu1');
    // Other methods train in the page too, one epoch each (three steps: the 12 clips and their
    // two speed-changed copies); each exported file gives the page's numbers natively.
    const probe = words[WORDS[1]][5];
    for (const method of ['prompt', 'bitfit', 'adapter', 'ia3']) {
      await page.selectOption('#method', method);
      // The size box sets the method's main size (here 4 prompt tokens); BitFit and IA³ have none.
      assert.equal(await page.isDisabled('#size'), method === 'bitfit' || method === 'ia3', `${method}: size box`);
      if (method === 'prompt') await page.fill('#size', '4');
      const training = await train(page, 1, `cpu1_${method}`);
      assert.equal(training.total_steps, 3, method);
      const adapter = await exportAdapter(page, `adapter-${method}.safetensors`);
      assertClose(await scoresOf(page, probe), nativeScores(probe, adapter), `${method} adapter: web vs native`);
      if (method === 'prompt') {
        assert.equal(adapterMetadata(adapter).petl.prompt.length, 4, 'the size box set the prompt length');
        await page.fill('#size', '');
      }
    }
    // A multi-file upload names every refused file and counts the accepted ones; a clip added
    // after training says the classes need training again.
    const empty = join(WORK, 'empty.wav');
    const text = join(WORK, 'notes.wav');
    writeFileSync(empty, Buffer.alloc(0));
    writeFileSync(text, 'not a wav file\n');
    await page.setInputFiles(`input[data-class-name="${WORDS[0]}"]`, [empty, words[WORDS[0]][5], text]);
    await page.waitForFunction(() => /Added 1 of 3 files/.test(document.querySelector('#message').textContent), null, { timeout: 30_000 });
    const refused = await page.textContent('#message');
    log('refused files:', refused);
    assert.match(refused, /empty\.wav/);
    assert.match(refused, /notes\.wav/);
    assert.match(await page.textContent('#status'), /changed since training/);
    await shot(page, '8-refused-files-cpu1');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
}

// Downloading a model by URL: the page takes the half-precision file when the repo has one,
// the progress bar moves to the end, the classification matches the native CLI on the same f16
// weights, a reload loads it from Cache Storage without a request, and a download cut half-way
// says so, caches nothing and leaves the loaded model in place.
// Loads the model at the hub URL `base` through the page's model form; returns the values the
// download progress bar showed.
async function downloadFromHub(page, base, timeout) {
  await page.evaluate(() => {
    window.progressSeen = [];
    new MutationObserver(() => window.progressSeen.push(document.querySelector('#download-progress').value))
      .observe(document.querySelector('#download-text'), { childList: true, characterData: true, subtree: true });
  });
  await page.evaluate(() => { document.querySelector('details').open = true; });
  await page.fill('#model-url', base);
  await page.click('#load-url');
  await page.waitForFunction(() => !document.querySelector('#load-url').disabled, null, { timeout });
  return page.evaluate(() => window.progressSeen);
}

async function hubScenario(url) {
  const half = makeHubRepos();
  const browser = await launch({ webgpu: false });
  try {
    const { page, errors } = await open(browser, url);
    const repo = `${url}hub/petl/speech-ast-tiny/resolve/main/`;
    const download = (base) => downloadFromHub(page, base, 120_000);
    const weightRequests = () => requests.filter((r) => r.startsWith('/hub/petl/speech-ast-tiny/') && r.endsWith('.safetensors'));
    const seen = await download(repo);
    assert.match(await page.textContent('#status'), /Ready: 127\.0\.0\.1.*loaded/, await page.textContent('#message'));
    assert.deepEqual(weightRequests(), ['/hub/petl/speech-ast-tiny/resolve/main/model.fp16.safetensors'], 'the f16 file, and only it');
    assert.ok(seen.some((v) => v > 0 && v < 1) && Math.max(...seen) === 1, `progress ${seen.slice(0, 5)}…${seen.slice(-3)}`);
    bench.hub_progress_updates = seen.length;
    const digit = join(FSDD, '5_nicolas_2.wav');
    assertClose(await scoresOf(page, digit), nativeScores(digit, null, half), 'f16 download vs native f16');
    await shot(page, '9-downloaded-f16');

    await page.reload();
    await page.waitForSelector('body[data-ready="1"]', { timeout: 180_000 });
    await download(repo);
    assert.match(await page.textContent('#download-text'), /from cache/);
    assert.equal(weightRequests().length, 1, 'the second load asked the server for the weights again');
    assertClose(await scoresOf(page, digit), nativeScores(digit, null, half), 'f16 from Cache Storage vs native f16');

    const broken = `${url}hub/petl/broken/resolve/main/`;
    await download(broken);
    const message = await page.textContent('#message');
    log('broken download message:', message);
    assert.match(message, /model\.fp16\.safetensors: the download stopped after \d+ of \d+ bytes/);
    assert.match(await page.textContent('#status'), /Model not changed/);
    const cached = await page.evaluate(async (u) => Boolean(await (await caches.open('petl-ast-models')).match(u)), `${broken}model.fp16.safetensors`);
    assert.equal(cached, false, 'a broken download left an entry in Cache Storage');
    assertClose(await scoresOf(page, digit), nativeScores(digit, null, half), 'the loaded model after a broken download');
    await shot(page, '10-broken-download');

    // A model too large for the page's 4 GiB WebAssembly memory is refused before loading.
    const huge = JSON.parse(readFileSync(join(HUB, 'petl/speech-ast-tiny/config.json'), 'utf8'));
    Object.assign(huge, { hidden_size: 8192, intermediate_size: 32768, num_attention_heads: 8, num_hidden_layers: 12 });
    const hugeDir = join(WORK, 'huge');
    mkdirSync(hugeDir, { recursive: true });
    writeFileSync(join(hugeDir, 'config.json'), JSON.stringify(huge));
    writeFileSync(join(hugeDir, 'model.safetensors'), readFileSync(join(HUB, 'petl/speech-ast-tiny/model.fp16.safetensors')));
    await page.setInputFiles('#model-files', [join(hugeDir, 'config.json'), join(hugeDir, 'model.safetensors')]);
    await page.waitForFunction(() => /GiB/.test(document.querySelector('#message').textContent), null, { timeout: 30_000 });
    const tooLarge = await page.textContent('#message');
    log('too-large model message:', tooLarge);
    assert.match(tooLarge, /needs about \d+\.\d GiB .* at most 4 GiB/);
    assertClose(await scoresOf(page, digit), nativeScores(digit, null, half), 'the loaded model after a refused one');
    assert.deepEqual(errors.filter((e) => !/Failed to load resource|ERR_/.test(e)), []);
  } finally {
    await browser.close();
  }
}

// AST-base in the page (`--only ast-base`; not in the default run: 14 minutes on 2 cores, most of
// them for one classification on SwiftShader):
// the AudioSet model's shape (d 768, 12 layers, 527 labels; random weights from `native-train
// init`) served as a hub repo with its f16 file, downloaded with progress, loaded again from Cache
// Storage, classified on the threaded CPU and on WebGPU as natively, and personalised for a few
// adapter steps.
async function astBaseScenario(url, words) {
  const full = join(WORK, 'ast-base');
  const half = join(WORK, 'ast-base-f16');
  sh(NATIVE, ['init', '--out', full]);
  sh(NATIVE, ['quantize', '--checkpoint', full, '--dtype', 'f16', '--out', half]);
  const dir = join(HUB, 'petl/ast-base');
  mkdirSync(dir, { recursive: true });
  for (const f of ['config.json', 'preprocessor_config.json', 'model.safetensors']) writeFileSync(join(dir, f), readFileSync(join(full, f)));
  writeFileSync(join(dir, 'model.fp16.safetensors'), readFileSync(join(half, 'model.safetensors')));
  bench.ast_base_f16_bytes = statSync(join(dir, 'model.fp16.safetensors')).size;
  const browser = await launch({ webgpu: false });
  try {
    const { page, errors } = await open(browser, url);
    const repo = `${url}hub/petl/ast-base/resolve/main/`;
    const weightRequests = () => requests.filter((r) => r.startsWith('/hub/petl/ast-base/') && r.endsWith('.safetensors'));
    let t0 = Date.now();
    const seen = await downloadFromHub(page, repo, 900_000);
    bench.ast_base_download_and_load_s = (Date.now() - t0) / 1000;
    assert.match(await page.textContent('#status'), /Ready: .*loaded/, await page.textContent('#message'));
    assert.deepEqual(weightRequests(), ['/hub/petl/ast-base/resolve/main/model.fp16.safetensors'], 'the f16 file, and only it');
    assert.ok(seen.some((v) => v > 0 && v < 1) && Math.max(...seen) === 1, `progress ${seen.slice(0, 5)}…${seen.slice(-3)}`);
    bench.ast_base_memory_after_load_bytes = (await page.evaluate(() => window.petlCall('memory'))).bytes;
    const digit = join(FSDD, '5_nicolas_2.wav');
    t0 = Date.now();
    assertClose(await scoresOf(page, digit), nativeScores(digit, null, half), 'AST-base f16: page (CPU threads) vs native');
    bench.ast_base_first_classification_ms = Date.now() - t0;
    bench.ast_base_classification_ms = await classifyMs(page, digit, 1);
    await shot(page, '11-ast-base-loaded');

    await page.reload();
    await page.waitForSelector('body[data-ready="1"]', { timeout: 180_000 });
    t0 = Date.now();
    await downloadFromHub(page, repo, 900_000);
    bench.ast_base_load_from_cache_s = (Date.now() - t0) / 1000;
    assert.match(await page.textContent('#download-text'), /from cache/);
    assert.equal(weightRequests().length, 1, 'the second load asked the server for the weights again');

    await addClasses(page, words, 'ast_base');
    await page.uncheck('#speed-perturb');
    const training = await train(page, 1, 'cpu_ast_base');
    bench.ast_base_memory_after_training_bytes = (await page.evaluate(() => window.petlCall('memory'))).bytes;
    log(`AST-base: ${training.total_steps} adapter steps, ${(bench.cpu_ast_base_step_ms / 1000).toFixed(1)} s each; memory ${bench.ast_base_memory_after_training_bytes} bytes`);
    assert.deepEqual(errors.filter((e) => !/Failed to load resource|ERR_/.test(e)), []);
  } finally {
    await browser.close();
  }
  // The same weights on WebGPU (SwiftShader): the scores of the CPU and of native.
  const gpu = await launch({ webgpu: true });
  try {
    const { page, errors } = await open(gpu, url);
    assert.match(await page.textContent('#backend'), /WebGPU/);
    await downloadFromHub(page, `${url}hub/petl/ast-base/resolve/main/`, 900_000);
    assert.match(await page.textContent('#status'), /Ready: .*loaded/, await page.textContent('#message'));
    const digit = join(FSDD, '5_nicolas_2.wav');
    const t0 = Date.now();
    assertClose(await scoresOf(page, digit), nativeScores(digit, null, half), 'AST-base f16: page (WebGPU) vs native');
    bench.ast_base_webgpu_first_classification_ms = Date.now() - t0;
    assert.deepEqual(errors.filter((e) => !/Failed to load resource|ERR_/.test(e)), []);
  } finally {
    await gpu.close();
  }
}

// WebGPU (SwiftShader, a software GPU: ~1 min per training step here, so few steps): the base
// model and the CPU-trained adapter give the native numbers; a short training run on WebGPU
// exports an adapter whose native logits match the page's.
async function webgpuScenario(url, words, fromCpu) {
  const browser = await launch({ webgpu: true });
  try {
    const { page, errors } = await open(browser, url);
    const backend = await page.textContent('#backend');
    log('backend:', backend);
    assert.match(backend, /WebGPU/);
    const digit = join(FSDD, '5_nicolas_2.wav');
    const t0 = Date.now();
    assertClose(await scoresOf(page, digit), nativeScores(digit), 'WebGPU vs native');
    bench.webgpu_first_classification_ms = Date.now() - t0;
    if (fromCpu) {
      await page.setInputFiles('#import', fromCpu.adapter);
      await page.waitForFunction(() => window.petl.personal, null, { timeout: 60_000 });
      assertClose(await scoresOf(page, fromCpu.probe), fromCpu.reference, 'CPU-trained adapter on WebGPU');
    }
    await addClasses(page, words, 'webgpu');
    // Two steps (no speed copies): a software GPU takes about 20 s per step.
    await page.uncheck('#speed-perturb');
    const training = await train(page, 2, 'webgpu');
    assert.equal(training.total_steps, 2);
    const probe = words[WORDS[1]][5];
    const web = await scoresOf(page, probe);
    const adapter = await exportAdapter(page, 'adapter-webgpu.safetensors');
    assertClose(web, nativeScores(probe, adapter), 'WebGPU-trained adapter: web vs native');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
}

// ---------------------------------------------------------------- main

async function main() {
  assert.ok(existsSync(join(DIST, 'index.html')), 'dist/ is missing: run `trunk build --release` first');
  assert.ok(existsSync(NATIVE), `${NATIVE} is missing: run \`cargo build --release -p native-train\` first`);
  const wasm = readFileSync(join(DIST, 'index.html'), 'utf8') && statSync(join(DIST, 'petl-ast_bg.wasm'));
  bench.wasm_bytes = wasm.size;
  const server = await serve();
  const url = `http://127.0.0.1:${server.address().port}/`;
  log('serving dist/ at', url, '— screenshots in', OUT);
  const words = speak();
  try {
    const fromCpu = !only || only === 'cpu' ? await cpuScenario(url, words) : null;
    if (!only || only === 'cpu') await singleThreadCpuScenario(url, words);
    if (!only || only === 'cpu' || only === 'hub') await hubScenario(url);
    if (only === 'ast-base') await astBaseScenario(url, words);
    if (!only || only === 'webgpu') {
      await digitFromMicrophone(url);
      await webgpuScenario(url, words, fromCpu);
    }
    const foreign = requests.filter((r) => !existsSync(join(DIST, r)) && r !== '/' && !r.startsWith('/hub/'));
    assert.deepEqual(foreign, [], 'the page asked for files that do not exist');
  } finally {
    server.close();
  }
  writeFileSync(join(OUT, 'web-bench.json'), JSON.stringify(bench, null, 2));
  log('timings:', JSON.stringify(bench));
  log('all web tests passed');
}

main().catch((e) => {
  console.error('[e2e] FAILED:', e.message);
  process.exit(1);
});
