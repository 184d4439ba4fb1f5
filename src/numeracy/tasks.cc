// Numeracy task generators and the exact answer scorer
// (include/lowp/numeracy/tasks.h).
#include "lowp/numeracy/tasks.h"

#include <algorithm>
#include <array>
#include <string>
#include <utility>

#include "lowp/error.h"

namespace lowp::numeracy {
namespace {

constexpr std::array<std::pair<Task, std::string_view>, 12> kTaskNames{{
    {Task::kCopy, "copy"},
    {Task::kPlace, "place"},
    {Task::kAdd, "add"},
    {Task::kSub, "sub"},
    {Task::kMul, "mul"},
    {Task::kDiv, "div"},
    {Task::kCompare, "compare"},
    {Task::kMin, "min"},
    {Task::kMax, "max"},
    {Task::kSum, "sum"},
    {Task::kRetrieve, "retrieve"},
    {Task::kSequence, "sequence"},
}};

// A counter-based generator: item i of a task is drawn from its own stream,
// so items do not depend on how many are generated (splitmix64 steps).
class Rng {
 public:
  Rng(std::uint64_t seed, std::uint64_t task, std::uint64_t stream, std::uint64_t index)
      : state_(mix(mix(mix(seed) ^ task) ^ stream) ^ index) {}
  std::uint64_t next() { return mix(state_ += 0x9E3779B97F4A7C15ull); }
  // Uniform in [lo, hi] (hi - lo < 2^63), by rejection.
  std::int64_t uniform(std::int64_t lo, std::int64_t hi) {
    const auto span = static_cast<std::uint64_t>(hi - lo) + 1;
    const std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % span);
    std::uint64_t r = next();
    while (r >= limit) r = next();
    return lo + static_cast<std::int64_t>(r % span);
  }

 private:
  static std::uint64_t mix(std::uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  std::uint64_t state_;
};

std::int64_t pow10(int k) {
  std::int64_t p = 1;
  for (int i = 0; i < k; ++i) p *= 10;
  return p;
}

// A number with exactly `digits` digits (one digit: 0 ... 9).
std::int64_t with_digits(Rng& rng, int digits) {
  return digits == 1 ? rng.uniform(0, 9) : rng.uniform(pow10(digits - 1), pow10(digits) - 1);
}

// A number with 1 ... `digits` digits, the digit count uniform.
std::int64_t up_to_digits(Rng& rng, int digits) {
  return with_digits(rng, static_cast<int>(rng.uniform(1, digits)));
}

std::string str(std::int64_t v) { return std::to_string(v); }

std::string join(const std::vector<std::int64_t>& v, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) out += sep;
    out += str(v[i]);
  }
  return out;
}

constexpr std::array<std::string_view, 64> kNames{
    "Ada",  "Ben",  "Cal",  "Dee",  "Eli",  "Fay",  "Gus",  "Hal",  "Ivy",  "Jon", "Kay",
    "Lev",  "Max",  "Ned",  "Oda",  "Pat",  "Quin", "Ray",  "Sam",  "Tess", "Uma", "Val",
    "Wes",  "Xia",  "Yan",  "Zoe",  "Abe",  "Bea",  "Cy",   "Dot",  "Ed",   "Flo", "Gil",
    "Hope", "Ira",  "Jo",   "Kit",  "Lou",  "Mo",   "Nan",  "Otto", "Pia",  "Rex", "Sue",
    "Ty",   "Una",  "Vic",  "Wim",  "Yul",  "Zed",  "Ari",  "Bo",   "Cora", "Dan", "Emma",
    "Finn", "Gwen", "Hugo", "Iris", "Jude", "Kai",  "Lena", "Mira", "Nico",
};

// The terms of a sequence and its next term; false if a term leaves
// [-10^17, 10^17] (the caller then draws an arithmetic one).
bool geometric(Rng& rng, int digits, int terms, std::vector<std::int64_t>& out) {
  const std::int64_t limit = pow10(17);
  std::int64_t a = rng.uniform(1, std::min<std::int64_t>(9, pow10(digits) - 1));
  const std::int64_t r = rng.uniform(2, 5);
  out.clear();
  for (int i = 0; i <= terms; ++i) {
    out.push_back(a);
    if (a > limit / r) return i == terms;
    a *= r;
  }
  return true;
}

