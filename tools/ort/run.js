#!/usr/bin/env node
// Runs ONNX files with ONNX Runtime (CPU) on given inputs and writes their outputs; optionally
// times each run. gos uses it as the independent check of the models it exports and, later, to
// measure them (src/graph/ort_runner.h drives it). One process serves many models, so the
// start-up cost is paid once.
//
//   node run.js MANIFEST.json [--threads N] [--bench] [--warmup W] [--repeat R]
//   node run.js --version
//
// MANIFEST.json (paths relative to the manifest's folder):
//   { "threads": 1,                                   intra-op threads (default 1)
//     "bench": { "warmup": 5, "repeat": 30,            optional: time every run: `repeat`
//                "budget_ms": 1000, "max_repeat": 2000,  runs, then more until the budget is
//                                                      spent (at most `max_repeat` runs in all)
//                "profile": false },                   true: also time the kernels inside each
//                                                      run with ONNX Runtime's profiler
//     "result": "result.json",                         default: result.json beside the manifest
//     "runs": [ { "model": "m.onnx",
//                 "inputs": [ { "name": "x", "shape": [1, 3], "file": "x.bin" } ],
//                 "output_dir": "out0" } ] }
// Tensors are raw little-endian float32 files, row-major. The result lists, per run, either
//   { "outputs": [ { "name", "shape", "file" } ], "timing_ms": { "median", "p10", "p90", ... },
//     "kernel_ms": { ... }, "layout_ms": { ... }, "quantize_ms": { ... } }   (with "profile":
//   each timed run's node kernels summed, and apart from them the layout reorders ONNX Runtime
//   adds around them and the QuantizeLinear/DequantizeLinear kernels)
// or { "error": "message" }, plus "onnxruntime" (the version). Exit status: 0 when every run
// succeeded, 1 when some failed (the result says which), 2 for bad usage or an unreadable manifest.
'use strict';

const fs = require('fs');
const path = require('path');

function usage(message) {
  if (message) process.stderr.write(`run.js: ${message}\n`);
  process.stderr.write('usage: node run.js MANIFEST.json [--threads N] [--bench] [--warmup W] [--repeat R]\n' +
                       '       node run.js --version\n');
  process.exit(2);
}

function loadRuntime() {
  try {
    return require('onnxruntime-node');
  } catch (error) {
    process.stderr.write(`run.js: onnxruntime-node is not installed in ${__dirname} (run make setup): ${error.message}\n`);
    process.exit(2);
  }
}

function runtimeVersion() {
  return require('onnxruntime-node/package.json').version;
}

function nonNegativeInteger(text, flag) {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) usage(`${flag} needs a non-negative integer, got '${text}'`);
  return value;
}

function parseArguments(argv) {
  const options = { manifest: null, threads: null, bench: null };
  const bench = () => (options.bench = options.bench || {});
  for (let i = 0; i < argv.length; ++i) {
    const argument = argv[i];
    const next = () => (i + 1 < argv.length ? argv[++i] : usage(`${argument} needs a value`));
    if (argument === '--version') {
      loadRuntime();
      process.stdout.write(`${runtimeVersion()}\n`);
      process.exit(0);
    } else if (argument === '--help' || argument === '-h') {
      usage();
    } else if (argument === '--threads') {
      options.threads = nonNegativeInteger(next(), argument);
    } else if (argument === '--bench') {
      bench();
    } else if (argument === '--warmup') {
      bench().warmup = nonNegativeInteger(next(), argument);
    } else if (argument === '--repeat') {
      bench().repeat = nonNegativeInteger(next(), argument);
    } else if (argument.startsWith('-')) {
      usage(`unknown option ${argument}`);
    } else if (options.manifest === null) {
      options.manifest = argument;
    } else {
      usage(`unexpected argument ${argument}`);
    }
  }
  if (options.manifest === null) usage('no manifest given');
  return options;
}

function readManifest(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    usage(`cannot read manifest ${file}: ${error.message}`);
  }
}

function elementCount(shape) {
  return shape.reduce((count, extent) => count * extent, 1);
}

function readInput(ort, input, folder) {
  const bytes = fs.readFileSync(path.resolve(folder, input.file));
  const expected = elementCount(input.shape) * 4;
  if (bytes.length !== expected) {
    throw new Error(`input ${input.name}: ${input.file} holds ${bytes.length} bytes; shape [${input.shape}] needs ${expected}`);
  }
  const data = new Float32Array(new Uint8Array(bytes).buffer);  // a copy, so the floats are aligned
  return new ort.Tensor('float32', data, input.shape);
}

function asFloat32(tensor) {
  if (tensor.type === 'float32') return tensor.data;
  return Float32Array.from(tensor.data, (value) => Number(value));
}

// Nearest ranks interpolated: the q-quantile of sorted times.
function quantile(sorted, q) {
  const position = q * (sorted.length - 1);
  const low = Math.floor(position);
  const high = Math.min(low + 1, sorted.length - 1);
  return sorted[low] + (sorted[high] - sorted[low]) * (position - low);
}

function summarise(times, warmup) {
  times.sort((a, b) => a - b);
  return {
    warmup, repeat: times.length,
    median: quantile(times, 0.5), p10: quantile(times, 0.1), p90: quantile(times, 0.9),
    min: times[0], max: times[times.length - 1],
    mean: times.reduce((sum, t) => sum + t, 0) / times.length,
  };
}

