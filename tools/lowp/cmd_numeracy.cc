// `lowp numeracy ...`: how models see numbers (lowp/numeracy).
//
//   digits TEXT [--grouping G] [--tokenizer MODEL]   digit groups, and a
//          model's tokens with and without the grouping
//   tasks  --task T [--digits N] [-n N] [--style S]   numeracy items as JSON lines
//   score  FILE.jsonl                                 accuracy of answers given
//   eval   [MODEL] [--tasks ...] [--schemes ...]      a model's accuracy per task,
//          tokenization scheme and weight format (greedy decoding)
#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowp/error.h"
#include "lowp/nn/transformer.h"
#include "lowp/numeracy/digits.h"
#include "lowp/numeracy/tasks.h"
#include "lowp/storage/packed_matrix.h"
#include "models.h"

namespace lowp::cli {
namespace {

namespace nm = lowp::numeracy;
using nlohmann::json;

std::vector<std::string> split_list(const std::string& s, const char* option) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) throw Error(std::string(option) + ": empty entry in " + quoted(s));
    out.push_back(item);
  }
  if (out.empty()) throw Error(std::string(option) + ": empty list");
  return out;
}

// A tokenization scheme of `eval`: the model's own tokenizer ("default"),
// with its digit runs regrouped ("l2r3", "r2l3", ...), or the comma trick
// (numbers in the prompt written with thousands separators).
struct Scheme {
  std::string name;
  std::optional<nm::DigitGrouping> grouping;
  bool comma = false;
};

Scheme parse_scheme(const std::string& name) {
  if (name == "default") return {name, std::nullopt, false};
  if (name == "comma") return {name, std::nullopt, true};
  if (!name.starts_with("l2r") && !name.starts_with("r2l")) {
    throw Error("unknown tokenization scheme " + quoted(name) +
                " (known: default, comma, l2rK, r2lK with K = 1 ... 16)");
  }
  return {name, nm::parse_digit_grouping(name), false};
}

// ---- digits ----

struct DigitsArgs {
  std::string text;
  std::string file;
  std::string grouping = "r2l3";
  std::string tokenizer;
  bool json = false;
};

// Tokens per number of a text under each scheme: every digit run (with its
// fractional part, "3.14") encoded on its own; without a tokenizer, the
// number of digit groups (and of characters, for the comma trick).
void run_digit_stats(const DigitsArgs& a, const std::optional<nn::Tokenizer>& tok) {
  std::ifstream in(a.file, std::ios::binary);
  if (!in) throw Error("numeracy digits: cannot open " + quoted(a.file));
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  // The numbers: digit runs, a run after "<digit>." joined to the one before.
  std::vector<std::string> numbers;
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] < '0' || text[i] > '9') {
      ++i;
      continue;
    }
    std::size_t end = i;
    const auto digits_from = [&](std::size_t at) {
      while (at < text.size() && text[at] >= '0' && text[at] <= '9') ++at;
      return at;
    };
    end = digits_from(end);
    if (end + 1 < text.size() && text[end] == '.' && text[end + 1] >= '0' && text[end + 1] <= '9') {
      end = digits_from(end + 1);
    }
    numbers.push_back(text.substr(i, end - i));
    i = end;
  }
  if (numbers.empty()) throw Error("numeracy digits: " + quoted(a.file) + " has no numbers");
  std::vector<std::string> schemes = {"default", "l2r1", "l2r2", "l2r3", "r2l2", "r2l3", "comma"};
  json rows = json::array();
  for (const auto& name : schemes) {
    const Scheme scheme = parse_scheme(name);
    std::optional<nn::Tokenizer> t = tok;
    if (t && scheme.grouping) t = t->with_number_grouping(*scheme.grouping);
    std::size_t total = 0, most = 0;
    for (const auto& n : numbers) {
      const std::string shown = scheme.comma ? nm::insert_thousands_separators(n) : n;
      std::size_t count = 0;
      if (t) {
        count = t->encode(shown).size();
      } else if (scheme.grouping) {
        count = nm::split_numbers(shown, *scheme.grouping).size();
      } else {
        count = shown.size();  // bytes
      }
      total += count;
      most = std::max(most, count);
    }
    rows.push_back(
        {{"scheme", name},
         {"numbers", numbers.size()},
         {"tokens", total},
         {"tokens_per_number", static_cast<double>(total) / static_cast<double>(numbers.size())},
         {"max_tokens", most}});
  }
  if (a.json) {
    fmt::print("{}\n", rows.dump(2));
    return;
  }
  fmt::print("{}: {} numbers, tokens per number ({})\n", a.file, numbers.size(),
             tok ? "the tokenizer's tokens" : "digit groups; bytes for default and comma");
  fmt::print("{:<8} {:>10} {:>8}\n", "scheme", "mean", "max");
  for (const auto& r : rows) {
    fmt::print("{:<8} {:>10.3f} {:>8}\n", r["scheme"].get<std::string>(),
               r["tokens_per_number"].get<double>(), r["max_tokens"].get<std::size_t>());
  }
}