bool fibonacci_like(Rng& rng, int digits, int terms, std::vector<std::int64_t>& out) {
  const std::int64_t limit = pow10(17);
  std::int64_t x = up_to_digits(rng, digits), y = up_to_digits(rng, digits);
  out.clear();
  for (int i = 0; i <= terms; ++i) {
    out.push_back(x);
    if (y > limit - x) return i == terms;
    const std::int64_t z = x + y;
    x = y;
    y = z;
  }
  return true;
}

void check_options(Task task, const TaskOptions& o) {
  const bool narrow = task == Task::kMul || task == Task::kDiv;
  const int max_digits = narrow ? 9 : 15;
  if (o.digits < 1 || o.digits > max_digits) {
    throw Error("numeracy task " + std::string(task_name(task)) + ": --digits must be 1 ... " +
                std::to_string(max_digits) + ", not " + std::to_string(o.digits));
  }
  // A sequence needs four terms to name its rule: 1, 2, 3 continues as 4
  // (arithmetic) or 5 (Fibonacci-like).
  const int min_length = task == Task::kSequence ? 4 : 2;
  if (o.list_length < min_length || o.list_length > 64) {
    throw Error("numeracy task " + std::string(task_name(task)) + ": the list length must be " +
                std::to_string(min_length) + " ... 64, not " + std::to_string(o.list_length));
  }
}

