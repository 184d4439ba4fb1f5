// lowp/numeracy/digits.h — how a tokenizer cuts numbers into tokens.
//
// "Tokenization counts" (Singh & Strouse, 2024) showed that frontier models
// add far better when the digits of a number are chunked into tokens from the
// right (1|234|567, aligned with place value) than from the left (123|456|7,
// what a `\p{N}{1,3}` pre-tokenizer regex does), and that writing numbers with
// thousands separators forces the right-to-left chunks on a model whose
// tokenizer chunks from the left. This header holds those cuts as plain,
// exact functions on text:
//
//   * a digit grouping (k digits per group, left-to-right or right-to-left)
//     applied to every run of ASCII digits in a text; the pieces concatenate
//     back to the text byte for byte;
//   * the comma trick (insert / remove thousands separators);
//   * token counts per number under a grouping.
//
// nn::Tokenizer::with_number_grouping uses split_points() as a pre-tokenizer
// step, so any of lowp's tokenizers can be run with any grouping.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace lowp::numeracy {

enum class DigitDirection {
  kLeftToRight,  // 123|456|7: groups start at a run's first digit
  kRightToLeft,  // 1|234|567: groups end at the units digit
};

// k digits per group, cut in `direction`. A run of digits that follows a
// decimal point ("3.14159", the run "14159") is the fractional part of a
// number: right-to-left grouping aligns it to the decimal point instead
// (141|59), so that every group holds the same place values in every number.
struct DigitGrouping {
  int group = 3;  // 1 ... 16
  DigitDirection direction = DigitDirection::kRightToLeft;
};

// "l2r3", "r2l1", ... (direction then group size). Throws lowp::Error for
// anything else, naming it.
DigitGrouping parse_digit_grouping(std::string_view name);
std::string digit_grouping_name(DigitGrouping g);

// Byte offsets, strictly inside maximal runs of ASCII digits of `text`, where
// `g` cuts a run. Sorted ascending. Throws lowp::Error for a group size
// outside 1..16.
std::vector<std::size_t> split_points(std::string_view text, DigitGrouping g);

// `text` cut at split_points() and at the edges of every digit run: each
// digit group is one piece, the text between runs another. The pieces are
// views into `text` and concatenate to it.
std::vector<std::string_view> split_numbers(std::string_view text, DigitGrouping g);

// The comma trick: every integer part of four or more digits written with
// `separator` between groups of three from the right ("1234567.891" ->
// "1,234,567.891"; fractional digits are left alone). A number already
// written with separators (a separator between two digits, "1,234") is left
// as it is; a separator followed by a space ("5678, 9012") is not one.
std::string insert_thousands_separators(std::string_view text, char separator = ',');

// Number of groups a run of `digits` digits is cut into: ceil(digits / k)
// (the same in both directions; where the cuts fall differs).
std::size_t group_count(std::size_t digits, int group);

}  // namespace lowp::numeracy
