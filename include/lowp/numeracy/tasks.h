// lowp/numeracy/tasks.h — numeracy tasks for language models and an exact
// scorer for their answers.
//
// Each task is a seeded, reproducible generator of items (a question, the
// same question as a calculator expression, and the exact answer), in the
// spirit of NumericBench (number recognition, arithmetic, comparison,
// aggregation over lists, contextual retrieval) and integer-sequence tasks.
// An item is shown to a model in one of three prompt styles:
//
//   bare   the expression and "=": "48213+1234=" (what a small arithmetic
//          model is trained on); shots are "expr=answer" lines;
//   qa     "Q: What is 48213 plus 1234?\nA:" after `shots` solved items;
//   calc   qa whose solved shots carry a calculator annotation, as in
//          GSM8K: "A: <<48213+1234=49447>>49447".
//
// The scorer reads the first number of the model's answer (up to its first
// newline; calculator annotations are skipped), accepting a sign, thousands
// separators and leading zeros, and compares it with the answer exactly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lowp::numeracy {

enum class Task {
  kCopy,      // repeat a number
  kPlace,     // the digit at a place value (number recognition)
  kAdd,       // a + b
  kSub,       // a - b (may be negative)
  kMul,       // a * b
  kDiv,       // a / b, exact (a is generated as b * q)
  kCompare,   // the larger of two numbers that differ in one digit
  kMin,       // the smallest of a list
  kMax,       // the largest of a list
  kSum,       // the sum of a list
  kRetrieve,  // a value named in a context of name/value facts
  kSequence,  // the next term of an arithmetic, geometric or Fibonacci-like sequence
};

enum class PromptStyle { kBare, kQa, kCalc };

// "copy", "place", "add", "sub", "mul", "div", "compare", "min", "max",
// "sum", "retrieve", "sequence"; parse throws lowp::Error naming the
// unknown name and listing the known ones.
Task parse_task(std::string_view name);
std::string_view task_name(Task t);
const std::vector<Task>& all_tasks();
PromptStyle parse_prompt_style(std::string_view name);
std::string_view prompt_style_name(PromptStyle s);

struct TaskOptions {
  int digits = 3;          // operand digits (lists: 1 ... digits each)
  int list_length = 5;     // min / max / sum / retrieve / sequence terms shown
  std::uint64_t seed = 1;  // items depend only on (task, options, index)
};

struct TaskItem {
  Task task = Task::kAdd;
  std::string question;    // "What is 48213 plus 1234?"
  std::string expression;  // "48213+1234"
  std::string answer;      // "49447": an integer, canonical (no separators, "-" sign)
};

// Items 0 .. n-1 of a task. Throws lowp::Error for digits outside what the
// task can answer exactly in 64-bit integers (1 ... 15; mul and div 1 ... 9)
// or a list length outside 2 ... 64 (sequences: 4 ... 64).
std::vector<TaskItem> generate_items(Task task, const TaskOptions& options, std::size_t n);

// The prompt for `item`: `shots` solved items (drawn from the same task with
// the seed's shot stream, never the item itself) then the item's question.
std::string make_prompt(const TaskItem& item, const std::vector<TaskItem>& shots,
                        PromptStyle style);
// What the model should write after the prompt (the reference completion).
std::string reference_completion(const TaskItem& item, PromptStyle style);
// Solved items for the prompts of `task`: a stream of its own, disjoint in
// seed from generate_items(task, options, ...).
std::vector<TaskItem> shot_items(Task task, const TaskOptions& options, std::size_t shots);

struct Score {
  bool correct = false;
  std::optional<std::string> parsed;  // the canonical number read, if any
};

// The first number in `output` up to its first newline, calculator
// annotations "<<...>>" skipped (if the line holds only annotations, the
// result after the last '=' inside the last one is read). Canonical: no
// separators or leading zeros, "-" for negatives, "0" for zero.
std::optional<std::string> parse_answer(std::string_view output);
Score score_answer(std::string_view output, std::string_view answer);

}  // namespace lowp::numeracy
