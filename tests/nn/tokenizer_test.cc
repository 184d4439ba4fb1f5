// Tokenizer unit tests on small hand-written vocabularies: the merge order,
// special tokens, invalid UTF-8 in the text (encoded, never rejected),
// malformed files (one lowp::Error naming the key) and the GGUF round trip.
// The comparisons with Hugging Face's and llama.cpp's tokenizers on real
// vocabularies are tests/nn/test_tokenizers.py.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "lowp/error.h"
#include "lowp/nn/tokenizer.h"

namespace {

using lowp::nn::Tokenizer;
using nlohmann::json;

// A byte-level BPE over all 256 byte tokens plus merges "h e", "he l",
// "hel l", "Ġ w", and a special token.
json byte_level_json() {
  // GPT-2's bytes_to_unicode, as in the tokenizer.
  json vocab = json::object();
  int next = 256;
  std::vector<std::string> chars(256);
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    const int cp = printable ? b : next++;
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    chars[static_cast<std::size_t>(b)] = s;
    vocab[s] = b;
  }
  vocab["he"] = 256;
  vocab["hel"] = 257;
  vocab["hell"] = 258;
  vocab["\xC4\xA0w"] = 259;  // "Ġw"
  return json{
      {"model",
       {{"type", "BPE"},
        {"vocab", vocab},
        {"merges", json::array({"h e", json::array({"he", "l"}), "hel l", "\xC4\xA0 w"})}}},
      {"added_tokens", json::array({{{"id", 260}, {"content", "<|eot|>"}, {"special", true}}})},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
      {"decoder", {{"type", "ByteLevel"}}}};
}

Tokenizer byte_level() {
  return Tokenizer::from_hf_json_text(byte_level_json().dump(), "", "test.json");
}

// An SPM-style vocabulary: <unk>, <s>, </s>, byte tokens, ▁ and a few merges.
json spm_json() {
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    vocab[buf] = 3 + b;
  }
  const std::vector<std::string> pieces = {"\xE2\x96\x81",
                                           "a",
                                           "b",
                                           "\xE2\x96\x81"
                                           "a",
                                           "ab",
                                           "\xE2\x96\x81"
                                           "ab"};
  for (std::size_t i = 0; i < pieces.size(); ++i) vocab[pieces[i]] = 259 + static_cast<int>(i);
  return json{{"model",
               {{"type", "BPE"},
                {"vocab", vocab},
                {"unk_token", "<unk>"},
                {"byte_fallback", true},
                {"merges", json::array({"\xE2\x96\x81 a", "a b",
                                        "\xE2\x96\x81"
                                        "a b"})}}},
              {"added_tokens", json::array({{{"id", 0}, {"content", "<unk>"}, {"special", true}},
                                            {{"id", 1}, {"content", "<s>"}, {"special", true}},
                                            {{"id", 2}, {"content", "</s>"}, {"special", true}}})},
              {"normalizer",
               {{"type", "Sequence"},
                {"normalizers", json::array({{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
                                             {{"type", "Replace"},
                                              {"pattern", {{"String", " "}}},
                                              {"content", "\xE2\x96\x81"}}})}}},
              {"post_processor",
               {{"type", "TemplateProcessing"},
                {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                        {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})}}}};
}

TEST(Tokenizer, ByteLevelMergesInRankOrder) {
  const Tokenizer t = byte_level();
  EXPECT_EQ(t.kind(), Tokenizer::Kind::kByteBpe);
  EXPECT_EQ(t.pre(), "gpt-2");
  EXPECT_EQ(t.encode("hello"), (std::vector<std::int32_t>{258, 'o'}));
  EXPECT_EQ(t.encode("hello world"),
            (std::vector<std::int32_t>{258, 'o', 259, 'o', 'r', 'l', 'd'}));
  EXPECT_EQ(t.encode("he<|eot|>he"), (std::vector<std::int32_t>{256, 260, 256}));
  EXPECT_EQ(t.decode(t.encode("hello world<|eot|>")), "hello world<|eot|>");
}

TEST(Tokenizer, InvalidUtf8TextIsEncodedByteForByte) {
  const Tokenizer t = byte_level();
  const std::string text = "a\xFF\xC3 b\xE2\x82\n\x80hell";
  const auto ids = t.encode(text);
  EXPECT_EQ(t.decode(ids), text);
  const Tokenizer s = Tokenizer::from_hf_json_text(spm_json().dump(), "", "spm.json");
  const auto sids = s.encode(text);
  EXPECT_EQ(s.decode(sids), text);
}

TEST(Tokenizer, SpmByteFallbackAndSpecials) {
  const Tokenizer t = Tokenizer::from_hf_json_text(spm_json().dump(), "", "spm.json");
  EXPECT_EQ(t.kind(), Tokenizer::Kind::kSpm);
  EXPECT_EQ(t.encode("ab a", true), (std::vector<std::int32_t>{1, 264, 262}));
  // "c" is not in the vocabulary: its byte token <0x63>.
  EXPECT_EQ(t.encode("ac"), (std::vector<std::int32_t>{262, 3 + 'c'}));
  EXPECT_EQ(t.decode(t.encode("ab ca")), "ab ca");
}