void run_digits(const DigitsArgs& a) {
  const nm::DigitGrouping g = nm::parse_digit_grouping(a.grouping);
  if (a.text.empty() == a.file.empty()) {
    throw Error("numeracy digits: give either TEXT or --file (not both)");
  }
  if (!a.file.empty()) {
    std::optional<nn::Tokenizer> tok;
    if (!a.tokenizer.empty()) {
      tok = load_model_and_tokenizer(a.tokenizer).tokenizer;
      if (!tok) {
        throw Error("numeracy digits: " + quoted(a.tokenizer) + " has no tokenizer (byte-level)");
      }
    }
    return run_digit_stats(a, tok);
  }
  std::vector<std::string> pieces;
  for (const auto p : nm::split_numbers(a.text, g)) pieces.emplace_back(p);
  json out = {{"grouping", nm::digit_grouping_name(g)},
              {"pieces", pieces},
              {"comma", nm::insert_thousands_separators(a.text)}};
  if (!a.tokenizer.empty()) {
    const ModelAndTokenizer m = load_model_and_tokenizer(a.tokenizer);
    if (!m.tokenizer) {
      throw Error("numeracy digits: " + quoted(a.tokenizer) + " has no tokenizer (byte-level)");
    }
    const auto show = [&](const nn::Tokenizer& t, const std::string& text) {
      json toks = json::array();
      for (const std::int32_t id : t.encode(text)) {
        toks.push_back(t.decode(std::span<const std::int32_t>(&id, 1)));
      }
      return toks;
    };
    const nn::Tokenizer grouped = m.tokenizer->with_number_grouping(g);
    out["tokens"] = {{"default", show(*m.tokenizer, a.text)},
                     {nm::digit_grouping_name(g), show(grouped, a.text)},
                     {"comma", show(*m.tokenizer, nm::insert_thousands_separators(a.text))}};
  }
  if (a.json) {
    fmt::print("{}\n", out.dump(2));
    return;
  }
  const auto bars = [](const json& list) {
    std::string s;
    for (const auto& p : list) s += (s.empty() ? "" : "|") + p.get<std::string>();
    return s;
  };
  fmt::print("{:<10} {}\n", out["grouping"].get<std::string>(), bars(out["pieces"]));
  fmt::print("{:<10} {}\n", "comma", out["comma"].get<std::string>());
  if (out.contains("tokens")) {
    for (const auto& [name, toks] : out["tokens"].items()) {
      fmt::print("tokens {:<7} {} ({} tokens)\n", name, bars(toks), toks.size());
    }
  }
}

// ---- tasks ----

struct TaskArgs {
  std::string tasks = "add";
  int digits = 3;
  int list_length = 5;
  int count = 10;
  std::uint64_t seed = 1;
  std::string style = "qa";
  int shots = -1;  // -1: 0 for bare, 3 otherwise
  bool comma = false;
};

int shots_for(const TaskArgs& a, nm::PromptStyle style) {
  if (a.shots >= 0) return a.shots;
  return style == nm::PromptStyle::kBare ? 0 : 3;
}

