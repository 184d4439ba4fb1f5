// src/nn/tokenizer.cc — encoding and decoding, the GGUF vocabulary
// (tokenizer.ggml.*, as llama.cpp's src/llama-vocab.cpp reads it) in both
// directions.
//
// Encoding, for every tokenizer:
//   1. added/special tokens are cut out of the text (longest first at each
//      position); the text between them is encoded segment by segment;
//   2. a segment is normalized (NFC, the SPM "▁" prefix and space
//      replacement) and pre-tokenized (split regexes, byte-level only);
//   3. each piece is merged: by merge rank (BPE: HF tokenizers, llama.cpp's
//      gpt2 vocabularies), or by token score (llama.cpp's SPM vocabularies);
//   4. pieces nothing in the vocabulary spells fall back to byte tokens.
#include "lowp/nn/tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <queue>
#include <sstream>

#include "lowp/error.h"
#include "nn/tokenizer_impl.h"

namespace lowp::nn {
namespace {

using io::GgufKv;
using io::GgufType;
using io::GgufValue;

std::uint64_t pair_key(std::int32_t left, std::int32_t right) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) |
         static_cast<std::uint32_t>(right);
}

std::string byte_token_name(unsigned b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "<0x%02X>", b);
  return buf;
}

// 0xXX of a token spelled "<0xXX>", else -1.
int byte_token_value(std::string_view tok) {
  const auto hex = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
  };
  if (tok.size() != 6 || !tok.starts_with("<0x") || tok[5] != '>') return -1;
  const int hi = hex(tok[3]), lo = hex(tok[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

// Step 3, by rank: repeatedly merge the adjacent pair with the lowest merge
// rank (the leftmost on ties), as HF's BPE::merge_word and llama.cpp's
// llm_tokenizer_bpe_session do.
void bpe_merge(const Tokenizer::Impl& t, std::vector<std::int32_t>& ids) {
  const std::size_t n = ids.size();
  if (n < 2) return;
  std::vector<std::int64_t> prev(n), next(n);
  for (std::size_t i = 0; i < n; ++i) {
    prev[i] = static_cast<std::int64_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<std::int64_t>(i + 1) : -1;
  }
  struct Cand {
    std::int32_t rank;
    std::int64_t left;
    std::int32_t left_id, right_id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<>> queue;
  const auto consider = [&](std::int64_t left) {
    if (left < 0 || next[static_cast<std::size_t>(left)] < 0) return;
    const auto l = static_cast<std::size_t>(left);
    const auto r = static_cast<std::size_t>(next[l]);
    const auto it = t.merge_rules.find(pair_key(ids[l], ids[r]));
    if (it != t.merge_rules.end()) queue.push({it->second.rank, left, ids[l], ids[r]});
  };
  for (std::size_t i = 0; i + 1 < n; ++i) consider(static_cast<std::int64_t>(i));
  while (!queue.empty()) {
    const Cand c = queue.top();
    queue.pop();
    const auto l = static_cast<std::size_t>(c.left);
    if (ids[l] != c.left_id || next[l] < 0) continue;
    const auto r = static_cast<std::size_t>(next[l]);
    if (ids[r] != c.right_id) continue;
    ids[l] = t.merge_rules.at(pair_key(c.left_id, c.right_id)).result;
    ids[r] = -1;
    next[l] = next[r];
    if (next[r] >= 0) prev[static_cast<std::size_t>(next[r])] = c.left;
    consider(prev[l]);
    consider(c.left);
  }
  std::erase(ids, -1);
}

// Step 3 for a byte-level piece: its bytes, as GPT-2's code points.
void encode_byte_level_piece(const Tokenizer::Impl& t, std::string_view piece,
                             std::vector<std::int32_t>& out) {
  if (t.ignore_merges) {
    std::string mapped;
    for (const char ch : piece) mapped += byte_to_unicode()[static_cast<unsigned char>(ch)];
    const auto it = t.token_to_id.find(mapped);
    if (it != t.token_to_id.end()) {
      out.push_back(it->second);
      return;
    }
  }
  std::vector<std::int32_t> ids;
  ids.reserve(piece.size());
  for (const char ch : piece) {
    const std::int32_t id = t.byte_token[static_cast<unsigned char>(ch)];
    if (id >= 0) ids.push_back(id);
  }
  bpe_merge(t, ids);
  out.insert(out.end(), ids.begin(), ids.end());
}

// Step 3 for a character-level BPE piece (HF's BPE model with byte_fallback).
void encode_char_bpe_piece(const Tokenizer::Impl& t, std::string_view piece,
                           std::vector<std::int32_t>& out) {
  if (t.ignore_merges) {
    const auto it = t.token_to_id.find(std::string(piece));
    if (it != t.token_to_id.end()) {
      out.push_back(it->second);
      return;
    }
  }
  std::vector<std::int32_t> ids;
  for (std::size_t i = 0; i < piece.size();) {
    std::size_t n = valid_utf8_len(piece, i);
    if (n == 0) n = 1;
    const auto it = t.token_to_id.find(std::string(piece.substr(i, n)));
    if (it != t.token_to_id.end()) {
      ids.push_back(it->second);
    } else {
      bool all_bytes = t.byte_fallback;
      for (std::size_t k = 0; k < n && all_bytes; ++k) {
        all_bytes = t.byte_token[static_cast<unsigned char>(piece[i + k])] >= 0;
      }
      if (all_bytes) {
        for (std::size_t k = 0; k < n; ++k) {
          ids.push_back(t.byte_token[static_cast<unsigned char>(piece[i + k])]);
        }
      } else if (t.unk && !(t.fuse_unk && !ids.empty() && ids.back() == *t.unk)) {
        ids.push_back(*t.unk);
      }
    }
    i += n;
  }
  bpe_merge(t, ids);
  out.insert(out.end(), ids.begin(), ids.end());
}

// Step 3 by score: llama.cpp's llm_tokenizer_spm_session. Symbols are UTF-8
// characters (their length from the lead byte, as llama.cpp's
// unicode_len_utf8); the adjacent pair whose concatenation is the
// highest-scoring token merges first (the leftmost on ties); symbols left
// that are not tokens become byte tokens.
void encode_spm(const Tokenizer::Impl& t, std::string_view text, std::vector<std::int32_t>& out) {
  struct Symbol {
    std::size_t start, n;
    std::int64_t prev, next;
  };
  std::vector<Symbol> sym;
  for (std::size_t offs = 0; offs < text.size();) {
    static constexpr std::size_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    const std::size_t len =
        std::min(kLen[static_cast<unsigned char>(text[offs]) >> 4], text.size() - offs);
    const auto idx = static_cast<std::int64_t>(sym.size());
    sym.push_back({offs, len, idx - 1, offs + len == text.size() ? -1 : idx + 1});
    offs += len;
  }
  struct Bigram {
    float score;
    std::int64_t left, right;
    std::size_t size;
    bool operator<(const Bigram& o) const {
      return score < o.score || (score == o.score && left > o.left);
    }
  };
  std::priority_queue<Bigram> queue;
  const auto try_add = [&](std::int64_t left, std::int64_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = sym[static_cast<std::size_t>(left)];
    const Symbol& r = sym[static_cast<std::size_t>(right)];
    const auto it = t.token_to_id.find(std::string(text.substr(l.start, l.n + r.n)));
    if (it == t.token_to_id.end()) return;
    queue.push({t.scores[static_cast<std::size_t>(it->second)], left, right, l.n + r.n});
  };
  for (std::size_t i = 1; i < sym.size(); ++i) {
    try_add(static_cast<std::int64_t>(i - 1), static_cast<std::int64_t>(i));
  }
  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = sym[static_cast<std::size_t>(b.left)];
    Symbol& r = sym[static_cast<std::size_t>(b.right)];
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) sym[static_cast<std::size_t>(r.next)].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
  for (std::int64_t i = sym.empty() ? -1 : 0; i >= 0; i = sym[static_cast<std::size_t>(i)].next) {
    const Symbol& s = sym[static_cast<std::size_t>(i)];
    const auto it = t.token_to_id.find(std::string(text.substr(s.start, s.n)));
    if (it != t.token_to_id.end()) {
      out.push_back(it->second);
      continue;
    }
    for (std::size_t k = 0; k < s.n; ++k) {
      const auto b = static_cast<unsigned char>(text[s.start + k]);
      if (t.byte_token[b] >= 0) {
        out.push_back(t.byte_token[b]);
      } else if (const auto one = t.token_to_id.find(std::string(1, static_cast<char>(b)));
                 one != t.token_to_id.end()) {
        out.push_back(one->second);
      } else if (t.unk) {
        out.push_back(*t.unk);
      }
    }
  }
}

std::string normalized(const Tokenizer::Impl& t, std::string_view segment) {
  std::string s(segment);
  for (const NormalizeStep& step : t.normalize) {
    switch (step.op) {
      case NormalizeStep::Op::kNfc:
        s = nfc(s);
        break;
      case NormalizeStep::Op::kPrepend:
        if (!s.empty()) s = step.a + s;
        break;
      case NormalizeStep::Op::kReplace: {
        if (step.a.empty()) break;
        std::string r;
        std::size_t from = 0;
        for (std::size_t at; (at = s.find(step.a, from)) != std::string::npos;
             from = at + step.a.size()) {
          r.append(s, from, at - from);
          r += step.b;
        }
        r.append(s, from);
        s = std::move(r);
        break;
      }
    }
  }
  return s;
}

// The pieces of `s` (views into it that tile it) with the cuts inside every
// run of ASCII digits replaced by `g`'s.
std::vector<std::string_view> regroup_digits(std::string_view s,
                                             const std::vector<std::string_view>& pieces,
                                             numeracy::DigitGrouping g) {
  const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  std::vector<std::size_t> cuts;  // piece starts, less those inside digit runs
  for (const auto piece : pieces) {
    const auto at = static_cast<std::size_t>(piece.data() - s.data());
    if (at == 0 || at >= s.size() || !is_digit(s[at - 1]) || !is_digit(s[at])) cuts.push_back(at);
  }
  const std::vector<std::size_t> groups = numeracy::split_points(s, g);
  cuts.insert(cuts.end(), groups.begin(), groups.end());
  std::sort(cuts.begin(), cuts.end());
  cuts.push_back(s.size());
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (const std::size_t at : cuts) {
    if (at > start) out.push_back(s.substr(start, at - start));
    start = std::max(start, at);
  }
  return out;
}

// Steps 2-4 for one segment of text between added tokens.
void encode_segment(const Tokenizer::Impl& t, std::string_view segment,
                    std::vector<std::int32_t>& out) {
  std::string s = normalized(t, segment);
  if (t.kind == Tokenizer::Kind::kSpm) {
    if (t.spm_scores) {
      if (!t.number_grouping) return encode_spm(t, s, out);
      for (const auto piece : regroup_digits(s, {std::string_view(s)}, *t.number_grouping)) {
        encode_spm(t, piece, out);
      }
      return;
    }
    std::vector<std::string_view> pieces;
    if (t.metaspace_split) {
      static const std::string kMeta = "\xE2\x96\x81";
      std::size_t start = 0;
      for (std::size_t at = s.find(kMeta, 1); at != std::string::npos; at = s.find(kMeta, at + 1)) {
        pieces.push_back(std::string_view(s).substr(start, at - start));
        start = at;
      }
      pieces.push_back(std::string_view(s).substr(start));
    } else {
      pieces.push_back(s);
    }
    if (t.number_grouping) pieces = regroup_digits(s, pieces, *t.number_grouping);
    for (const auto piece : pieces) encode_char_bpe_piece(t, piece, out);
    return;
  }
  if (t.byte_level_add_prefix_space && !s.empty() && s[0] != ' ') s.insert(0, 1, ' ');
  std::vector<std::string_view> pieces{std::string_view(s)}, next;
  for (const auto& re : t.split) {
    next.clear();
    for (const auto piece : pieces) re->split(piece, next);
    pieces.swap(next);
  }
  if (t.number_grouping) pieces = regroup_digits(s, pieces, *t.number_grouping);
  for (const auto piece : pieces) encode_byte_level_piece(t, piece, out);
}

const GgufValue* find_kv(std::span<const GgufKv> kv, std::string_view key) {
  for (const auto& [k, v] : kv) {
    if (k == key) return &v;
  }
  return nullptr;
}

}  // namespace

void Tokenizer::Impl::finish() {
  token_to_id.clear();
  token_to_id.reserve(tokens.size());
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    token_to_id[tokens[i]] = static_cast<std::int32_t>(i);
  }
  const auto id_of = [&](const std::string& s, std::size_t rank, const char* part) {
    const auto it = token_to_id.find(s);
    if (it == token_to_id.end()) {
      throw Error(source + ": merges[" + std::to_string(rank) + "] names " + part + " " +
                  quoted(s) + ", which is not in the vocabulary");
    }
    return it->second;
  };
  merge_rules.clear();
  merge_rules.reserve(merges.size());
  for (std::size_t r = 0; r < merges.size(); ++r) {
    const auto& [a, b] = merges[r];
    const std::int32_t ia = id_of(a, r, "the token"), ib = id_of(b, r, "the token");
    const std::int32_t ir = id_of(a + b, r, "the merged token");
    merge_rules.try_emplace(pair_key(ia, ib), MergeRule{static_cast<std::int32_t>(r), ir});
  }
  for (unsigned b = 0; b < 256; ++b) {
    const std::string name = kind == Kind::kByteBpe ? byte_to_unicode()[b] : byte_token_name(b);
    const auto it = token_to_id.find(name);
    byte_token[b] = it == token_to_id.end() ? -1 : it->second;
  }
  std::stable_sort(added.begin(), added.end(), [](const AddedToken& x, const AddedToken& y) {
    return x.content.size() > y.content.size();
  });
  for (auto& v : added_by_first) v.clear();
  for (std::size_t i = 0; i < added.size(); ++i) {
    if (!added[i].content.empty()) {
      added_by_first[static_cast<unsigned char>(added[i].content[0])].push_back(
          static_cast<std::uint32_t>(i));
    }
  }
  if (scores.size() != tokens.size()) scores.resize(tokens.size(), 0.0f);
  if (types.size() != tokens.size()) types.resize(tokens.size(), TokenType::kNormal);
}

