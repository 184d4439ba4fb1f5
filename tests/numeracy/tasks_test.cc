// Numeracy tasks (lowp/numeracy/tasks.h): every generated answer checked by
// an independent evaluator of the item's calculator expression, the items'
// reproducibility, the prompt styles, and the scorer on hand-written answers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "lowp/error.h"
#include "lowp/numeracy/tasks.h"

namespace {

namespace nm = lowp::numeracy;
using nm::Task;

std::vector<std::int64_t> numbers_in(const std::string& s) {
  std::vector<std::int64_t> out;
  for (std::size_t i = 0; i < s.size();) {
    if (s[i] >= '0' && s[i] <= '9') {
      std::size_t end = i;
      while (end < s.size() && s[end] >= '0' && s[end] <= '9') ++end;
      out.push_back(std::stoll(s.substr(i, end - i)));
      i = end;
    } else {
      ++i;
    }
  }
  return out;
}

std::size_t digit_count(std::int64_t v) { return std::to_string(v).size(); }

// The answer an item's expression evaluates to, computed from the expression
// text alone.
std::int64_t evaluate(Task task, const std::string& expr) {
  const std::vector<std::int64_t> v = numbers_in(expr);
  switch (task) {
    case Task::kCopy:
      return v.at(0);
    case Task::kPlace: {
      std::int64_t x = v.at(0);
      for (std::int64_t p = v.at(1); p > 1; p /= 10) x /= 10;
      return x % 10;
    }
    case Task::kAdd:
      return v.at(0) + v.at(1);
    case Task::kSub:
      return v.at(0) - v.at(1);
    case Task::kMul:
      return v.at(0) * v.at(1);
    case Task::kDiv:
      return v.at(0) / v.at(1);
    case Task::kCompare:
    case Task::kMax:
      return *std::max_element(v.begin(), v.end());
    case Task::kMin:
      return *std::min_element(v.begin(), v.end());
    case Task::kSum:
      return std::accumulate(v.begin(), v.end(), std::int64_t{0});
    case Task::kRetrieve: {
      const std::string who = expr.substr(expr.rfind("; ") + 2);
      const std::size_t at = expr.find(who + "=");
      return numbers_in(expr.substr(at + who.size() + 1)).at(0);
    }
    case Task::kSequence: {
      // The next term of whichever rule fits every shown term.
      const std::size_t n = v.size();
      const std::int64_t d = v[n - 1] - v[n - 2];
      bool arithmetic = true, geometric = v[0] != 0, fib = true;
      for (std::size_t i = 1; i < n; ++i) arithmetic &= v[i] - v[i - 1] == d;
      for (std::size_t i = 1; i < n && geometric; ++i) {
        std::int64_t next = 0;
        geometric = !__builtin_mul_overflow(v[i - 1], v[1] / v[0], &next) && v[i] == next;
      }
      for (std::size_t i = 2; i < n; ++i) fib &= v[i] == v[i - 1] + v[i - 2];
      if (arithmetic) return v[n - 1] + d;
      if (geometric) return v[n - 1] * (v[1] / v[0]);
      EXPECT_TRUE(fib) << expr;
      return v[n - 1] + v[n - 2];
    }
  }
  return 0;
}

TEST(Tasks, EveryAnswerIsWhatItsExpressionEvaluatesTo) {
  for (const Task task : nm::all_tasks()) {
    for (const int digits : {1, 3, 6, 9}) {
      nm::TaskOptions o;
      o.digits = digits;
      o.list_length = digits == 1 ? (task == Task::kSequence ? 4 : 2) : 5;
      o.seed = 11;
      for (const auto& item : nm::generate_items(task, o, 300)) {
        ASSERT_EQ(item.task, task);
        ASSERT_EQ(item.answer, std::to_string(evaluate(task, item.expression)))
            << nm::task_name(task) << ": " << item.expression;
        // The question names the same numbers as the expression.
        ASSERT_EQ(numbers_in(item.question).size() >= numbers_in(item.expression).size() - 1, true)
            << item.question;
        if (task == Task::kAdd || task == Task::kSub || task == Task::kMul ||
            task == Task::kCompare || task == Task::kCopy) {
          const auto v = numbers_in(item.expression);
          for (std::size_t i = 0; i < (task == Task::kCopy ? 1u : 2u); ++i) {
            ASSERT_EQ(digit_count(v[i]), static_cast<std::size_t>(digits)) << item.expression;
          }
        }
        if (task == Task::kCompare) {
          const auto v = numbers_in(item.expression);
          ASSERT_NE(v[0], v[1]);
          int differing = 0;
          const std::string a = std::to_string(v[0]), b = std::to_string(v[1]);
          for (std::size_t i = 0; i < a.size(); ++i) differing += a[i] != b[i];
          ASSERT_EQ(differing, 1) << item.expression;
        }
      }
    }
  }
}

TEST(Tasks, ItemsAreReproducibleAndIndependentOfTheCount) {
  nm::TaskOptions o;
  o.digits = 5;
  o.seed = 3;
  const auto ten = nm::generate_items(Task::kAdd, o, 10);
  const auto five = nm::generate_items(Task::kAdd, o, 5);
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(ten[i].expression, five[i].expression);
  EXPECT_EQ(nm::generate_items(Task::kAdd, o, 10)[9].expression, ten[9].expression);
  o.seed = 4;
  EXPECT_NE(nm::generate_items(Task::kAdd, o, 1)[0].expression, ten[0].expression);
  // Shots are another stream: none is one of the first items.
  o.seed = 3;
  for (const auto& s : nm::shot_items(Task::kAdd, o, 3)) {
    for (const auto& it : ten) EXPECT_NE(s.expression, it.expression);
  }
}

TEST(Tasks, PromptStyles) {
  nm::TaskItem item{Task::kAdd, "What is 12 plus 34?", "12+34", "46"};
  nm::TaskItem shot{Task::kAdd, "What is 5 plus 6?", "5+6", "11"};
  EXPECT_EQ(nm::make_prompt(item, {}, nm::PromptStyle::kBare), "12+34=");
  EXPECT_EQ(nm::make_prompt(item, {shot}, nm::PromptStyle::kBare), "5+6=11\n12+34=");
  EXPECT_EQ(nm::make_prompt(item, {shot}, nm::PromptStyle::kQa),
            "Q: What is 5 plus 6?\nA: 11\n\nQ: What is 12 plus 34?\nA:");
  EXPECT_EQ(nm::make_prompt(item, {shot}, nm::PromptStyle::kCalc),
            "Q: What is 5 plus 6?\nA: <<5+6=11>>11\n\nQ: What is 12 plus 34?\nA:");
  for (const auto style : {nm::PromptStyle::kBare, nm::PromptStyle::kQa, nm::PromptStyle::kCalc}) {
    EXPECT_TRUE(nm::score_answer(nm::reference_completion(item, style), item.answer).correct);
    EXPECT_EQ(nm::parse_prompt_style(nm::prompt_style_name(style)), style);
  }
  EXPECT_THROW(nm::parse_prompt_style("chat"), lowp::Error);
}

TEST(Tasks, ScorerReadsTheFirstNumberExactly) {
  const auto parsed = [](std::string_view s) { return nm::parse_answer(s).value_or("<none>"); };
  EXPECT_EQ(parsed("49447"), "49447");
  EXPECT_EQ(parsed(" 49,447 coins"), "49447");
  EXPECT_EQ(parsed("The answer is 12,345,678."), "12345678");
  EXPECT_EQ(parsed("1,23"), "1");  // not a thousands separator
  EXPECT_EQ(parsed("1,2345"), "1");
  EXPECT_EQ(parsed("007"), "7");
  EXPECT_EQ(parsed("0"), "0");
  EXPECT_EQ(parsed("-0"), "0");
  EXPECT_EQ(parsed(" -12"), "-12");
  EXPECT_EQ(parsed("\xE2\x88\x92"
                   "5"),
            "-5");  // U+2212 MINUS SIGN
  EXPECT_EQ(parsed("12.50"), "12.5");
  EXPECT_EQ(parsed("12.0"), "12");
  EXPECT_EQ(parsed("12."), "12");
  EXPECT_EQ(parsed("no number\n42"), "<none>");  // only the first line
  EXPECT_EQ(parsed("42\n43"), "42");
  EXPECT_EQ(parsed(" <<12+34=46>>46"), "46");
  EXPECT_EQ(parsed(" <<12+34=46>>"), "46");    // the annotation's result
  EXPECT_EQ(parsed(" <<12+34=46>>47"), "47");  // the text after it wins
  EXPECT_EQ(parsed(" <<12+34=4"), "<none>");   // unclosed
  EXPECT_EQ(parsed(""), "<none>");
  EXPECT_TRUE(nm::score_answer(" 1,000", "1000").correct);
  EXPECT_TRUE(nm::score_answer("-7 apples", "-7").correct);
  EXPECT_FALSE(nm::score_answer("7", "-7").correct);
  EXPECT_FALSE(nm::score_answer("4944", "49447").correct);
  EXPECT_FALSE(nm::score_answer("494470", "49447").correct);
  EXPECT_FALSE(nm::score_answer("", "0").correct);
}

TEST(Tasks, BadOptionsAndNames) {
  nm::TaskOptions o;
  o.digits = 10;
  EXPECT_THROW(nm::generate_items(Task::kMul, o, 1), lowp::Error);
  EXPECT_NO_THROW(nm::generate_items(Task::kAdd, o, 1));
  o.digits = 16;
  EXPECT_THROW(nm::generate_items(Task::kAdd, o, 1), lowp::Error);
  o.digits = 0;
  EXPECT_THROW(nm::generate_items(Task::kCopy, o, 1), lowp::Error);
  o.digits = 3;
  o.list_length = 1;
  EXPECT_THROW(nm::generate_items(Task::kSum, o, 1), lowp::Error);
  o.list_length = 65;
  EXPECT_THROW(nm::generate_items(Task::kRetrieve, o, 1), lowp::Error);
  o.list_length = 3;
  EXPECT_THROW(nm::generate_items(Task::kSequence, o, 1), lowp::Error);
  EXPECT_NO_THROW(nm::generate_items(Task::kMin, o, 1));
  for (const Task t : nm::all_tasks()) EXPECT_EQ(nm::parse_task(nm::task_name(t)), t);
  try {
    nm::parse_task("addition");
    FAIL();
  } catch (const lowp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("known: copy, place, add"), std::string::npos);
  }
}

TEST(Tasks, LargestOperandsStayExact) {
  nm::TaskOptions o;
  o.digits = 15;
  o.list_length = 64;
  for (const Task t : {Task::kSum, Task::kSequence, Task::kAdd, Task::kSub}) {
    for (const auto& item : nm::generate_items(t, o, 200)) {
      ASSERT_EQ(item.answer, std::to_string(evaluate(t, item.expression))) << item.expression;
    }
  }
  o.digits = 9;
  for (const auto& item : nm::generate_items(Task::kMul, o, 200)) {
    ASSERT_EQ(item.answer, std::to_string(evaluate(Task::kMul, item.expression)));
  }
}

}  // namespace
