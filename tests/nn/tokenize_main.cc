// lowp_tokenize — the tokenizer as the judge tests (tests/nn/test_tokenizers.py)
// drive it:
//
//   lowp_tokenize encode TOKENIZER UNITS.json OUT.json
//       TOKENIZER: a tokenizer.json, a directory or a .gguf file; UNITS.json a
//       JSON array of strings; OUT.json gets one array of ids per string
//       (encode(text, add_special=false)).
//   lowp_tokenize gguf TOKENIZER OUT.gguf
//       a vocabulary-only GGUF (to_gguf_kv plus the few llama.* keys llama.cpp
//       reads before it loads a vocabulary) that llama.cpp can load with
//       vocab_only.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "lowp/error.h"
#include "lowp/io/gguf.h"
#include "lowp/nn/tokenizer.h"

namespace {

lowp::nn::Tokenizer load(const std::filesystem::path& p) {
  if (p.extension() == ".gguf") return lowp::nn::Tokenizer::from_gguf(*lowp::io::open_model(p));
  if (std::filesystem::is_directory(p)) return lowp::nn::Tokenizer::from_directory(p);
  return lowp::nn::Tokenizer::from_hf_json(p);
}

void write_vocab_gguf(const lowp::nn::Tokenizer& tok, const std::filesystem::path& out) {
  using lowp::io::GgufValue;
  std::vector<lowp::io::GgufKv> kv;
  kv.emplace_back("general.architecture", GgufValue::string("llama"));
  kv.emplace_back("general.name", GgufValue::string("lowp vocabulary"));
  kv.emplace_back("llama.context_length", GgufValue::u32(4096));
  kv.emplace_back("llama.embedding_length", GgufValue::u32(64));
  kv.emplace_back("llama.block_count", GgufValue::u32(1));
  kv.emplace_back("llama.feed_forward_length", GgufValue::u32(128));
  kv.emplace_back("llama.attention.head_count", GgufValue::u32(1));
  kv.emplace_back("llama.attention.head_count_kv", GgufValue::u32(1));
  kv.emplace_back("llama.attention.layer_norm_rms_epsilon", GgufValue::f32(1e-5f));
  kv.emplace_back("llama.rope.dimension_count", GgufValue::u32(64));
  kv.emplace_back("llama.vocab_size", GgufValue::u32(static_cast<std::uint32_t>(tok.vocab_size())));
  tok.to_gguf_kv(kv);
  lowp::io::write_gguf(out, kv, {}, [](std::size_t) { return std::vector<std::byte>(); });
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string cmd = argc > 1 ? argv[1] : "";
    if (cmd == "encode" && argc == 5) {
      const auto tok = load(argv[2]);
      std::ifstream in(argv[3], std::ios::binary);
      std::stringstream s;
      s << in.rdbuf();
      const auto units = nlohmann::json::parse(s.str());
      nlohmann::json out = nlohmann::json::array();
      for (const auto& u : units) out.push_back(tok.encode(u.get<std::string>()));
      std::ofstream(argv[4]) << out.dump();
      return 0;
    }
    if (cmd == "gguf" && argc == 4) {
      write_vocab_gguf(load(argv[2]), argv[3]);
      return 0;
    }
    std::fprintf(stderr,
                 "usage: lowp_tokenize encode TOKENIZER UNITS.json OUT.json\n"
                 "       lowp_tokenize gguf TOKENIZER OUT.gguf\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lowp_tokenize: %s\n", e.what());
    return 1;
  }
}