Tokenizer Tokenizer::with_number_grouping(numeracy::DigitGrouping grouping) const {
  (void)numeracy::split_points("", grouping);  // checks the group size
  auto impl = std::make_shared<Impl>(*impl_);
  impl->number_grouping = grouping;
  return Tokenizer(std::move(impl));
}

std::optional<numeracy::DigitGrouping> Tokenizer::number_grouping() const {
  return impl_->number_grouping;
}

std::vector<std::int32_t> Tokenizer::encode(std::string_view text, bool add_special) const {
  const Impl& t = *impl_;
  std::vector<std::int32_t> out;
  if (add_special) out = t.prefix_special;
  // Step 1: cut out the added tokens.
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size();) {
    const AddedToken* hit = nullptr;
    for (const std::uint32_t k : t.added_by_first[static_cast<unsigned char>(text[i])]) {
      if (text.substr(i).starts_with(t.added[k].content)) {
        hit = &t.added[k];
        break;
      }
    }
    if (hit == nullptr) {
      ++i;
      continue;
    }
    if (i > start) encode_segment(t, text.substr(start, i - start), out);
    out.push_back(hit->id);
    i += hit->content.size();
    start = i;
  }
  if (start < text.size()) encode_segment(t, text.substr(start), out);
  if (add_special) out.insert(out.end(), t.suffix_special.begin(), t.suffix_special.end());
  return out;
}

