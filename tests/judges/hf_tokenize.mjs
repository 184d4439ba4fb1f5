// Hugging Face's tokenizer.json semantics (@huggingface/tokenizers, pure JS):
//   node hf_tokenize.mjs TOKENIZER_JSON UNITS.json OUT.json
// UNITS.json is a JSON array of strings; OUT.json gets one array of ids per
// string, encoded without special tokens (add_special_tokens: false).
// tokenizer_config.json beside TOKENIZER_JSON is read when present.
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";

const [tokenizerPath, unitsPath, outPath] = process.argv.slice(2);
const json = JSON.parse(readFileSync(tokenizerPath, "utf8"));
const configPath = join(dirname(tokenizerPath), "tokenizer_config.json");
const config = existsSync(configPath) ? JSON.parse(readFileSync(configPath, "utf8")) : {};
const tokenizer = new Tokenizer(json, config);
const units = JSON.parse(readFileSync(unitsPath, "utf8"));
const out = units.map((u) => Array.from(tokenizer.encode(u, { add_special_tokens: false }).ids));
writeFileSync(outPath, JSON.stringify(out));