// The nodes ONNX Runtime's NCHWc layout transformer adds: a convolution runs in blocked
// channels, reordered into them before and out of them after a chain of such convolutions. A
// lone convolution pays both reorders; inside a model, a chain pays them once at its ends. The
// same holds for an int8 operator's QuantizeLinear and DequantizeLinear: inside a model, int8
// operators hand each other quantized tensors.
const kLayoutOps = new Set(['ReorderInput', 'ReorderOutput']);
// The conversions at the ends of a QDQ model's int8 values, which a kernel fused in a model does
// without, and a layer kept in fp32 inside an int8 model pays.
const kQuantizeOps = new Set(['QuantizeLinear', 'DequantizeLinear']);

// From ONNX Runtime's profile (a Chrome trace, microseconds): the time each of the last `count`
// runs spent in node kernels, the operators' own (`kernels`) and the layout reorders around them
// (`layout`). That is the operators' time without the tens of microseconds every session.run
// costs in Node.js and in the session around the kernels, which would otherwise swamp the
// operators gos times one at a time.
function kernelTimes(trace, count) {
  const runs = trace.filter((event) => event.name === 'model_run').sort((a, b) => a.ts - b.ts).slice(-count);
  const kernels = trace.filter((event) => event.cat === 'Node' && event.name.endsWith('_kernel_time'))
    .sort((a, b) => a.ts - b.ts);
  const totals = { kernels: runs.map(() => 0), layout: runs.map(() => 0), quantize: runs.map(() => 0) };
  let run = 0;
  for (const kernel of kernels) {
    while (run < runs.length && kernel.ts > runs[run].ts + runs[run].dur) ++run;
    if (run === runs.length) break;
    if (kernel.ts < runs[run].ts) continue;
    const op = kernel.args && kernel.args.op_name;
    const bucket = kLayoutOps.has(op) ? totals.layout : kQuantizeOps.has(op) ? totals.quantize : totals.kernels;
    bucket[run] += kernel.dur / 1000;
  }
  return totals;
}

function readProfile(file) {
  const trace = JSON.parse(fs.readFileSync(file, 'utf8'));
  fs.rmSync(file, { force: true });
  return trace;
}

// `repeat` runs, then more until `budget_ms` is spent (at most `max_repeat` in all).
async function time(session, feeds, bench) {
  const warmup = bench.warmup ?? 5;
  const repeat = Math.max(1, bench.repeat ?? 30);
  const budgetMs = bench.budget_ms ?? 0;
  const maxRepeat = bench.max_repeat > 0 ? bench.max_repeat : Infinity;
  for (let i = 0; i < warmup; ++i) await session.run(feeds);
  const times = [];
  const begin = process.hrtime.bigint();
  const spentMs = () => Number(process.hrtime.bigint() - begin) / 1e6;
  while (times.length < repeat || (times.length < maxRepeat && spentMs() < budgetMs)) {
    const start = process.hrtime.bigint();
    await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return summarise(times, warmup);
}

async function runOne(ort, run, index, folder, settings) {
  const profiled = Boolean(settings.bench && settings.bench.profile);
  const profilePrefix = path.join(folder, `profile_${index}`);
  const session = await ort.InferenceSession.create(path.resolve(folder, run.model), {
    executionProviders: ['cpu'],
    intraOpNumThreads: settings.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    ...(profiled ? { enableProfiling: true, profileFilePrefix: profilePrefix } : {}),
  });
  const feeds = {};
  for (const input of run.inputs || []) feeds[input.name] = readInput(ort, input, folder);
  const results = await session.run(feeds);
  const outputDir = path.resolve(folder, run.output_dir || `outputs_${index}`);
  fs.mkdirSync(outputDir, { recursive: true });
  const outputs = session.outputNames.map((name, position) => {
    const file = path.join(outputDir, `${position}.bin`);
    const data = asFloat32(results[name]);
    fs.writeFileSync(file, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    return { name, shape: results[name].dims.map(Number), file };
  });
  const result = { model: run.model, outputs };
  if (settings.bench) result.timing_ms = await time(session, feeds, settings.bench);
  if (profiled) {
    session.endProfiling();  // writes PREFIX_<date>.json and returns nothing, so look for it
    const name = fs.readdirSync(folder).find((file) => file.startsWith(`${path.basename(profilePrefix)}_`));
    if (!name) throw new Error('ONNX Runtime wrote no profile');
    const trace = readProfile(path.join(folder, name));
    const times = kernelTimes(trace, result.timing_ms.repeat);
    result.kernel_ms = summarise(times.kernels, result.timing_ms.warmup);
    result.layout_ms = summarise(times.layout, result.timing_ms.warmup);
    result.quantize_ms = summarise(times.quantize, result.timing_ms.warmup);
  }
  if (session.release) await session.release();
  return result;
}

async function main() {
  const options = parseArguments(process.argv.slice(2));
  const manifest = readManifest(options.manifest);
  const ort = loadRuntime();
  const folder = path.dirname(path.resolve(options.manifest));
  const settings = {
    threads: options.threads ?? manifest.threads ?? 1,
    bench: options.bench ? { ...(manifest.bench || {}), ...options.bench } : manifest.bench || null,
  };
  if (!Array.isArray(manifest.runs)) usage(`manifest ${options.manifest} has no "runs" list`);
  const runs = [];
  for (const [index, run] of manifest.runs.entries()) {
    try {
      runs.push(await runOne(ort, run, index, folder, settings));
    } catch (error) {
      runs.push({ model: run.model, error: String(error && error.message ? error.message : error) });
    }
  }
  const result = { onnxruntime: runtimeVersion(), threads: settings.threads, runs };
  fs.writeFileSync(path.resolve(folder, manifest.result || 'result.json'), JSON.stringify(result, null, 1));
  process.exit(runs.some((run) => run.error) ? 1 : 0);
}

main().catch((error) => {
  process.stderr.write(`run.js: ${error && error.stack ? error.stack : error}\n`);
  process.exit(3);
});