std::string Tokenizer::decode(std::span<const std::int32_t> ids) const {
  const Impl& t = *impl_;
  std::string out;
  for (const std::int32_t id : ids) {
    if (id < 0 || static_cast<std::size_t>(id) >= t.tokens.size()) {
      throw Error(t.source + ": token id " + std::to_string(id) +
                  " is out of range (vocabulary of " + std::to_string(t.tokens.size()) + ")");
    }
    const std::string& tok = t.tokens[static_cast<std::size_t>(id)];
    const TokenType type = t.types[static_cast<std::size_t>(id)];
    if (type == TokenType::kControl || type == TokenType::kUserDefined ||
        type == TokenType::kUnknown) {
      out += tok;
    } else if (t.kind == Kind::kByteBpe) {
      for (std::size_t i = 0; i < tok.size();) {
        std::size_t n = valid_utf8_len(tok, i);
        std::uint32_t cp = static_cast<unsigned char>(tok[i]);
        if (n == 2) cp = ((cp & 0x1Fu) << 6) | (static_cast<unsigned char>(tok[i + 1]) & 0x3Fu);
        const int b = n <= 2 && n > 0 ? unicode_to_byte(cp) : -1;
        if (n == 0) n = 1;
        if (b >= 0) {
          out += static_cast<char>(b);
        } else {
          out.append(tok, i, n);
        }
        i += n;
      }
    } else if (const int b = type == TokenType::kByte ? byte_token_value(tok) : -1; b >= 0) {
      out += static_cast<char>(b);
    } else {
      static const std::string kMeta = "\xE2\x96\x81";
      for (std::size_t i = 0; i < tok.size();) {
        if (tok.compare(i, kMeta.size(), kMeta) == 0) {
          out += ' ';
          i += kMeta.size();
        } else {
          out += tok[i++];
        }
      }
    }
  }
  if (t.kind == Kind::kSpm && t.decode_strip_space && !out.empty() && out[0] == ' ') {
    out.erase(0, 1);
  }
  return out;
}

