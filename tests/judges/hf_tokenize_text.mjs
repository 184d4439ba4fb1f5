// Encodes a text file with Hugging Face's tokenizer.json semantics
// (@huggingface/tokenizers, pure JS) and prints the ids as JSON on stdout.
//
//   node tests/judges/hf_tokenize_text.mjs MODEL_DIR TEXT_FILE [--special]
//
// MODEL_DIR holds tokenizer.json and tokenizer_config.json. Without --special
// the ids are those of the text alone (add_special_tokens false); with it the
// post-processor runs (e.g. a BOS in front). Also checks that decoding the ids
// gives the text back, exiting 1 if not.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";

const [dir, textFile, flag] = process.argv.slice(2);
if (!dir || !textFile) {
  console.error("usage: hf_tokenize_text.mjs MODEL_DIR TEXT_FILE [--special]");
  process.exit(2);
}
const json = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"));
const config = JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8"));
const tok = new Tokenizer(json, config);
const text = readFileSync(textFile, "utf8");
const special = flag === "--special";
const { ids } = tok.encode(text, { add_special_tokens: special });
const back = tok.decode(ids, { skip_special_tokens: true });
if (back !== text) {
  console.error("hf_tokenize_text: decode(encode(text)) differs from the text");
  process.exit(1);
}
process.stdout.write(JSON.stringify(ids) + "\n");
