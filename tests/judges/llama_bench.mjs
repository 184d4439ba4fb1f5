// llama_bench.mjs GGUF --threads N [--prompt 128] [--decode 64] [--repetitions 5]
//                               [--kv-type f16|f32] [--flash-attention]
//
// llama.cpp's speed on this machine (node-llama-cpp's prebuilt CPU build), as
// the yardstick for lowp's runtime:
// - prompt processing: tokens/s of one batch of --prompt tokens into an empty
//   sequence (logits of the last position only, as llama-bench's pp test);
// - decode: tokens/s of --decode single-token evaluations after the prompt,
//   each producing the next token's logits and a greedy pick (tg test).
// Each is the median over --repetitions runs after one warm-up run; the
// sequence is cleared between runs. The KV cache is llama.cpp's default F16
// unless --kv-type f32. Prints one line of JSON.
import process from "node:process";

import { getLlama, LlamaLogLevel } from "node-llama-cpp";

function usage(message) {
  if (message) process.stderr.write(`llama_bench.mjs: ${message}\n`);
  process.stderr.write(
    "usage: node llama_bench.mjs GGUF --threads N [--prompt 128] [--decode 64] " +
      "[--repetitions 5] [--kv-type f16|f32] [--flash-attention]\n",
  );
  process.exit(2);
}

function positiveInt(option, text) {
  const v = Number.parseInt(text, 10);
  if (!(v >= 1) || String(v) !== text) usage(`${option}: expected a positive integer`);
  return v;
}

function parseArgs(argv) {
  const positional = [];
  const opts = { threads: null, prompt: 128, decode: 64, repetitions: 5, kvType: "F16",
                 flashAttention: false };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const value = i + 1 < argv.length;
    if (a === "--threads" && value) opts.threads = positiveInt(a, argv[++i]);
    else if (a === "--prompt" && value) opts.prompt = positiveInt(a, argv[++i]);
    else if (a === "--decode" && value) opts.decode = positiveInt(a, argv[++i]);
    else if (a === "--repetitions" && value) opts.repetitions = positiveInt(a, argv[++i]);
    else if (a === "--kv-type" && value) {
      opts.kvType = argv[++i].toUpperCase();
      if (opts.kvType !== "F32" && opts.kvType !== "F16") usage("--kv-type: f32 or f16");
    } else if (a === "--flash-attention") opts.flashAttention = true;
    else if (a.startsWith("--")) usage(`unknown option or missing value: ${a}`);
    else positional.push(a);
  }
  if (positional.length !== 1 || opts.threads === null) usage();
  return { gguf: positional[0], ...opts };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: args.gguf, gpuLayers: 0 });
  const nVocab = model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length ?? 256;
  const context = await model.createContext({
    contextSize: args.prompt + args.decode + 1,
    batchSize: args.prompt,
    sequences: 1,
    threads: args.threads,
    flashAttention: args.flashAttention,
    experimentalKvCacheKeyType: args.kvType,
    experimentalKvCacheValueType: args.kvType,
  });
  const sequence = context.getSequence();
  // Fixed pseudo-random ids (a linear congruential sequence), all in the vocabulary.
  let state = 12345;
  const nextId = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state % nVocab;
  };
  const prompt = Array.from({ length: args.prompt }, nextId);
  const decode = Array.from({ length: args.decode }, nextId);
  const greedy = { generateNext: { token: true, options: { temperature: 0 } } };

  const pp = [], tg = [];
  for (let r = 0; r <= args.repetitions; ++r) {
    await sequence.clearHistory();
    const items = prompt.map((t, i) => (i + 1 === prompt.length ? [t, greedy] : t));
    let t0 = performance.now();
    await sequence.controlledEvaluate(items);
    const ppMs = performance.now() - t0;
    t0 = performance.now();
    for (const t of decode) await sequence.controlledEvaluate([[t, greedy]]);
    const tgMs = performance.now() - t0;
    if (sequence.nextTokenIndex !== args.prompt + args.decode) {
      throw new Error(`sequence holds ${sequence.nextTokenIndex} tokens, expected ` +
                      `${args.prompt + args.decode}`);
    }
    if (r > 0) {  // run 0 warms up
      pp.push(args.prompt / (ppMs / 1000));
      tg.push(args.decode / (tgMs / 1000));
    }
  }
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  process.stdout.write(JSON.stringify({
    model: args.gguf,
    threads: args.threads,
    kv_type: args.kvType,
    flash_attention: args.flashAttention,
    prompt_tokens: args.prompt,
    decode_tokens: args.decode,
    repetitions: args.repetitions,
    prompt_tokens_per_s: median(pp),
    decode_tokens_per_s: median(tg),
    prompt_tokens_per_s_all: pp,
    decode_tokens_per_s_all: tg,
  }) + "\n");
}

main().catch((e) => {
  process.stderr.write(`llama_bench.mjs: ${e?.stack ?? e}\n`);
  process.exit(1);
});
