// node llama_bench.mjs MODEL.gguf THREADS [PROMPT=128] [DECODE=32] [REPS=3]
// llama.cpp's (node-llama-cpp's prebuilt CPU build) prompt processing and
// token-by-token decode speed on a GGUF, measured like `lowp bench llama`: the
// same prompt token ids ((i * 7919 + 13) % vocab), one batch for the prompt,
// then DECODE single-token evaluations; the first round warms up and the
// median of the others is printed as JSON {pp, tg} in tokens/s (and the
// rounds). Used by scripts/bench-llama.sh.
import {getLlama} from "node-llama-cpp";

const [gguf, threadsArg, promptArg, decodeArg, repsArg] = process.argv.slice(2);
if (!gguf || !threadsArg) {
  console.error("usage: node llama_bench.mjs MODEL.gguf THREADS [PROMPT] [DECODE] [REPS]");
  process.exit(2);
}
const threads = Number(threadsArg);
const promptLength = Number(promptArg ?? 128), decode = Number(decodeArg ?? 32);
const reps = Number(repsArg ?? 3);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath: gguf});
const vocab = model.fileInsights?.vocabularySize ?? 32000;
const ctx = await model.createContext({
  contextSize: Math.max(512, promptLength + decode + 8), threads, batchSize: Math.max(512, promptLength)});
const prompt = Array.from({length: promptLength}, (_, i) => (i * 7919 + 13) % vocab);
const seq = ctx.getSequence();
const pp = [], tg = [];
for (let r = 0; r < reps + 1; r++) {
  await seq.clearHistory();
  const t0 = performance.now();
  await seq.controlledEvaluate(
      prompt.map((t, i) => (i === prompt.length - 1 ? [t, {generateNext: {token: true}}] : t)));
  const t1 = performance.now();
  let token = 5;
  for (let i = 0; i < decode; i++) {
    const res = await seq.controlledEvaluate([[token, {generateNext: {token: true}}]]);
    token = res[0]?.next?.token ?? 5;
  }
  const t2 = performance.now();
  if (r > 0) {
    pp.push(promptLength / ((t1 - t0) / 1e3));
    tg.push(decode / ((t2 - t1) / 1e3));
  }
}
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
console.log(JSON.stringify({pp: median(pp), tg: median(tg), pp_rounds: pp, tg_rounds: tg}));
await ctx.dispose();
await model.dispose();
await llama.dispose();
