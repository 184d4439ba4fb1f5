// src/nn/tokenizer_hf.cc — Hugging Face tokenizer.json (the `tokenizers`
// library's serialization: model, added_tokens, normalizer, pre_tokenizer,
// post_processor) and tokenizer_config.json (bos/eos, add_bos_token).
//
// Supported: model.type "BPE" (merges as "a b" or ["a", "b"], ignore_merges,
// byte_fallback, unk_token, fuse_unk); normalizers NFC, Prepend, Replace with
// a String pattern, Sequence of these; pre-tokenizers ByteLevel, Split with a
// Regex pattern and "Isolated" behaviour, Metaspace, Sequence of these;
// post-processor TemplateProcessing (its "single" template) or none.
// Anything else is rejected with an error that names the key.
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "lowp/error.h"
#include "lowp/nn/tokenizer.h"
#include "nn/tokenizer_impl.h"

namespace lowp::nn {
namespace {

using nlohmann::json;
const std::string kMeta = "\xE2\x96\x81";  // "▁", SentencePiece's space

struct Loader {
  Tokenizer::Impl& t;
  const std::string& source;
  bool byte_level = false;
  std::vector<std::string> patterns;

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw Error(source + ": " + key + " " + what);
  }
  const json& at(const json& obj, const std::string& key, const std::string& where) const {
    if (!obj.is_object() || !obj.contains(key)) fail(where + "." + key, "is missing");
    return obj.at(key);
  }
  std::string str(const json& v, const std::string& where) const {
    if (!v.is_string()) fail(where, "is not a string");
    return v.get<std::string>();
  }
  bool flag(const json& obj, const std::string& key, bool def, const std::string& where) const {
    if (!obj.is_object() || !obj.contains(key) || obj.at(key).is_null()) return def;
    if (!obj.at(key).is_boolean()) fail(where + "." + key, "is not a bool");
    return obj.at(key).get<bool>();
  }
  std::string type_of(const json& obj, const std::string& where) const {
    return str(at(obj, "type", where), where + ".type");
  }

  void normalizer(const json& n, const std::string& where) {
    if (n.is_null()) return;
    const std::string type = type_of(n, where);
    if (type == "Sequence") {
      const json& list = at(n, "normalizers", where);
      if (!list.is_array()) fail(where + ".normalizers", "is not an array");
      for (std::size_t i = 0; i < list.size(); ++i) {
        normalizer(list[i], where + ".normalizers[" + std::to_string(i) + "]");
      }
    } else if (type == "NFC") {
      t.normalize.push_back({NormalizeStep::Op::kNfc, "", ""});
    } else if (type == "Prepend") {
      t.normalize.push_back(
          {NormalizeStep::Op::kPrepend, str(at(n, "prepend", where), where + ".prepend"), ""});
    } else if (type == "Replace") {
      const json& pattern = at(n, "pattern", where);
      if (!pattern.is_object() || !pattern.contains("String")) {
        fail(where + ".pattern", "is not supported (only {\"String\": ...})");
      }
      t.normalize.push_back({NormalizeStep::Op::kReplace,
                             str(pattern.at("String"), where + ".pattern.String"),
                             str(at(n, "content", where), where + ".content")});
    } else {
      fail(where + ".type", quoted(type) + " is not supported (NFC, Prepend, Replace, Sequence)");
    }
  }