TaskItem make_item(Task task, const TaskOptions& o, Rng& rng) {
  TaskItem it;
  it.task = task;
  const int d = o.digits;
  const int n = o.list_length;
  switch (task) {
    case Task::kCopy: {
      const std::int64_t x = with_digits(rng, d);
      it.question = "Repeat the number " + str(x) + ".";
      it.expression = "copy(" + str(x) + ")";
      it.answer = str(x);
      break;
    }
    case Task::kPlace: {
      const std::int64_t x = with_digits(rng, d);
      const int k = static_cast<int>(rng.uniform(0, d - 1));
      const std::int64_t place = pow10(k);
      it.question = "What is the digit in the " + str(place) + "s place of " + str(x) + "?";
      it.expression = "digit(" + str(x) + ", " + str(place) + ")";
      it.answer = str(x / place % 10);
      break;
    }
    case Task::kAdd:
    case Task::kSub:
    case Task::kMul: {
      const std::int64_t a = with_digits(rng, d), b = with_digits(rng, d);
      const char* word = task == Task::kAdd ? "plus" : task == Task::kSub ? "minus" : "times";
      const char op = task == Task::kAdd ? '+' : task == Task::kSub ? '-' : '*';
      it.question = "What is " + str(a) + " " + word + " " + str(b) + "?";
      it.expression = str(a) + op + str(b);
      it.answer = str(task == Task::kAdd ? a + b : task == Task::kSub ? a - b : a * b);
      break;
    }
    case Task::kDiv: {
      std::int64_t b = with_digits(rng, d);
      while (b == 0) b = with_digits(rng, d);
      const std::int64_t q = with_digits(rng, d);
      it.question = "What is " + str(b * q) + " divided by " + str(b) + "?";
      it.expression = str(b * q) + "/" + str(b);
      it.answer = str(q);
      break;
    }
    case Task::kCompare: {
      // Two numbers of the same length that differ in one digit: the
      // comparison turns on place value, not on length.
      const std::int64_t a = with_digits(rng, d);
      const int k = static_cast<int>(rng.uniform(0, d - 1));
      const std::int64_t place = pow10(k);
      const std::int64_t old_digit = a / place % 10;
      const std::int64_t low = (k == d - 1 && d > 1) ? 1 : 0;
      std::int64_t new_digit = rng.uniform(low, 8);
      if (new_digit >= old_digit) ++new_digit;
      const std::int64_t b = a + (new_digit - old_digit) * place;
      const bool swap = rng.uniform(0, 1) == 1;
      const std::int64_t x = swap ? b : a, y = swap ? a : b;
      it.question = "Which is larger, " + str(x) + " or " + str(y) + "?";
      it.expression = "max(" + str(x) + ", " + str(y) + ")";
      it.answer = str(std::max(x, y));
      break;
    }
    case Task::kMin:
    case Task::kMax:
    case Task::kSum: {
      std::vector<std::int64_t> v(static_cast<std::size_t>(n));
      for (auto& x : v) x = up_to_digits(rng, d);
      const std::string list = join(v, ", ");
      if (task == Task::kSum) {
        std::int64_t s = 0;
        for (const auto x : v) s += x;
        it.question = "What is the sum of " + list + "?";
        it.expression = "sum(" + list + ")";
        it.answer = str(s);
      } else {
        const bool lo = task == Task::kMin;
        it.question =
            std::string("What is the ") + (lo ? "smallest" : "largest") + " of " + list + "?";
        it.expression = std::string(lo ? "min(" : "max(") + list + ")";
        it.answer =
            str(lo ? *std::min_element(v.begin(), v.end()) : *std::max_element(v.begin(), v.end()));
      }
      break;
    }
    case Task::kRetrieve: {
      // n distinct names (a partial Fisher-Yates shuffle), each with a value.
      std::array<std::size_t, kNames.size()> order{};
      for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::string facts, expr;
      std::vector<std::int64_t> values;
      for (int i = 0; i < n; ++i) {
        const auto j =
            static_cast<std::size_t>(rng.uniform(i, static_cast<std::int64_t>(order.size()) - 1));
        std::swap(order[static_cast<std::size_t>(i)], order[j]);
        const std::string_view name = kNames[order[static_cast<std::size_t>(i)]];
        const std::int64_t v = up_to_digits(rng, d);
        values.push_back(v);
        facts += std::string(i ? " " : "") + std::string(name) + " has " + str(v) + " coins.";
        expr += std::string(i ? ", " : "") + std::string(name) + "=" + str(v);
      }
      const auto pick = static_cast<std::size_t>(rng.uniform(0, n - 1));
      const std::string_view who = kNames[order[pick]];
      it.question = facts + " How many coins does " + std::string(who) + " have?";
      it.expression = expr + "; " + std::string(who);
      it.answer = str(values[pick]);
      break;
    }
    case Task::kSequence: {
      std::vector<std::int64_t> terms;
      const std::int64_t kind = rng.uniform(0, 2);
      bool ok = false;
      if (kind == 1) ok = geometric(rng, d, n, terms);
      if (kind == 2) ok = fibonacci_like(rng, d, n, terms);
      if (!ok) {
        const std::int64_t a = up_to_digits(rng, d), step = up_to_digits(rng, d) + 1;
        terms.clear();
        for (int i = 0; i <= n; ++i) terms.push_back(a + step * i);
      }
      const std::int64_t next = terms.back();
      terms.pop_back();
      const std::string list = join(terms, ", ");
      it.question = "What is the next number in the sequence " + list + "?";
      it.expression = "next(" + list + ")";
      it.answer = str(next);
      break;
    }
  }
  return it;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The number starting at text[i] (a digit): digits with optional
// thousands separators (',' before exactly three digits) and an optional
// fractional part; `end` is set past it. Returns the canonical digits.
std::string read_number(std::string_view text, std::size_t i, std::size_t& end) {
  std::string int_part, frac_part;
  while (i < text.size()) {
    if (is_digit(text[i])) {
      int_part += text[i++];
      continue;
    }
    // ',' before exactly three digits separates thousands.
    const bool separator = text[i] == ',' && i + 3 < text.size() && is_digit(text[i + 1]) &&
                           is_digit(text[i + 2]) && is_digit(text[i + 3]) &&
                           (i + 4 == text.size() || !is_digit(text[i + 4]));
    if (!separator) break;
    ++i;
  }
  if (i + 1 < text.size() && text[i] == '.' && is_digit(text[i + 1])) {
    ++i;
    while (i < text.size() && is_digit(text[i])) frac_part += text[i++];
  }
  end = i;
  const std::size_t nz = int_part.find_first_not_of('0');
  int_part = nz == std::string::npos ? "0" : int_part.substr(nz);
  while (!frac_part.empty() && frac_part.back() == '0') frac_part.pop_back();
  return frac_part.empty() ? int_part : int_part + "." + frac_part;
}

// The first number of `text` (a sign directly before its first digit
// counts), canonical, or nothing.
std::optional<std::string> first_number(std::string_view text) {
  static constexpr std::string_view kMinusSign = "\xE2\x88\x92";  // U+2212
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (!is_digit(text[i])) continue;
    bool negative = false;
    if (i >= 1 && text[i - 1] == '-') negative = true;
    if (i >= kMinusSign.size() &&
        text.substr(i - kMinusSign.size(), kMinusSign.size()) == kMinusSign) {
      negative = true;
    }
    std::size_t end = 0;
    std::string digits = read_number(text, i, end);
    if (negative && digits != "0") digits.insert(0, 1, '-');
    return digits;
  }
  return std::nullopt;
}

}  // namespace

