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
void add_numeracy_command(CLI::App& app);
// `lowp bench gemv`, a subcommand of bench (cmd_bench_gemv.cc).
void add_bench_gemv_command(CLI::App& bench);
// `lowp bench posit` (cmd_bench_posit.cc).
void add_bench_posit_command(CLI::App& bench);
// `lowp bench llama` (cmd_bench_llama.cc).
void add_bench_llama_command(CLI::App& bench);
// `lowp bench file` (cmd_bench_file.cc).
void add_bench_file_command(CLI::App& bench);
// `lowp bench storage` (cmd_bench_storage.cc).
void add_bench_storage_command(CLI::App& bench);
// `lowp bench sort` (cmd_bench_sort.cc).
void add_bench_sort_command(CLI::App& bench);
// `lowp numeracy fone` (cmd_numeracy_fone.cc).
void add_numeracy_fone_command(CLI::App& app);
// The `numeracy` verb, created on first use: each file adds its subcommands
// to it.
CLI::App* numeracy_command(CLI::App& app);

}  // namespace lowp::cli