  void pre_tokenizer(const json& p, const std::string& where) {
    if (p.is_null()) return;
    const std::string type = type_of(p, where);
    if (type == "Sequence") {
      const json& list = at(p, "pretokenizers", where);
      if (!list.is_array()) fail(where + ".pretokenizers", "is not an array");
      for (std::size_t i = 0; i < list.size(); ++i) {
        pre_tokenizer(list[i], where + ".pretokenizers[" + std::to_string(i) + "]");
      }
    } else if (type == "ByteLevel") {
      byte_level = true;
      t.byte_level_add_prefix_space = flag(p, "add_prefix_space", false, where);
      if (flag(p, "use_regex", true, where)) {
        patterns.push_back(
            R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)");
      }
    } else if (type == "Split") {
      const json& pattern = at(p, "pattern", where);
      if (!pattern.is_object() || !pattern.contains("Regex")) {
        fail(where + ".pattern", "is not supported (only {\"Regex\": ...})");
      }
      if (p.contains("behavior") && p.at("behavior") != "Isolated") {
        fail(where + ".behavior", "is not supported (only Isolated)");
      }
      if (flag(p, "invert", false, where)) fail(where + ".invert", "is not supported");
      patterns.push_back(str(pattern.at("Regex"), where + ".pattern.Regex"));
    } else if (type == "Metaspace") {
      const std::string rep =
          p.contains("replacement") ? str(p.at("replacement"), where + ".replacement") : kMeta;
      std::string scheme = flag(p, "add_prefix_space", true, where) ? "always" : "never";
      if (p.contains("prepend_scheme"))
        scheme = str(p.at("prepend_scheme"), where + ".prepend_scheme");
      if (scheme != "always" && scheme != "first" && scheme != "never") {
        fail(where + ".prepend_scheme", quoted(scheme) + " is not supported");
      }
      t.normalize.push_back({NormalizeStep::Op::kReplace, " ", rep});
      if (scheme != "never") t.normalize.push_back({NormalizeStep::Op::kPrepend, rep, ""});
      t.metaspace_split = flag(p, "split", true, where);
    } else {
      fail(where + ".type",
           quoted(type) + " is not supported (ByteLevel, Split, Metaspace, Sequence)");
    }
  }

  std::int32_t token_id(const json& v, const std::string& where, std::size_t limit) const {
    if (!v.is_number_integer()) fail(where, "is not an integer id");
    const auto id = v.get<std::int64_t>();
    if (id < 0 || static_cast<std::uint64_t>(id) >= limit) fail(where, "is out of range");
    return static_cast<std::int32_t>(id);
  }
};

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open the file");
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw Error(path.string() + ": cannot read the file");
  return s.str();
}

}  // namespace

Tokenizer Tokenizer::from_hf_json(const std::filesystem::path& tokenizer_json) {
  const std::string text = read_file(tokenizer_json);
  const auto config_path = tokenizer_json.parent_path() / "tokenizer_config.json";
  const std::string config =
      std::filesystem::exists(config_path) ? read_file(config_path) : std::string();
  return from_hf_json_text(text, config, tokenizer_json.string());
}