Task parse_task(std::string_view name) {
  for (const auto& [t, n] : kTaskNames) {
    if (n == name) return t;
  }
  std::string known;
  for (const auto& [t, n] : kTaskNames) known += (known.empty() ? "" : ", ") + std::string(n);
  throw Error("unknown numeracy task " + quoted(name) + " (known: " + known + ")");
}

std::string_view task_name(Task t) {
  for (const auto& [task, n] : kTaskNames) {
    if (task == t) return n;
  }
  return "?";
}

const std::vector<Task>& all_tasks() {
  static const std::vector<Task> tasks = [] {
    std::vector<Task> v;
    for (const auto& [t, n] : kTaskNames) v.push_back(t);
    return v;
  }();
  return tasks;
}

PromptStyle parse_prompt_style(std::string_view name) {
  if (name == "bare") return PromptStyle::kBare;
  if (name == "qa") return PromptStyle::kQa;
  if (name == "calc") return PromptStyle::kCalc;
  throw Error("unknown prompt style " + quoted(name) + " (known: bare, qa, calc)");
}

std::string_view prompt_style_name(PromptStyle s) {
  switch (s) {
    case PromptStyle::kBare:
      return "bare";
    case PromptStyle::kQa:
      return "qa";
    case PromptStyle::kCalc:
      return "calc";
  }
  return "?";
}

std::vector<TaskItem> generate_items(Task task, const TaskOptions& options, std::size_t n) {
  check_options(task, options);
  std::vector<TaskItem> items;
  items.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    Rng rng(options.seed, static_cast<std::uint64_t>(task), 0, i);
    items.push_back(make_item(task, options, rng));
  }
  return items;
}

std::vector<TaskItem> shot_items(Task task, const TaskOptions& options, std::size_t shots) {
  check_options(task, options);
  std::vector<TaskItem> items;
  for (std::size_t i = 0; i < shots; ++i) {
    Rng rng(options.seed, static_cast<std::uint64_t>(task), 1, i);
    items.push_back(make_item(task, options, rng));
  }
  return items;
}

std::string reference_completion(const TaskItem& item, PromptStyle style) {
  switch (style) {
    case PromptStyle::kBare:
      return item.answer;
    case PromptStyle::kQa:
      return " " + item.answer;
    case PromptStyle::kCalc:
      return " <<" + item.expression + "=" + item.answer + ">>" + item.answer;
  }
  return item.answer;
}

std::string make_prompt(const TaskItem& item, const std::vector<TaskItem>& shots,
                        PromptStyle style) {
  std::string out;
  if (style == PromptStyle::kBare) {
    for (const auto& s : shots) out += s.expression + "=" + s.answer + "\n";
    return out + item.expression + "=";
  }
  for (const auto& s : shots) {
    out += "Q: " + s.question + "\nA:" + reference_completion(s, style) + "\n\n";
  }
  return out + "Q: " + item.question + "\nA:";
}

std::optional<std::string> parse_answer(std::string_view output) {
  const std::size_t nl = output.find('\n');
  std::string_view line = output.substr(0, nl);
  // Text outside the "<<...>>" annotations, and the last annotation.
  std::string outside;
  std::string_view last_annotation;
  bool annotated = false;
  for (std::size_t i = 0; i < line.size();) {
    const std::size_t open = line.find("<<", i);
    if (open == std::string_view::npos) {
      outside += line.substr(i);
      break;
    }
    outside += line.substr(i, open - i);
    const std::size_t close = line.find(">>", open + 2);
    if (close == std::string_view::npos) break;  // an unclosed annotation reads as nothing
    last_annotation = line.substr(open + 2, close - open - 2);
    annotated = true;
    outside += ' ';
    i = close + 2;
  }
  if (auto n = first_number(outside)) return n;
  if (annotated) {
    const std::size_t eq = last_annotation.rfind('=');
    if (eq != std::string_view::npos) return first_number(last_annotation.substr(eq + 1));
  }
  return std::nullopt;
}

Score score_answer(std::string_view output, std::string_view answer) {
  Score s;
  s.parsed = parse_answer(output);
  const std::optional<std::string> expected = first_number(answer);
  s.correct = s.parsed && expected && *s.parsed == *expected;
  return s;
}

}  // namespace lowp::numeracy
