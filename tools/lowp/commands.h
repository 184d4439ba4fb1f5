// The lowp command-line tool: one file per verb, each adding its subcommand to
// the CLI11 app. Verbs throw lowp::Error for bad input; main() prints the one-line
// message and exits with status 1.
#pragma once

#include <CLI/CLI.hpp>

namespace lowp::cli {

void add_formats_command(CLI::App& app);
void add_encode_command(CLI::App& app);
void add_decode_command(CLI::App& app);
void add_fake_quant_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_quantize_command(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_report_command(CLI::App& app);
void add_analyze_command(CLI::App& app);
void add_generate_command(CLI::App& app);
// `lowp bench gemv`, a subcommand of bench (cmd_bench_gemv.cc).
void add_bench_gemv_command(CLI::App& bench);
// `lowp bench llama` (cmd_bench_llama.cc).
void add_bench_llama_command(CLI::App& bench);
// `lowp bench file` (cmd_bench_file.cc).
void add_bench_file_command(CLI::App& bench);

}  // namespace lowp::cli