TEST(Tokenizer, GgufRoundTripEncodesTheSame) {
  for (const json& j : {byte_level_json(), spm_json()}) {
    const Tokenizer t = Tokenizer::from_hf_json_text(j.dump(), "", "t.json");
    std::vector<lowp::io::GgufKv> kv;
    t.to_gguf_kv(kv);
    const Tokenizer g = Tokenizer::from_gguf_kv(kv, "t.gguf");
    EXPECT_EQ(g.vocab_size(), t.vocab_size());
    for (const char* text : {"hello world", "ab a b\xC3\xA9 c", " abab  a", "<s>ab</s>"}) {
      EXPECT_EQ(g.encode(text), t.encode(text)) << text;
      EXPECT_EQ(g.encode(text, true), t.encode(text, true)) << text;
    }
  }
}

void expect_error(const std::string& text, const std::string& fragment) {
  try {
    Tokenizer::from_hf_json_text(text, "", "bad.json");
    FAIL() << "no error for " << fragment;
  } catch (const lowp::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("bad.json"), std::string::npos) << what;
    EXPECT_NE(what.find(fragment), std::string::npos) << what;
  }
}

TEST(Tokenizer, MalformedFilesNameTheKey) {
  expect_error("{", "not valid JSON");
  json j = byte_level_json();
  j["model"]["type"] = "Unigram";
  expect_error(j.dump(), "model.type");
  j = byte_level_json();
  j["model"]["merges"].push_back("h zz");
  expect_error(j.dump(), "merges[4]");
  j = byte_level_json();
  j["model"]["vocab"]["x1"] = 1 << 30;
  expect_error(j.dump(), "model.vocab['x1']");
  j = byte_level_json();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}};
  expect_error(j.dump(), "pre_tokenizer");
  j = byte_level_json();
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  expect_error(j.dump(), "pre_tokenizer.type");

  const Tokenizer t = byte_level();
  const std::vector<std::int32_t> bad = {t.vocab_size()};
  EXPECT_THROW(t.decode(bad), lowp::Error);

  std::vector<lowp::io::GgufKv> kv;
  t.to_gguf_kv(kv);
  for (auto& [k, v] : kv) {
    if (k == "tokenizer.ggml.tokens") v.items[200].str = "\xFF";
  }
  try {
    Tokenizer::from_gguf_kv(kv, "bad.gguf");
    FAIL();
  } catch (const lowp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.ggml.tokens[200]"), std::string::npos);
  }
}

// The number pre-tokenizer step (with_number_grouping): digit runs are cut
// into groups after the tokenizer's own split, and each group is merged on
// its own, so the ids are those of the groups encoded one by one.
TEST(Tokenizer, NumberGroupingCutsDigitRuns) {
  json j = byte_level_json();
  auto& vocab = j["model"]["vocab"];
  auto& merges = j["model"]["merges"];
  int id = 261;
  for (const char* m : {"1 2", "12 3", "4 5", "3 4", "34 5", "5 6", "56 7"}) {
    std::string a(m), b;
    b = a.substr(a.find(' ') + 1);
    a = a.substr(0, a.find(' '));
    vocab[a + b] = id++;
    merges.push_back(m);
  }
  const Tokenizer t = Tokenizer::from_hf_json_text(j.dump(), "", "digits.json");
  const auto concat = [&](std::initializer_list<const char*> parts) {
    std::vector<std::int32_t> out;
    for (const char* p : parts) {
      const auto ids = t.encode(p);
      out.insert(out.end(), ids.begin(), ids.end());
    }
    return out;
  };
  const Tokenizer r2l = t.with_number_grouping(lowp::numeracy::parse_digit_grouping("r2l3"));
  const Tokenizer l2r = t.with_number_grouping(lowp::numeracy::parse_digit_grouping("l2r3"));
  EXPECT_FALSE(t.number_grouping().has_value());
  ASSERT_TRUE(r2l.number_grouping().has_value());
  EXPECT_EQ(lowp::numeracy::digit_grouping_name(*r2l.number_grouping()), "r2l3");
  EXPECT_EQ(r2l.encode("12345"), concat({"12", "345"}));
  EXPECT_EQ(l2r.encode("12345"), concat({"123", "45"}));
  EXPECT_EQ(r2l.encode("1234567"), concat({"1", "234", "567"}));
  // GPT-2's split keeps a space with the number (" ?\p{N}+"): it stays with
  // the first group, and the text around the run is encoded as before.
  EXPECT_EQ(r2l.encode("hello 12345 world<|eot|>"),
            concat({"hello", " 12", "345", " world", "<|eot|>"}));
  EXPECT_EQ(r2l.decode(r2l.encode("a 1234.56789 b")), "a 1234.56789 b");
  EXPECT_EQ(t.encode("hello world"), r2l.encode("hello world"));
  EXPECT_THROW(t.with_number_grouping({0, lowp::numeracy::DigitDirection::kLeftToRight}),
               lowp::Error);
  // SPM: the groups are cut in the normalized text ("▁" for spaces).
  const Tokenizer spm = Tokenizer::from_hf_json_text(spm_json().dump(), "", "spm.json");
  const Tokenizer spm_r2l = spm.with_number_grouping(lowp::numeracy::parse_digit_grouping("r2l2"));
  EXPECT_EQ(spm_r2l.decode(spm_r2l.encode("ab 12345")), "ab 12345");
  EXPECT_EQ(spm_r2l.encode("ab 12345").size(), spm.encode("ab 12345").size());  // bytes either way
}

}  // namespace
