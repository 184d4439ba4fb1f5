// Digit-group cuts (lowp/numeracy/digits.h): hand-written cases, the pieces
// tiling the text, and an independent definition of the cuts (place values)
// checked on every number up to 10^6 and on random long runs.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "lowp/error.h"
#include "lowp/numeracy/digits.h"

namespace {

using lowp::numeracy::DigitDirection;
using lowp::numeracy::DigitGrouping;
using lowp::numeracy::parse_digit_grouping;
using lowp::numeracy::split_numbers;
using lowp::numeracy::split_points;

std::vector<std::string> pieces(std::string_view text, std::string_view grouping) {
  std::vector<std::string> out;
  for (const auto p : split_numbers(text, parse_digit_grouping(grouping))) out.emplace_back(p);
  return out;
}

using V = std::vector<std::string>;

TEST(Digits, HandWrittenCuts) {
  EXPECT_EQ(pieces("1234567", "l2r3"), (V{"123", "456", "7"}));
  EXPECT_EQ(pieces("1234567", "r2l3"), (V{"1", "234", "567"}));
  EXPECT_EQ(pieces("1234567", "r2l2"), (V{"1", "23", "45", "67"}));
  EXPECT_EQ(pieces("1234567", "l2r1"), (V{"1", "2", "3", "4", "5", "6", "7"}));
  EXPECT_EQ(pieces("123", "r2l3"), (V{"123"}));
  EXPECT_EQ(pieces("x=12345+678;", "r2l3"), (V{"x=", "12", "345", "+", "678", ";"}));
  EXPECT_EQ(pieces("x=12345+678;", "l2r3"), (V{"x=", "123", "45", "+", "678", ";"}));
  // The fractional part is aligned to the decimal point in both directions.
  EXPECT_EQ(pieces("1234.56789", "r2l3"), (V{"1", "234", ".", "567", "89"}));
  EXPECT_EQ(pieces("1234.56789", "l2r3"), (V{"123", "4", ".", "567", "89"}));
  // A dot after a non-digit does not start a fractional part.
  EXPECT_EQ(pieces("v.12345", "r2l3"), (V{"v.", "12", "345"}));
  EXPECT_EQ(pieces("", "r2l3"), V{});
  EXPECT_EQ(pieces("no digits", "r2l3"), (V{"no digits"}));
  // Non-ASCII digits are not digits here (the tokenizers' regexes decide).
  EXPECT_EQ(pieces("\xD9\xA1\xD9\xA2\xD9\xA3\xD9\xA4", "r2l1").size(), 1u);
}

// The cut after digit i of an n-digit integer part, from its place value:
// right-to-left groups end where the place value 10^p has p % k == 0, left-
// to-right ones where the number of digits so far is a multiple of k.
std::vector<std::size_t> cuts_by_place(std::size_t n, std::size_t k, bool r2l) {
  std::vector<std::size_t> out;
  for (std::size_t i = 1; i < n; ++i) {
    const std::size_t place = n - i;  // digits right of the cut
    if (r2l ? place % k == 0 : i % k == 0) out.push_back(i);
  }
  return out;
}

TEST(Digits, CutsMatchPlaceValuesForEveryNumberBelowAMillion) {
  for (int k = 1; k <= 4; ++k) {
    for (const bool r2l : {false, true}) {
      const DigitGrouping g{k, r2l ? DigitDirection::kRightToLeft : DigitDirection::kLeftToRight};
      for (int v = 0; v < 1000000; v += (k == 3 ? 1 : 7)) {
        const std::string s = std::to_string(v);
        ASSERT_EQ(split_points(s, g), cuts_by_place(s.size(), static_cast<std::size_t>(k), r2l))
            << s << " k=" << k << " r2l=" << r2l;
      }
    }
  }
}

TEST(Digits, PiecesTileTheTextAndLongRunsCutByPlace) {
  std::mt19937_64 rng(7);
  const std::string alphabet = "0123456789 .,+-=abc";
  for (int trial = 0; trial < 2000; ++trial) {
    std::string text;
    const auto len = rng() % 60;
    for (std::size_t i = 0; i < len; ++i) text += alphabet[rng() % alphabet.size()];
    for (const char* g : {"l2r1", "l2r2", "l2r3", "r2l2", "r2l3", "r2l5"}) {
      std::string joined;
      for (const auto p : split_numbers(text, parse_digit_grouping(g))) {
        ASSERT_FALSE(p.empty());
        joined += p;
      }
      ASSERT_EQ(joined, text) << g;
    }
  }
  const std::string run(40, '7');
  EXPECT_EQ(split_points(run, parse_digit_grouping("r2l3")), cuts_by_place(40, 3, true));
  EXPECT_EQ(split_points(run, parse_digit_grouping("l2r3")), cuts_by_place(40, 3, false));
}

TEST(Digits, CommaTrick) {
  using lowp::numeracy::insert_thousands_separators;
  EXPECT_EQ(insert_thousands_separators("1234567"), "1,234,567");
  EXPECT_EQ(insert_thousands_separators("What is 12345 plus 678?"), "What is 12,345 plus 678?");
  EXPECT_EQ(insert_thousands_separators("1234.56789"), "1,234.56789");
  EXPECT_EQ(insert_thousands_separators("1,234 and 5678, 9012"), "1,234 and 5,678, 9,012");
  EXPECT_EQ(insert_thousands_separators("100 1000 -2000"), "100 1,000 -2,000");
  EXPECT_EQ(insert_thousands_separators("1000", ' '), "1 000");
  EXPECT_EQ(insert_thousands_separators(""), "");
}

TEST(Digits, GroupCountsAndNames) {
  using lowp::numeracy::digit_grouping_name;
  using lowp::numeracy::group_count;
  EXPECT_EQ(group_count(7, 3), 3u);
  EXPECT_EQ(group_count(6, 3), 2u);
  EXPECT_EQ(group_count(0, 3), 0u);
  EXPECT_EQ(group_count(1, 1), 1u);
  EXPECT_EQ(digit_grouping_name(parse_digit_grouping("r2l3")), "r2l3");
  EXPECT_EQ(digit_grouping_name(parse_digit_grouping("l2r16")), "l2r16");
  for (const char* bad : {"r2l0", "r2l17", "r2l", "x2l3", "r2l3x", "", "l2r-1"}) {
    EXPECT_THROW(parse_digit_grouping(bad), lowp::Error) << bad;
  }
  EXPECT_THROW(split_points("12", DigitGrouping{0, DigitDirection::kLeftToRight}), lowp::Error);
}

}  // namespace
