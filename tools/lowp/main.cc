// lowp — low-precision number formats for deep learning: the command-line tool.
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "commands.h"
#include "lowp/error.h"

int main(int argc, char** argv) {
  CLI::App app{
      "lowp: exact low-precision number formats (FP8, MX and NVFP4 block formats, E8M0, "
      "narrow integers, any minifloat eXmY)."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "lowp 0.1.0");
  lowp::cli::add_formats_command(app);
  lowp::cli::add_encode_command(app);
  lowp::cli::add_decode_command(app);
  lowp::cli::add_fake_quant_command(app);
  lowp::cli::add_inspect_command(app);
  lowp::cli::add_quantize_command(app);
  lowp::cli::add_convert_command(app);
  lowp::cli::add_report_command(app);
  lowp::cli::add_analyze_command(app);
  lowp::cli::add_generate_command(app);
  lowp::cli::add_numeracy_command(app);
  lowp::cli::add_numeracy_fone_command(app);
  lowp::cli::add_bench_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const lowp::Error& e) {
    std::fprintf(stderr, "lowp: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lowp: internal error: %s\n", e.what());
    return 3;
  }
  return 0;
}