std::vector<nm::Task> parse_tasks(const std::string& list) {
  if (list == "all") return nm::all_tasks();
  std::vector<nm::Task> out;
  for (const auto& name : split_list(list, "--tasks")) out.push_back(nm::parse_task(name));
  return out;
}

nm::TaskOptions task_options(const TaskArgs& a) {
  nm::TaskOptions o;
  o.digits = a.digits;
  o.list_length = a.list_length;
  o.seed = a.seed;
  return o;
}

void check_task_args(const TaskArgs& a) {
  if (a.count < 1) throw Error("numeracy: -n must be >= 1");
  if (a.shots > 64) throw Error("numeracy: --shots must be <= 64");
}

void run_tasks(const TaskArgs& a) {
  check_task_args(a);
  const nm::PromptStyle style = nm::parse_prompt_style(a.style);
  const nm::TaskOptions o = task_options(a);
  const auto tasks = parse_tasks(a.tasks);
  std::string out;
  for (const nm::Task task : tasks) {
    const auto shots = nm::shot_items(task, o, static_cast<std::size_t>(shots_for(a, style)));
    for (const auto& item : nm::generate_items(task, o, static_cast<std::size_t>(a.count))) {
      std::string prompt = nm::make_prompt(item, shots, style);
      if (a.comma) prompt = nm::insert_thousands_separators(prompt);
      out += json{{"task", nm::task_name(task)},
                  {"prompt", prompt},
                  {"answer", item.answer},
                  {"question", item.question},
                  {"expression", item.expression}}
                 .dump() +
             "\n";
    }
  }
  fmt::print("{}", out);
}

// ---- score ----

struct Tally {
  int correct = 0, total = 0;
};

void run_score(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("numeracy score: cannot open " + quoted(path));
  std::map<std::string, Tally> by_task;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    const std::string where = path + ":" + std::to_string(n);
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception&) {
      throw Error("numeracy score: " + where + ": not a JSON object");
    }
    if (!j.is_object() || !j.contains("answer") || !j.contains("output") ||
        !j["answer"].is_string() || !j["output"].is_string()) {
      throw Error("numeracy score: " + where +
                  ": expected an object with string fields \"answer\" and \"output\"");
    }
    const std::string task =
        j.contains("task") && j["task"].is_string() ? j["task"].get<std::string>() : "all";
    Tally& t = by_task[task];
    t.correct +=
        nm::score_answer(j["output"].get<std::string>(), j["answer"].get<std::string>()).correct;
    ++t.total;
  }
  if (by_task.empty()) throw Error("numeracy score: " + quoted(path) + " has no answers");
  for (const auto& [task, t] : by_task) {
    fmt::print("{:<10} {:>6.1f}%  ({}/{})\n", task, 100.0 * t.correct / t.total, t.correct,
               t.total);
  }
}

// ---- eval ----

struct EvalArgs {
  std::string model;
  TaskArgs task;
  std::string schemes;
  std::string formats = "fp32";
  unsigned threads = 1;
  bool json = false;
  bool show = false;
};

// Greedy decoding of at most `max_tokens` tokens after `prompt`, stopping at
// the end-of-text token or once the text holds a newline.
std::string complete(const nn::Transformer& model, const ModelAndTokenizer& m,
                     const std::optional<nn::Tokenizer>& tok,
                     const std::vector<std::int32_t>& prompt, std::size_t max_tokens,
                     unsigned threads) {
  nn::Generator gen(model, threads);
  std::span<const float> logits = gen.push(std::span<const std::int32_t>(prompt));
  // -1: no end-of-text token (byte-level models).
  const std::int32_t eos = tok && model.config().eos ? *model.config().eos : -1;
  std::vector<std::int32_t> out;
  std::string text;
  for (std::size_t step = 0; step < max_tokens; ++step) {
    std::size_t next = 0;
    for (std::size_t i = 1; i < logits.size(); ++i) {
      if (logits[i] > logits[next]) next = i;
    }
    const auto id = static_cast<std::int32_t>(next);
    if (id == eos) break;
    out.push_back(id);
    text = decode_tokens(m, out);
    if (text.find('\n') != std::string::npos) break;
    if (step + 1 < max_tokens) logits = gen.push(id);
  }
  return text;
}