Tokenizer Tokenizer::from_hf_json_text(std::string_view tokenizer_json,
                                       std::string_view config_json, const std::string& source) {
  auto impl = std::make_shared<Impl>();
  Impl& t = *impl;
  t.source = source;
  Loader ld{t, source, false, {}};
  json j, config;
  try {
    j = json::parse(tokenizer_json);
  } catch (const json::exception& e) {
    throw Error(source + ": not valid JSON: " + e.what());
  }
  if (!config_json.empty()) {
    try {
      config = json::parse(config_json);
    } catch (const json::exception& e) {
      throw Error(source + ": tokenizer_config.json is not valid JSON: " + e.what());
    }
  }
  try {
    // ---- the model ----
    const json& model = ld.at(j, "model", "tokenizer");
    const std::string type =
        model.contains("type") ? ld.str(model.at("type"), "model.type") : "BPE";
    if (type != "BPE") ld.fail("model.type", quoted(type) + " is not supported (only BPE)");
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      if (model.contains(key) && !model.at(key).is_null() && model.at(key) != "") {
        ld.fail(std::string("model.") + key, "is not supported");
      }
    }
    const json& vocab = ld.at(model, "vocab", "model");
    if (!vocab.is_object()) ld.fail("model.vocab", "is not an object");
    const json& added = j.contains("added_tokens") ? j.at("added_tokens") : json::array();
    if (!added.is_array()) ld.fail("added_tokens", "is not an array");
    // Ids may leave holes; they must stay below this bound.
    const std::size_t limit = 4 * (vocab.size() + added.size()) + 256;
    std::vector<bool> seen;
    const auto put = [&](std::int32_t id, const std::string& tok, TokenType ty) {
      const auto i = static_cast<std::size_t>(id);
      if (i >= t.tokens.size()) {
        t.tokens.resize(i + 1);
        t.types.resize(i + 1, TokenType::kUnused);
        seen.resize(i + 1, false);
      }
      t.tokens[i] = tok;
      t.types[i] = ty;
      seen[i] = true;
    };
    for (const auto& [tok, id] : vocab.items()) {
      put(ld.token_id(id, "model.vocab[" + quoted(tok) + "]", limit), tok, TokenType::kNormal);
    }
    for (std::size_t i = 0; i < added.size(); ++i) {
      const std::string where = "added_tokens[" + std::to_string(i) + "]";
      const std::int32_t id = ld.token_id(ld.at(added[i], "id", where), where + ".id", limit);
      const std::string content = ld.str(ld.at(added[i], "content", where), where + ".content");
      const bool special = ld.flag(added[i], "special", false, where);
      put(id, content, special ? TokenType::kControl : TokenType::kUserDefined);
      t.added.push_back({content, id});
    }
    for (std::size_t i = 0; i < t.tokens.size(); ++i) {
      if (!seen[i]) t.tokens[i] = "[PAD" + std::to_string(i) + "]";
    }
    const json& merges = ld.at(model, "merges", "model");
    if (!merges.is_array()) ld.fail("model.merges", "is not an array");
    for (std::size_t i = 0; i < merges.size(); ++i) {
      const std::string where = "model.merges[" + std::to_string(i) + "]";
      const json& m = merges[i];
      if (m.is_string()) {
        const std::string s = m.get<std::string>();
        const std::size_t sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
          ld.fail(where, "is not \"a b\"");
        }
        t.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      } else if (m.is_array() && m.size() == 2) {
        t.merges.emplace_back(ld.str(m[0], where + "[0]"), ld.str(m[1], where + "[1]"));
      } else {
        ld.fail(where, "is neither \"a b\" nor [\"a\", \"b\"]");
      }
    }
    t.ignore_merges = ld.flag(model, "ignore_merges", false, "model");
    t.byte_fallback = ld.flag(model, "byte_fallback", false, "model");
    t.fuse_unk = ld.flag(model, "fuse_unk", false, "model");

    // ---- normalizer and pre-tokenizer ----
    ld.normalizer(j.contains("normalizer") ? j.at("normalizer") : json(), "normalizer");
    ld.pre_tokenizer(j.contains("pre_tokenizer") ? j.at("pre_tokenizer") : json(), "pre_tokenizer");
    if (ld.byte_level) {
      t.kind = Kind::kByteBpe;
      for (const auto& p : ld.patterns) {
        t.split.push_back(std::make_shared<SplitRegex>(p, source + ": pre_tokenizer"));
      }
      t.pre = llama_cpp_pre_name(ld.patterns);
    } else {
      if (!ld.patterns.empty()) {
        ld.fail("pre_tokenizer", "has a Split regex but no ByteLevel step (not supported)");
      }
      t.kind = Kind::kSpm;
      for (const auto& step : t.normalize) {
        if (step.op == NormalizeStep::Op::kPrepend)
          t.add_space_prefix = t.decode_strip_space = true;
      }
    }

    // ---- special tokens ----
    const auto lookup = [&](const std::string& tok) -> std::optional<std::int32_t> {
      for (std::size_t i = 0; i < t.tokens.size(); ++i) {
        if (t.tokens[i] == tok) return static_cast<std::int32_t>(i);
      }
      return std::nullopt;
    };
    if (model.contains("unk_token") && !model.at("unk_token").is_null()) {
      t.unk = lookup(ld.str(model.at("unk_token"), "model.unk_token"));
      if (!t.unk) ld.fail("model.unk_token", "is not in the vocabulary");
      t.types[static_cast<std::size_t>(*t.unk)] = TokenType::kUnknown;
    }
    const auto config_token = [&](const char* key) -> std::optional<std::int32_t> {
      if (!config.is_object() || !config.contains(key) || config.at(key).is_null()) return {};
      const json& v = config.at(key);
      const std::string where = std::string("tokenizer_config.json ") + key;
      const std::string tok =
          v.is_object() ? ld.str(ld.at(v, "content", where), where + ".content") : ld.str(v, where);
      return lookup(tok);
    };
    t.bos = config_token("bos_token");
    t.eos = config_token("eos_token");
    const json& post = j.contains("post_processor") ? j.at("post_processor") : json();
    if (!post.is_null() && ld.type_of(post, "post_processor") == "TemplateProcessing") {
      const json& single = ld.at(post, "single", "post_processor");
      if (!single.is_array()) ld.fail("post_processor.single", "is not an array");
      bool after = false;
      for (std::size_t i = 0; i < single.size(); ++i) {
        const std::string where = "post_processor.single[" + std::to_string(i) + "]";
        if (single[i].contains("Sequence")) {
          after = true;
        } else if (single[i].contains("SpecialToken")) {
          const std::string tok =
              ld.str(ld.at(single[i].at("SpecialToken"), "id", where), where + ".SpecialToken.id");
          const auto id = lookup(tok);
          if (!id) ld.fail(where, "names " + quoted(tok) + ", which is not in the vocabulary");
          (after ? t.suffix_special : t.prefix_special).push_back(*id);
        } else {
          ld.fail(where, "is not supported");
        }
      }
    } else {
      if (ld.flag(config, "add_bos_token", false, "tokenizer_config.json") && t.bos) {
        t.prefix_special = {*t.bos};
      }
      if (ld.flag(config, "add_eos_token", false, "tokenizer_config.json") && t.eos) {
        t.suffix_special = {*t.eos};
      }
    }
    // Without a tokenizer_config.json, BOS/EOS are what the template adds.
    if (!t.bos && t.prefix_special.size() == 1) t.bos = t.prefix_special[0];
    if (!t.eos && t.suffix_special.size() == 1) t.eos = t.suffix_special[0];
    if (t.kind == Kind::kSpm) {
      for (std::size_t i = 0; i < t.tokens.size(); ++i) {
        const std::string& s = t.tokens[i];
        if (t.types[i] == TokenType::kNormal && s.size() == 6 && s.starts_with("<0x") &&
            s[5] == '>') {
          t.types[i] = TokenType::kByte;
        }
      }
    }
  } catch (const json::exception& e) {
    throw Error(source + ": " + e.what());
  }
  t.finish();
  // SPM scores for a GGUF copy: a token made by merge r scores -r, so that
  // llama.cpp's score-driven merging follows the merge order.
  if (t.kind == Kind::kSpm) {
    std::fill(t.scores.begin(), t.scores.end(), 0.0f);
    std::vector<bool> made(t.tokens.size(), false);
    for (const auto& [key, rule] : t.merge_rules) {
      const auto r = static_cast<std::size_t>(rule.result);
      if (!made[r] || t.scores[r] < -static_cast<float>(rule.rank)) {
        t.scores[r] = -static_cast<float>(rule.rank);
        made[r] = true;
      }
    }
    for (std::size_t i = 0; i < t.tokens.size(); ++i) {
      if (!made[i] && t.types[i] == TokenType::kNormal && !t.tokens[i].empty() &&
          valid_utf8_len(t.tokens[i], 0) != t.tokens[i].size()) {
        t.scores[i] = -1e9f;  // never made by a merge: merge it last
      }
    }
  }
  return Tokenizer(std::move(impl));
}

}  // namespace lowp::nn
