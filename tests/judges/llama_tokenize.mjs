// llama.cpp's tokenizer (node-llama-cpp's prebuilt CPU build), vocabulary only:
//   node llama_tokenize.mjs MODEL.gguf UNITS.json OUT.json
// UNITS.json is a JSON array of strings; OUT.json gets one array of ids per
// string: llama_tokenize with parse_special (control and user-defined tokens
// in the text are matched) and no BOS/EOS.
import { readFileSync, writeFileSync } from "node:fs";
import { getLlama } from "node-llama-cpp";

const [modelPath, unitsPath, outPath] = process.argv.slice(2);
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const model = await llama.loadModel({ modelPath, vocabOnly: true });
const units = JSON.parse(readFileSync(unitsPath, "utf8"));
const out = units.map((u) => Array.from(model.tokenize(u, true)));
writeFileSync(outPath, JSON.stringify(out));
await model.dispose();
await llama.dispose();