void run_eval(const EvalArgs& a) {
  check_task_args(a.task);
  const nm::PromptStyle style = nm::parse_prompt_style(a.task.style);
  const nm::TaskOptions o = task_options(a.task);
  const auto tasks = parse_tasks(a.task.tasks);
  for (const nm::Task t : tasks) (void)nm::generate_items(t, o, 1);  // checks --digits
  const auto format_names = split_list(a.formats, "--formats");
  std::vector<MatrixFormat> formats;
  for (const auto& f : format_names) formats.push_back(parse_matrix_format(f));
  const ModelAndTokenizer m = load_model_and_tokenizer(a.model);
  std::vector<Scheme> schemes;
  const std::string scheme_list =
      !a.schemes.empty() ? a.schemes : (m.tokenizer ? "default,l2r3,r2l3,comma" : "default,comma");
  for (const auto& s : split_list(scheme_list, "--schemes")) {
    schemes.push_back(parse_scheme(s));
    if (schemes.back().grouping && !m.tokenizer) {
      throw Error(
          "numeracy eval: scheme " + quoted(s) +
          " regroups a tokenizer's digits, but this model reads bytes (use default, comma)");
    }
  }
  json results = json::array();
  const std::string model_name = a.model.empty() ? "embedded KJV byte-level GPT" : a.model;
  for (std::size_t fi = 0; fi < formats.size(); ++fi) {
    const nn::Transformer model = m.model.with_weights(formats[fi]);
    for (const Scheme& scheme : schemes) {
      std::optional<nn::Tokenizer> tok = m.tokenizer;
      if (scheme.grouping) tok = m.tokenizer->with_number_grouping(*scheme.grouping);
      for (const nm::Task task : tasks) {
        const auto shots =
            nm::shot_items(task, o, static_cast<std::size_t>(shots_for(a.task, style)));
        Tally tally;
        for (const auto& item :
             nm::generate_items(task, o, static_cast<std::size_t>(a.task.count))) {
          std::string prompt = nm::make_prompt(item, shots, style);
          std::string reference = nm::reference_completion(item, style);
          if (scheme.comma) {
            prompt = nm::insert_thousands_separators(prompt);
            reference = nm::insert_thousands_separators(reference);
          }
          std::vector<std::int32_t> ids;
          if (tok) {
            ids = tok->encode(prompt, false);
            if (m.bos) ids.insert(ids.begin(), *m.bos);
          } else {
            ids = encode_prompt(m, prompt);
          }
          const std::string output = complete(model, m, tok, ids, reference.size() + 8, a.threads);
          const bool ok = nm::score_answer(output, item.answer).correct;
          tally.correct += ok;
          ++tally.total;
          if (a.show) {
            fmt::print(stderr, "[{} {} {}] {} -> {} ({})\n", format_names[fi], scheme.name,
                       nm::task_name(task), item.expression, json(output).dump(),
                       ok ? "ok" : "wrong");
          }
        }
        results.push_back({{"format", format_names[fi]},
                           {"scheme", scheme.name},
                           {"task", nm::task_name(task)},
                           {"correct", tally.correct},
                           {"total", tally.total},
                           {"accuracy", static_cast<double>(tally.correct) / tally.total}});
      }
    }
  }
  if (a.json) {
    const json out = {{"model", model_name},
                      {"style", a.task.style},
                      {"shots", shots_for(a.task, style)},
                      {"digits", a.task.digits},
                      {"items_per_task", a.task.count},
                      {"seed", a.task.seed},
                      {"results", results}};
    fmt::print("{}\n", out.dump(2));
    return;
  }
  fmt::print("{}: {} items per task, {}-digit operands, {} prompts ({} shots), greedy\n",
             model_name, a.task.count, a.task.digits, a.task.style, shots_for(a.task, style));
  for (const auto& fname : format_names) {
    fmt::print("\nweights {}   accuracy (%)\n{:<10}", fname, "task");
    for (const Scheme& s : schemes) fmt::print(" {:>8}", s.name);
    fmt::print("\n");
    for (const nm::Task task : tasks) {
      fmt::print("{:<10}", nm::task_name(task));
      for (const Scheme& s : schemes) {
        for (const auto& r : results) {
          if (r["format"] == fname && r["scheme"] == s.name && r["task"] == nm::task_name(task)) {
            fmt::print(" {:>8.1f}", 100.0 * r["accuracy"].get<double>());
          }
        }
      }
      fmt::print("\n");
    }
  }
}

