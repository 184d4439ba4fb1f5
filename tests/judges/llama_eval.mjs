// llama_eval.mjs GGUF TOKENS.json OUT.f32 [--threads N] [--kv-type f32|f16] [--flash-attention]
//                                        [--text FILE]
//
// llama.cpp (node-llama-cpp's prebuilt CPU build) as a judge: evaluates the
// exact token ids of TOKENS.json (a JSON array of ints) as one sequence and
// writes, for every position i, llama.cpp's full next-token probability
// distribution after tokens[0..i]: float32 little-endian, [n, n_vocab]
// row-major. Prints one line of JSON: n_tokens, n_vocab, timings.
//
// With --text FILE, the ids are instead llama.cpp's tokenization of FILE
// (no BOS, no special tokens), and TOKENS.json is written with them.
//
// What is done to keep llama.cpp's answer a plain forward pass:
// - controlledEvaluate takes ids as given: no BOS is added (checked below:
//   the sequence holds exactly n tokens afterwards);
// - the probabilities come from node-llama-cpp's sampleToken with
//   temperature 0, which builds a greedy-only chain (no top-k, top-p, min-p,
//   repeat penalty or temperature on the candidates) and then takes
//   softmax(logits) over all n_vocab candidates in float (checked below: each
//   row has n_vocab entries summing to 1);
// - the KV cache is F32 (llama.cpp's default is F16; --kv-type f16 gives
//   that) and flash attention is off unless --flash-attention;
// - the context holds all n tokens and the batch is n tokens, so there is no
//   context shift and the prompt goes through in one batch.
import fs from "node:fs";
import process from "node:process";

import { getLlama, LlamaLogLevel } from "node-llama-cpp";

function usage(message) {
  if (message) process.stderr.write(`llama_eval.mjs: ${message}\n`);
  process.stderr.write(
    "usage: node llama_eval.mjs GGUF TOKENS.json OUT.f32 [--threads N] [--kv-type f32|f16] " +
      "[--flash-attention] [--text FILE]\n",
  );
  process.exit(2);
}

function parseArgs(argv) {
  const positional = [];
  const opts = { threads: 1, kvType: "F32", flashAttention: false, text: null };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    if (a === "--threads" && i + 1 < argv.length) {
      opts.threads = Number.parseInt(argv[++i], 10);
      if (!(opts.threads >= 1)) usage(`--threads: expected a positive integer`);
    } else if (a === "--kv-type" && i + 1 < argv.length) {
      opts.kvType = argv[++i].toUpperCase();
      if (opts.kvType !== "F32" && opts.kvType !== "F16") usage("--kv-type: f32 or f16");
    } else if (a === "--flash-attention") {
      opts.flashAttention = true;
    } else if (a === "--text" && i + 1 < argv.length) {
      opts.text = argv[++i];
    } else if (a.startsWith("--")) {
      usage(`unknown option or missing value: ${a}`);
    } else {
      positional.push(a);
    }
  }
  if (positional.length !== 3) usage();
  return { gguf: positional[0], tokensPath: positional[1], out: positional[2], ...opts };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: args.gguf, gpuLayers: 0 });
  // The vocabulary as the file lists it (every row must cover all of it).
  const nVocab = model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length;
  if (!(nVocab > 0)) throw new Error(`${args.gguf}: no tokenizer.ggml.tokens`);
  let tokens;
  if (args.text !== null) {
    tokens = Array.from(model.tokenize(fs.readFileSync(args.text, "utf8"), false));
    fs.writeFileSync(args.tokensPath, JSON.stringify(tokens));
  } else {
    tokens = JSON.parse(fs.readFileSync(args.tokensPath, "utf8"));
  }
  if (!Array.isArray(tokens) || tokens.length === 0 ||
      !tokens.every((t) => Number.isInteger(t) && t >= 0)) {
    throw new Error(`${args.tokensPath}: expected a non-empty JSON array of token ids`);
  }
  const n = tokens.length;
  const loadMs = performance.now() - t0;

  // The context must hold one more than n: a sequence that fills its context
  // is shifted (half of it dropped) by node-llama-cpp.
  const context = await model.createContext({
    contextSize: n + 1,
    batchSize: n,
    sequences: 1,
    threads: args.threads,
    flashAttention: args.flashAttention,
    experimentalKvCacheKeyType: args.kvType,
    experimentalKvCacheValueType: args.kvType,
  });
  const contextSize = context.contextSize;
  const sequence = context.getSequence();
  const items = tokens.map((t) => [t, { generateNext: { probabilities: true, options: { temperature: 0 } } }]);
  const t1 = performance.now();
  const results = await sequence.controlledEvaluate(items);
  const evalMs = performance.now() - t1;
  if (sequence.nextTokenIndex !== n) {
    throw new Error(`llama.cpp holds ${sequence.nextTokenIndex} tokens after evaluating ${n} ` +
                    "(a BOS or other token was added)");
  }

  const out = new Float32Array(n * nVocab);
  let worstSum = 0;
  for (let i = 0; i < n; ++i) {
    const probs = results[i]?.next?.probabilities;
    if (!probs) throw new Error(`position ${i}: llama.cpp returned no probabilities`);
    if (probs.size !== nVocab) {
      throw new Error(`position ${i}: ${probs.size} probabilities for a vocabulary of ${nVocab} ` +
                      "(the distribution was truncated)");
    }
    let sum = 0;
    const row = out.subarray(i * nVocab, (i + 1) * nVocab);
    for (const [token, p] of probs) {
      row[token] = p;
      sum += p;
    }
    worstSum = Math.max(worstSum, Math.abs(sum - 1));
  }
  if (worstSum > 1e-4) throw new Error(`probabilities sum to 1 +- ${worstSum}`);
  fs.writeFileSync(args.out, Buffer.from(out.buffer, out.byteOffset, out.byteLength));

  await context.dispose();
  await model.dispose();
  await llama.dispose();
  process.stdout.write(JSON.stringify({
    n_tokens: n,
    n_vocab: nVocab,
    threads: args.threads,
    kv_type: args.kvType,
    flash_attention: args.flashAttention,
    context_size: contextSize,
    max_abs_sum_error: worstSum,
    load_ms: loadMs,
    eval_ms: evalMs,
  }) + "\n");
}

main().catch((e) => {
  process.stderr.write(`llama_eval.mjs: ${e?.stack ?? e}\n`);
  process.exit(1);
});
