// ocr_cer.mjs MODEL.onnx DICT IMAGES_DIR [--threads N] [--predictions OUT.json]
//             [--outputs OUT.f32] [--optimization all|extended|basic|disabled]
//
// ONNX Runtime (onnxruntime-node's prebuilt CPU build) as a judge: runs a
// PaddleOCR text recognizer (PP-OCRv4 rec, CTC head) on the labelled lines of
// IMAGES_DIR/manifest.json (scripts/ocr_render.py: {"lines": [{"image":
// "NNNN.pgm", "text": ...}]}, binary greyscale PGM images) and prints one line
// of JSON: {cer, lines, chars, edits, exact_lines, seconds}. --outputs writes
// the model's raw outputs, every line's float32 probabilities one after the
// other (little-endian), for comparing two models (tests/nn/test_onnx_qdq.py);
// --optimization sets ONNX Runtime's graph optimization level (default all).
//
// The steps follow PaddleOCR's recognizer (tools/infer/predict_rec.py,
// resize_norm_img, and ppocr/postprocess/rec_postprocess.py, CTCLabelDecode),
// one line a batch:
//   1. resize to height 48 keeping the aspect ratio: width ceil(48·w/h),
//      bilinear with half-pixel centres (cv2.INTER_LINEAR; the identity for
//      the 48-pixel images ocr_render.py draws);
//   2. normalise each pixel to (x/255 - 0.5)/0.5 in all 3 channels (grey, so
//      BGR and RGB are the same), CHW float32;
//   3. pad on the right with zeros (after normalisation, as PaddleOCR does) to
//      the width max(320, floor(48·w/h)), 320 being rec_image_shape's width;
//   4. CTC greedy decoding: argmax over the classes at each time step, merge
//      repeats, drop the blank (index 0); class i > 0 is character i - 1 of
//      DICT (one a line), and the class after the last one is the space
//      (use_space_char=True);
//   5. CER = Σ Levenshtein(prediction, truth) / Σ |truth| over all lines, in
//      Unicode code points (spaces included).
import fs from "node:fs";
import path from "node:path";
import process from "node:process";

import ort from "onnxruntime-node";

const HEIGHT = 48;
const MIN_WIDTH = 320;

function usage(message) {
  if (message) process.stderr.write(`ocr_cer.mjs: ${message}\n`);
  process.stderr.write(
    "usage: node ocr_cer.mjs MODEL.onnx DICT IMAGES_DIR [--threads N] [--predictions OUT.json] " +
      "[--outputs OUT.f32] [--optimization all|extended|basic|disabled]\n",
  );
  process.exit(2);
}

function parseArgs(argv) {
  const positional = [];
  const opts = { threads: 1, predictions: null, outputs: null, optimization: "all" };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    if (a === "--threads" && i + 1 < argv.length) {
      opts.threads = Number.parseInt(argv[++i], 10);
      if (!(opts.threads >= 1)) usage("--threads: expected a positive integer");
    } else if (a === "--predictions" && i + 1 < argv.length) {
      opts.predictions = argv[++i];
    } else if (a === "--outputs" && i + 1 < argv.length) {
      opts.outputs = argv[++i];
    } else if (a === "--optimization" && i + 1 < argv.length) {
      opts.optimization = argv[++i];
      if (!["all", "extended", "basic", "disabled"].includes(opts.optimization)) {
        usage("--optimization: expected all, extended, basic or disabled");
      }
    } else if (a.startsWith("--")) {
      usage(`unknown option or missing value: ${a}`);
    } else {
      positional.push(a);
    }
  }
  if (positional.length !== 3) usage();
  [opts.model, opts.dict, opts.dir] = positional;
  return opts;
}

// Binary PGM (P5, maxval < 256): {width, height, pixels: Uint8Array}.
function readPgm(file) {
  const bytes = fs.readFileSync(file);
  const fields = [];
  let i = 0;
  while (fields.length < 4) {
    while (i < bytes.length && /\s/.test(String.fromCharCode(bytes[i]))) ++i;
    if (bytes[i] === 0x23) {  // '#' comment to end of line
      while (i < bytes.length && bytes[i] !== 0x0a) ++i;
      continue;
    }
    let start = i;
    while (i < bytes.length && !/\s/.test(String.fromCharCode(bytes[i]))) ++i;
    if (start === i) throw new Error(`${file}: truncated PGM header`);
    fields.push(bytes.subarray(start, i).toString("ascii"));
  }
  ++i;  // the single whitespace byte after maxval
  const [magic, w, h, max] = [fields[0], Number(fields[1]), Number(fields[2]), Number(fields[3])];
  if (magic !== "P5" || !(w > 0 && h > 0) || !(max > 0 && max < 256)) {
    throw new Error(`${file}: not an 8-bit binary PGM`);
  }
  if (bytes.length - i < w * h) throw new Error(`${file}: truncated pixel data`);
  return { width: w, height: h, pixels: bytes.subarray(i, i + w * h) };
}