void add_task_options(CLI::App* cmd, TaskArgs& a, bool several) {
  cmd->add_option(several ? "--tasks" : "--task", a.tasks,
                  "Tasks, comma-separated, or all: copy, place, add, sub, mul, div, compare, "
                  "min, max, sum, retrieve, sequence");
  cmd->add_option("--digits", a.digits, "Operand digits (default 3; mul, div: up to 9)");
  cmd->add_option("--list-length", a.list_length,
                  "Numbers in min/max/sum/retrieve lists and sequence terms (default 5)");
  cmd->add_option("-n,--items", a.count, "Items per task");
  cmd->add_option("--seed", a.seed, "Random seed of the items (default 1)");
  cmd->add_option("--style", a.style, "Prompt style: bare, qa or calc (default qa)");
  cmd->add_option("--shots", a.shots, "Solved examples before each item (default 0 bare, 3 else)");
}

}  // namespace

void add_numeracy_command(CLI::App& app) {
  CLI::App* cmd = numeracy_command(app);

  auto d = std::make_shared<DigitsArgs>();
  auto* digits = cmd->add_subcommand(
      "digits", "Cut the numbers of a text into digit groups (and show a model's tokens)");
  digits->add_option("TEXT", d->text, "Text");
  digits->add_option("--file", d->file,
                     "Count tokens per number over a text file instead, per scheme");
  digits->add_option("-g,--grouping", d->grouping, "l2rK or r2lK (default r2l3)");
  digits->add_option("--tokenizer", d->tokenizer,
                     "A model (HF directory or GGUF) whose tokens to show with and without the "
                     "grouping");
  digits->add_flag("--json", d->json, "Print JSON");
  digits->callback([d] { run_digits(*d); });

  auto t = std::make_shared<TaskArgs>();
  auto* tasks = cmd->add_subcommand("tasks", "Print numeracy items as JSON lines");
  add_task_options(tasks, *t, true);
  tasks->add_flag("--comma", t->comma, "Write the prompts' numbers with thousands separators");
  tasks->callback([t] { run_tasks(*t); });

  auto s = std::make_shared<std::string>();
  auto* score = cmd->add_subcommand(
      "score", "Score answers: JSON lines with \"answer\", \"output\" (and \"task\")");
  score->add_option("FILE", *s, "JSON lines file")->required();
  score->callback([s] { run_score(*s); });

  auto e = std::make_shared<EvalArgs>();
  e->task.count = 20;
  e->task.tasks = "all";
  auto* eval = cmd->add_subcommand(
      "eval",
      "Run a model (greedy) on numeracy tasks per tokenization scheme and weight format "
      "(default model: the embedded KJV byte-level GPT)");
  eval->add_option("MODEL", e->model, "HF directory, GGUF file or lowp checkpoint");
  add_task_options(eval, e->task, true);
  eval->add_option("--schemes", e->schemes,
                   "Tokenization schemes: default, comma, l2rK, r2lK (default: "
                   "default,l2r3,r2l3,comma; byte-level models: default,comma)");
  eval->add_option("-f,--formats", e->formats, "Weight formats, comma-separated (default fp32)");
  eval->add_option("--threads", e->threads, "Threads (default 1)")->check(CLI::PositiveNumber);
  eval->add_flag("--json", e->json, "Print JSON");
  eval->add_flag("--show", e->show, "Print every item's output on stderr");
  eval->callback([e] { run_eval(*e); });
}

}  // namespace lowp::cli