std::int32_t Tokenizer::vocab_size() const {
  return static_cast<std::int32_t>(impl_->tokens.size());
}
std::optional<std::int32_t> Tokenizer::bos() const { return impl_->bos; }
std::optional<std::int32_t> Tokenizer::eos() const { return impl_->eos; }
Tokenizer::Kind Tokenizer::kind() const { return impl_->kind; }
std::string_view Tokenizer::gguf_model() const {
  return impl_->kind == Kind::kByteBpe ? "gpt2" : "llama";
}
const std::string& Tokenizer::pre() const { return impl_->pre; }
const std::vector<std::string>& Tokenizer::tokens() const { return impl_->tokens; }
const std::vector<float>& Tokenizer::scores() const { return impl_->scores; }
const std::vector<TokenType>& Tokenizer::token_types() const { return impl_->types; }
const std::vector<std::pair<std::string, std::string>>& Tokenizer::merges() const {
  return impl_->merges;
}

void Tokenizer::to_gguf_kv(std::vector<GgufKv>& kv) const {
  const Impl& t = *impl_;
  kv.emplace_back("tokenizer.ggml.model", GgufValue::string(std::string(gguf_model())));
  if (t.kind == Kind::kByteBpe) {
    if (t.pre.empty()) {
      throw Error(t.source + ": the split regex is not one llama.cpp knows by name " +
                  "(tokenizer.ggml.pre: gpt-2, llama-bpe, qwen2, default)");
    }
    kv.emplace_back("tokenizer.ggml.pre", GgufValue::string(t.pre));
  }
  kv.emplace_back("tokenizer.ggml.tokens", GgufValue::strings(t.tokens));
  if (t.kind == Kind::kSpm) kv.emplace_back("tokenizer.ggml.scores", GgufValue::f32s(t.scores));
  std::vector<std::int32_t> types(t.types.size());
  std::transform(t.types.begin(), t.types.end(), types.begin(),
                 [](TokenType x) { return static_cast<std::int32_t>(x); });
  kv.emplace_back("tokenizer.ggml.token_type", GgufValue::i32s(types));
  if (t.kind == Kind::kByteBpe) {
    std::vector<std::string> merges;
    merges.reserve(t.merges.size());
    for (const auto& [a, b] : t.merges) merges.push_back(a + " " + b);
    kv.emplace_back("tokenizer.ggml.merges", GgufValue::strings(merges));
  }
  const auto id = [&](const char* key, std::optional<std::int32_t> v) {
    if (v) kv.emplace_back(key, GgufValue::u32(static_cast<std::uint32_t>(*v)));
  };
  id("tokenizer.ggml.bos_token_id", t.bos);
  id("tokenizer.ggml.eos_token_id", t.eos);
  id("tokenizer.ggml.unknown_token_id", t.unk);
  const bool add_bos = t.bos && t.prefix_special == std::vector<std::int32_t>{*t.bos};
  const bool add_eos = t.eos && t.suffix_special == std::vector<std::int32_t>{*t.eos};
  kv.emplace_back("tokenizer.ggml.add_bos_token", GgufValue::boolean(add_bos));
  kv.emplace_back("tokenizer.ggml.add_eos_token", GgufValue::boolean(add_eos));
  if (t.kind == Kind::kSpm) {
    kv.emplace_back("tokenizer.ggml.add_space_prefix", GgufValue::boolean(t.add_space_prefix));
  }
}

