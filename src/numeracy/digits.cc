// Digit-group cuts of numbers in text (include/lowp/numeracy/digits.h).
#include "lowp/numeracy/digits.h"

#include <charconv>

#include "lowp/error.h"

namespace lowp::numeracy {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

void check_group(int group) {
  if (group < 1 || group > 16) {
    throw Error("digit grouping: the group size must be 1 ... 16, not " + std::to_string(group));
  }
}

// Calls f(begin, end) for every maximal run of ASCII digits of `text`, with
// `fractional` true when the run directly follows "<digit>." (the digits
// after a decimal point).
template <typename F>
void for_each_digit_run(std::string_view text, F&& f) {
  for (std::size_t i = 0; i < text.size();) {
    if (!is_digit(text[i])) {
      ++i;
      continue;
    }
    std::size_t end = i;
    while (end < text.size() && is_digit(text[end])) ++end;
    const bool fractional = i >= 2 && text[i - 1] == '.' && is_digit(text[i - 2]);
    f(i, end, fractional);
    i = end;
  }
}

}  // namespace

DigitGrouping parse_digit_grouping(std::string_view name) {
  DigitGrouping g;
  std::string_view rest;
  if (name.starts_with("l2r")) {
    g.direction = DigitDirection::kLeftToRight;
    rest = name.substr(3);
  } else if (name.starts_with("r2l")) {
    g.direction = DigitDirection::kRightToLeft;
    rest = name.substr(3);
  } else {
    throw Error("unknown digit grouping " + quoted(name) +
                " (expected l2rK or r2lK with K = 1 ... 16, e.g. r2l3)");
  }
  int k = 0;
  const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), k);
  if (ec != std::errc() || end != rest.data() + rest.size() || rest.empty() || k < 1 || k > 16) {
    throw Error("unknown digit grouping " + quoted(name) +
                " (expected l2rK or r2lK with K = 1 ... 16, e.g. r2l3)");
  }
  g.group = k;
  return g;
}

std::string digit_grouping_name(DigitGrouping g) {
  return (g.direction == DigitDirection::kLeftToRight ? "l2r" : "r2l") + std::to_string(g.group);
}

std::vector<std::size_t> split_points(std::string_view text, DigitGrouping g) {
  check_group(g.group);
  const auto k = static_cast<std::size_t>(g.group);
  std::vector<std::size_t> out;
  for_each_digit_run(text, [&](std::size_t begin, std::size_t end, bool fractional) {
    const std::size_t n = end - begin;
    // Left-to-right cuts count from the run's first digit; right-to-left
    // cuts from its last (integer part) or, for a fractional part, from the
    // decimal point, which is again the run's first digit.
    const bool from_left = g.direction == DigitDirection::kLeftToRight || fractional;
    const std::size_t first = from_left ? k : (n % k == 0 ? k : n % k);
    for (std::size_t at = first; at < n; at += k) out.push_back(begin + at);
  });
  return out;
}

std::vector<std::string_view> split_numbers(std::string_view text, DigitGrouping g) {
  std::vector<std::size_t> cuts = split_points(text, g);
  // The edges of every run are cuts too.
  std::vector<std::size_t> edges;
  for_each_digit_run(text, [&](std::size_t begin, std::size_t end, bool) {
    edges.push_back(begin);
    edges.push_back(end);
  });
  std::vector<std::size_t> all;
  all.reserve(cuts.size() + edges.size() + 2);
  std::size_t ci = 0, ei = 0;
  while (ci < cuts.size() || ei < edges.size()) {
    if (ei == edges.size() || (ci < cuts.size() && cuts[ci] < edges[ei])) {
      all.push_back(cuts[ci++]);
    } else {
      all.push_back(edges[ei++]);
    }
  }
  all.push_back(text.size());
  std::vector<std::string_view> pieces;
  std::size_t start = 0;
  for (const std::size_t at : all) {
    if (at > start) pieces.push_back(text.substr(start, at - start));
    start = at;
  }
  return pieces;
}

std::string insert_thousands_separators(std::string_view text, char separator) {
  std::string out;
  out.reserve(text.size() + text.size() / 3);
  std::size_t copied = 0;
  for_each_digit_run(text, [&](std::size_t begin, std::size_t end, bool fractional) {
    const std::size_t n = end - begin;
    // "1,234": a separator between two digits means the number is written
    // with separators already.
    const bool touches_separator =
        (begin >= 2 && text[begin - 1] == separator && is_digit(text[begin - 2])) ||
        (end + 1 < text.size() && text[end] == separator && is_digit(text[end + 1]));
    if (fractional || n < 4 || touches_separator) return;
    out.append(text.substr(copied, begin - copied));
    const std::size_t first = n % 3 == 0 ? 3 : n % 3;
    out.append(text.substr(begin, first));
    for (std::size_t at = first; at < n; at += 3) {
      out.push_back(separator);
      out.append(text.substr(begin + at, 3));
    }
    copied = end;
  });
  out.append(text.substr(copied));
  return out;
}

std::size_t group_count(std::size_t digits, int group) {
  check_group(group);
  const auto k = static_cast<std::size_t>(group);
  return (digits + k - 1) / k;
}

}  // namespace lowp::numeracy