// Steps 1-3: the [1, 3, 48, W] input tensor.
function preprocess(image) {
  const ratio = image.width / image.height;
  const resizedW = Math.ceil(HEIGHT * ratio);
  const width = Math.max(MIN_WIDTH, Math.floor(HEIGHT * ratio), resizedW);
  const plane = HEIGHT * width;
  const data = new Float32Array(3 * plane);  // zero: the padding
  const sx = image.width / resizedW;
  const sy = image.height / HEIGHT;
  const at = (x, y) => image.pixels[y * image.width + x];
  for (let y = 0; y < HEIGHT; ++y) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), image.height - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, image.height - 1);
    const wy = fy - y0;
    for (let x = 0; x < resizedW; ++x) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), image.width - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, image.width - 1);
      const wx = fx - x0;
      const v = (1 - wy) * ((1 - wx) * at(x0, y0) + wx * at(x1, y0)) +
                wy * ((1 - wx) * at(x0, y1) + wx * at(x1, y1));
      const n = (v / 255 - 0.5) / 0.5;
      for (let c = 0; c < 3; ++c) data[c * plane + y * width + x] = n;
    }
  }
  return new ort.Tensor("float32", data, [1, 3, HEIGHT, width]);
}

// Step 4: probabilities [1, T, C] -> text.
function ctcDecode(output, characters) {
  const [, steps, classes] = output.dims;
  if (classes !== characters.length + 1) {
    throw new Error(`model has ${classes} classes, dictionary + space ${characters.length} + blank`);
  }
  const p = output.data;
  let text = "";
  let previous = -1;
  for (let t = 0; t < steps; ++t) {
    let best = 0;
    for (let c = 1; c < classes; ++c) if (p[t * classes + c] > p[t * classes + best]) best = c;
    if (best !== 0 && best !== previous) text += characters[best - 1];
    previous = best;
  }
  return text;
}

function levenshtein(a, b) {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; ++i) {
    const next = [i];
    for (let j = 1; j <= b.length; ++j) {
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length];
}

const opts = parseArgs(process.argv.slice(2));
// PaddleOCR's dictionary reader strips each line's "\n" / "\r\n"; the file has
// no final newline, so splitting on "\n" gives exactly its characters.
const characters = fs.readFileSync(opts.dict, "utf8").split("\n").map((l) => l.replace(/\r$/, ""));
if (characters.at(-1) === "") characters.pop();
characters.push(" ");
const manifest = JSON.parse(fs.readFileSync(path.join(opts.dir, "manifest.json"), "utf8"));

const session = await ort.InferenceSession.create(opts.model, {
  intraOpNumThreads: opts.threads,
  interOpNumThreads: 1,
  executionMode: "sequential",
  graphOptimizationLevel: opts.optimization,
});
const [inputName] = session.inputNames;
const [outputName] = session.outputNames;

const start = process.hrtime.bigint();
let chars = 0;
let edits = 0;
let exact = 0;
const predictions = [];
const outputs = opts.outputs ? fs.openSync(opts.outputs, "w") : null;
for (const line of manifest.lines) {
  const input = preprocess(readPgm(path.join(opts.dir, line.image)));
  const result = await session.run({ [inputName]: input });
  const text = ctcDecode(result[outputName], characters);
  if (outputs !== null) {
    const data = result[outputName].data;
    fs.writeSync(outputs, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  const truth = Array.from(line.text);
  const e = levenshtein(Array.from(text), truth);
  chars += truth.length;
  edits += e;
  if (e === 0) ++exact;
  predictions.push({ image: line.image, text: line.text, prediction: text, edits: e });
}
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
if (outputs !== null) fs.closeSync(outputs);
if (opts.predictions) fs.writeFileSync(opts.predictions, JSON.stringify(predictions, null, 1) + "\n");
process.stdout.write(JSON.stringify({
  cer: chars ? edits / chars : 0,
  lines: manifest.lines.length,
  chars,
  edits,
  exact_lines: exact,
  seconds: Math.round(seconds * 100) / 100,
}) + "\n");