Tokenizer Tokenizer::from_gguf(const io::ModelReader& gguf) {
  std::string source = "GGUF";
  return from_gguf_kv(io::gguf_kv(gguf), source);
}

Tokenizer Tokenizer::from_gguf_kv(std::span<const GgufKv> kv, const std::string& source) {
  auto t = std::make_shared<Impl>();
  t->source = source;
  const auto fail = [&](const std::string& key, const std::string& what) -> Error {
    return Error(source + ": " + key + " " + what);
  };
  const auto get = [&](const char* key) { return find_kv(kv, key); };
  const auto string_of = [&](const char* key) -> std::optional<std::string> {
    const GgufValue* v = get(key);
    if (v == nullptr) return std::nullopt;
    if (v->type != GgufType::kString) throw fail(key, "is not a string");
    return v->str;
  };
  const auto array_of = [&](const char* key, GgufType elem) -> const std::vector<GgufValue>* {
    const GgufValue* v = get(key);
    if (v == nullptr) return nullptr;
    if (v->type != GgufType::kArray || v->elem_type != elem) {
      throw fail(key, "is not an array of " + std::string(io::gguf_type_name(elem)));
    }
    return &v->items;
  };
  const auto model = string_of("tokenizer.ggml.model");
  if (!model) throw fail("tokenizer.ggml.model", "is missing");
  if (*model == "gpt2") {
    t->kind = Kind::kByteBpe;
  } else if (*model == "llama") {
    t->kind = Kind::kSpm;
  } else {
    throw fail("tokenizer.ggml.model", quoted(*model) + " is not supported (gpt2, llama)");
  }
  const auto* tokens = array_of("tokenizer.ggml.tokens", GgufType::kString);
  if (tokens == nullptr || tokens->empty()) throw fail("tokenizer.ggml.tokens", "is missing");
  if (tokens->size() > (1u << 24)) throw fail("tokenizer.ggml.tokens", "has too many tokens");
  const std::size_t n = tokens->size();
  for (std::size_t i = 0; i < n; ++i) {
    if (!is_valid_utf8((*tokens)[i].str)) {
      throw fail("tokenizer.ggml.tokens[" + std::to_string(i) + "]", "is not valid UTF-8");
    }
    t->tokens.push_back((*tokens)[i].str);
  }
  if (const auto* scores = array_of("tokenizer.ggml.scores", GgufType::kF32)) {
    if (scores->size() != n) throw fail("tokenizer.ggml.scores", "does not have one per token");
    for (const auto& s : *scores) {
      float f;
      const auto bits = static_cast<std::uint32_t>(s.bits);
      std::memcpy(&f, &bits, sizeof f);
      t->scores.push_back(f);
    }
  }
  if (const auto* types = array_of("tokenizer.ggml.token_type", GgufType::kI32)) {
    if (types->size() != n) throw fail("tokenizer.ggml.token_type", "does not have one per token");
    for (const auto& v : *types) {
      const std::int64_t x = *v.as_i64();
      if (x < 1 || x > 6) throw fail("tokenizer.ggml.token_type", "has an unknown type");
      t->types.push_back(static_cast<TokenType>(x));
    }
  }
  if (const auto* merges = array_of("tokenizer.ggml.merges", GgufType::kString)) {
    for (std::size_t i = 0; i < merges->size(); ++i) {
      const std::string& m = (*merges)[i].str;
      const std::size_t sp = m.find(' ', 1);
      if (sp == std::string::npos) {
        throw fail("tokenizer.ggml.merges[" + std::to_string(i) + "]", "is not \"a b\"");
      }
      t->merges.emplace_back(m.substr(0, sp), m.substr(sp + 1));
    }
  } else if (t->kind == Kind::kByteBpe) {
    throw fail("tokenizer.ggml.merges", "is missing");
  }
  const auto id_of = [&](const char* key) -> std::optional<std::int32_t> {
    const GgufValue* v = get(key);
    if (v == nullptr) return std::nullopt;
    const auto x = v->as_i64();
    if (!x) throw fail(key, "is not an integer");
    if (*x == -1) return std::nullopt;
    if (*x < 0 || static_cast<std::uint64_t>(*x) >= n) throw fail(key, "is out of range");
    return static_cast<std::int32_t>(*x);
  };
  const auto flag = [&](const char* key, bool def) {
    const GgufValue* v = get(key);
    if (v == nullptr) return def;
    if (v->type != GgufType::kBool) throw fail(key, "is not a bool");
    return v->bits != 0;
  };
  t->bos = id_of("tokenizer.ggml.bos_token_id");
  t->eos = id_of("tokenizer.ggml.eos_token_id");
  t->unk = id_of("tokenizer.ggml.unknown_token_id");
  if (t->kind == Kind::kByteBpe) {
    t->pre = string_of("tokenizer.ggml.pre").value_or("default");
    const auto patterns = llama_cpp_pre_regexes(t->pre);
    if (patterns.empty()) {
      throw fail("tokenizer.ggml.pre",
                 quoted(t->pre) + " is not supported (gpt-2, llama-bpe, qwen2, default)");
    }
    for (const auto& p : patterns) {
      t->split.push_back(std::make_shared<SplitRegex>(p, source + ": tokenizer.ggml.pre"));
    }
    t->ignore_merges = t->pre == "llama-bpe" || t->pre == "llama3" || t->pre == "llama-v3";
  } else {
    t->spm_scores = true;
    t->add_space_prefix = flag("tokenizer.ggml.add_space_prefix", true);
    t->decode_strip_space = t->add_space_prefix;
    if (t->add_space_prefix) t->normalize.push_back({NormalizeStep::Op::kPrepend, " ", ""});
    t->normalize.push_back({NormalizeStep::Op::kReplace, " ", "\xE2\x96\x81"});
  }
  if (flag("tokenizer.ggml.add_bos_token", t->kind == Kind::kSpm) && t->bos) {
    t->prefix_special = {*t->bos};
  }
  if (flag("tokenizer.ggml.add_eos_token", false) && t->eos) t->suffix_special = {*t->eos};
  // llama.cpp matches control, user-defined and unknown tokens in the text.
  t->types.resize(n, TokenType::kNormal);
  for (std::size_t i = 0; i < n; ++i) {
    const TokenType ty = t->types[i];
    if (ty == TokenType::kControl || ty == TokenType::kUserDefined || ty == TokenType::kUnknown) {
      t->added.push_back({t->tokens[i], static_cast<std::int32_t>(i)});
    }
  }
  t->finish();
  return Tokenizer(std::move(t));
}

Tokenizer Tokenizer::from_directory(const std::filesystem::path& hf_dir) {
  if (std::filesystem::exists(hf_dir / "tokenizer.json")) {
    return from_hf_json(hf_dir / "tokenizer.json");
  }
  if (std::filesystem::exists(hf_dir / "tokenizer.model")) {
    throw Error((hf_dir / "tokenizer.model").string() +
                ": SentencePiece model files are not supported; use the model's tokenizer.json "
                "(or a GGUF file with its vocabulary)");
  }
  throw Error(hf_dir.string() + ": no tokenizer.json in this directory");
}

}  // namespace lowp::nn
