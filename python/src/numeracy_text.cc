// lowp.split_numbers, lowp.insert_thousands_separators, lowp.numeracy_tasks,
// lowp.parse_answer, lowp.score_answer: number tokenization and the numeracy
// tasks of lowp/numeracy (the same code as `lowp numeracy digits|tasks`).
#include <string>
#include <vector>

#include "arrays.h"
#include "lowp/error.h"
#include "lowp/numeracy/digits.h"
#include "lowp/numeracy/tasks.h"

namespace lowp::python {

void add_numeracy_text(py::module_& m) {
  namespace nm = lowp::numeracy;
  m.def(
      "split_numbers",
      [](const std::string& text, const std::string& grouping) {
        std::vector<std::string> out;
        for (const auto p : nm::split_numbers(text, nm::parse_digit_grouping(grouping))) {
          out.emplace_back(p);
        }
        return out;
      },
      py::arg("text"), py::arg("grouping") = "r2l3",
      "split_numbers(text, grouping='r2l3') -> list[str]\n\n"
      "The text cut into pieces: every run of ASCII digits in groups of K digits, left to\n"
      "right ('l2rK') or right to left ('r2lK', fractional digits aligned to the decimal\n"
      "point); the text between runs as it is. The pieces join back to the text.");
  m.def(
      "insert_thousands_separators",
      [](const std::string& text, const std::string& separator) {
        if (separator.size() != 1)
          throw lowp::Error("separator must be one character, not " + quoted(separator));
        return nm::insert_thousands_separators(text, separator[0]);
      },
      py::arg("text"), py::arg("separator") = ",",
      "insert_thousands_separators(text, separator=',') -> str\n\n"
      "The comma trick: integer parts of four or more digits written in groups of three\n"
      "from the right ('1234567' -> '1,234,567').");
  m.def(
      "numeracy_tasks",
      [](const std::string& task, std::size_t n, int digits, int list_length, std::uint64_t seed,
         const std::string& style, int shots, bool comma) {
        nm::TaskOptions o;
        o.digits = digits;
        o.list_length = list_length;
        o.seed = seed;
        const nm::Task t = nm::parse_task(task);
        const nm::PromptStyle s = nm::parse_prompt_style(style);
        if (shots < 0) shots = s == nm::PromptStyle::kBare ? 0 : 3;
        const auto shot_items = nm::shot_items(t, o, static_cast<std::size_t>(shots));
        py::list out;
        for (const auto& item : nm::generate_items(t, o, n)) {
          std::string prompt = nm::make_prompt(item, shot_items, s);
          if (comma) prompt = nm::insert_thousands_separators(prompt);
          py::dict d;
          d["task"] = std::string(nm::task_name(t));
          d["prompt"] = prompt;
          d["answer"] = item.answer;
          d["question"] = item.question;
          d["expression"] = item.expression;
          out.append(d);
        }
        return out;
      },
      py::arg("task"), py::arg("n"), py::arg("digits") = 3, py::arg("list_length") = 5,
      py::arg("seed") = 1, py::arg("style") = "qa", py::arg("shots") = -1, py::arg("comma") = false,
      "numeracy_tasks(task, n, digits=3, list_length=5, seed=1, style='qa', shots=-1,\n"
      "               comma=False) -> list[dict]\n\n"
      "Items 0..n-1 of a numeracy task (copy, place, add, sub, mul, div, compare, min, max,\n"
      "sum, retrieve, sequence) with their prompt ('bare', 'qa' or 'calc' style; shots -1:\n"
      "0 for bare, 3 otherwise) and exact answer, as `lowp numeracy tasks` prints them.");
  m.def(
      "parse_answer", [](const std::string& output) { return nm::parse_answer(output); },
      py::arg("output"),
      "parse_answer(output) -> str | None\n\n"
      "The first number of the output's first line (calculator annotations <<...>> skipped;\n"
      "signs, thousands separators and leading zeros accepted), canonical.");
  m.def(
      "score_answer",
      [](const std::string& output, const std::string& answer) {
        return nm::score_answer(output, answer).correct;
      },
      py::arg("output"), py::arg("answer"),
      "score_answer(output, answer) -> bool\n\n"
      "Whether parse_answer(output) is exactly the answer.");
}

}  // namespace lowp::python
