// `lowp bench file [--size-mb 1024] [--formats mxfp4,nvfp4] [--threads N]
// [--reps 3] [--dir DIR] [--json]`: `lowp quantize` of a whole safetensors
// file of BF16 weights against the rate at which the same run reads that file
// from the page cache and writes a new file of the output's size.
//
// The file is generated here (tensors of 8192 columns, values of a normal
// distribution's shape from a fixed seed), read once so that it sits in the
// page cache, and then each round times:
//  * read: read(2) of the whole file in 16 MiB pieces into one buffer;
//  * write: a new file of the quantized output's size written in 16 MiB pieces
//    (the page-cache cost of the output, which `lowp quantize` pays too);
//  * quantize: `lowp quantize IN -o OUT -f F -q` run as a child process of this
//    binary, with its peak resident memory (getrusage of the child).
// Medians of the rounds are reported; the files are removed at the end.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowp/error.h"
#include "lowp/io/safetensors.h"

namespace lowp::cli {
namespace {

struct FileBenchOptions {
  std::size_t size_mb = 1024;
  std::string formats = "mxfp4,nvfp4";
  unsigned threads = 0;
  int reps = 3;
  std::string dir;
  bool json = false;
};

constexpr std::size_t kColumns = 8192;
constexpr std::size_t kPiece = std::size_t{16} << 20;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// BF16 bits of roughly normal values (a sum of four uniforms), deterministic.
void fill_bf16(std::uint64_t seed, std::vector<std::byte>& out) {
  std::uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (std::size_t i = 0; i + 1 < out.size(); i += 2) {
    float sum = 0.0f;
    for (int k = 0; k < 4; ++k) {
      s ^= s << 13, s ^= s >> 7, s ^= s << 17;
      sum += static_cast<float>(s >> 40) * 0x1p-24f - 0.5f;
    }
    std::uint32_t bits = 0;
    const float v = sum * 0.035f;
    std::memcpy(&bits, &v, 4);
    bits += 0x7FFF + ((bits >> 16) & 1);  // to nearest bf16, ties to even
    out[i] = static_cast<std::byte>(bits >> 16);
    out[i + 1] = static_cast<std::byte>(bits >> 24);
  }
}

struct Generated {
  std::size_t tensors = 0;
  std::size_t largest = 0;  // bytes of BF16
};

Generated generate(const std::filesystem::path& path, std::size_t bytes) {
  const std::size_t rows_total = std::max<std::size_t>(1, bytes / (2 * kColumns));
  const std::size_t rows_per_tensor = std::min<std::size_t>(rows_total, 8192);
  std::vector<io::OutputTensor> tensors;
  for (std::size_t r = 0, i = 0; r < rows_total; r += rows_per_tensor, ++i) {
    const std::size_t rows = std::min(rows_per_tensor, rows_total - r);
    tensors.push_back({"layers." + std::to_string(i) + ".weight",
                       "BF16",
                       {static_cast<std::int64_t>(rows), static_cast<std::int64_t>(kColumns)},
                       rows * kColumns * 2});
  }
  io::write_safetensors(path, tensors, {}, [&](std::size_t i) {
    std::vector<std::byte> out(tensors[i].nbytes);
    fill_bf16(i, out);
    return out;
  });
  return {tensors.size(), rows_per_tensor * kColumns * 2};
}

// Seconds to read the whole file with read(2).
double time_read(const std::filesystem::path& path, std::vector<std::byte>& buffer) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("bench file: cannot open " + path.string() + ": " + std::strerror(errno));
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    const ssize_t got = ::read(fd, buffer.data(), buffer.size());
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      ::close(fd);
      throw Error("bench file: cannot read " + path.string() + ": " + std::strerror(errno));
    }
    if (got == 0) break;
  }
  const double s = seconds_since(t0);
  ::close(fd);
  return s;
}

// Seconds to write a new file of `bytes` bytes with write(2).
double time_write(const std::filesystem::path& path, std::size_t bytes,
                  const std::vector<std::byte>& buffer) {
  std::filesystem::remove(path);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    throw Error("bench file: cannot create " + path.string() + ": " + std::strerror(errno));
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t done = 0; done < bytes;) {
    const ssize_t put = ::write(fd, buffer.data(), std::min(buffer.size(), bytes - done));
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) {
      ::close(fd);
      throw Error("bench file: cannot write " + path.string() + ": " + std::strerror(errno));
    }
    done += static_cast<std::size_t>(put);
  }
  const double s = seconds_since(t0);
  ::close(fd);
  std::filesystem::remove(path);
  return s;
}

struct ChildRun {
  double seconds = 0;
  double peak_rss_mb = 0;
};

// Runs this binary with `args`, its stdout to /dev/null and its stderr to
// `errors`, with its wall time and peak RSS; a failure is an error carrying
// the child's message.
ChildRun run_self(const std::vector<std::string>& args, const std::filesystem::path& errors) {
  std::vector<std::string> copy = args;
  std::string self = "/proc/self/exe";
  std::vector<char*> argv = {self.data()};
  for (std::string& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(std::string("bench file: fork failed: ") + std::strerror(errno));
  if (pid == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    const int err = ::open(errors.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (null < 0 || err < 0 || ::dup2(null, STDOUT_FILENO) < 0 || ::dup2(err, STDERR_FILENO) < 0) {
      ::_exit(126);
    }
    ::execv("/proc/self/exe", argv.data());
    ::_exit(127);
  }
  int status = 0;
  struct rusage usage {};
  while (::wait4(pid, &status, 0, &usage) < 0) {
    if (errno != EINTR)
      throw Error(std::string("bench file: wait failed: ") + std::strerror(errno));
  }
  ChildRun r;
  r.seconds = seconds_since(t0);
  r.peak_rss_mb = static_cast<double>(usage.ru_maxrss) / 1024.0;  // KiB on Linux
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::ifstream text(errors);
    std::string message;
    std::getline(text, message);
    if (message.rfind("lowp: error: ", 0) == 0) message.erase(0, 13);
    std::string command = "lowp";
    for (const std::string& a : args) command += " " + a;
    throw Error("bench file: '" + command + "' failed" +
                (message.empty() ? std::string() : ": " + message));
  }
  return r;
}

void run_bench_file(const FileBenchOptions& o) {
  if (o.size_mb == 0) throw Error("bench file: --size-mb must be positive");
  std::vector<std::string> formats;
  for (std::size_t b = 0; b <= o.formats.size();) {
    const std::size_t e = std::min(o.formats.find(',', b), o.formats.size());
    if (e > b) formats.push_back(o.formats.substr(b, e - b));
    b = e + 1;
  }
  if (formats.empty()) throw Error("bench file: --formats names no format");
  const std::filesystem::path dir =
      o.dir.empty() ? std::filesystem::temp_directory_path() : std::filesystem::path(o.dir);
  const std::string stem = "lowp-bench-" + std::to_string(::getpid());
  const std::filesystem::path in = dir / (stem + "-bf16.safetensors");
  const std::filesystem::path out = dir / (stem + "-out.safetensors");
  const std::filesystem::path scratch = dir / (stem + "-write.bin");
  const std::filesystem::path errors = dir / (stem + "-stderr.txt");
  struct Cleanup {
    std::vector<std::filesystem::path> paths;
    ~Cleanup() {
      std::error_code ec;
      for (const auto& p : paths) std::filesystem::remove(p, ec);
    }
  } cleanup{{in, out, scratch, errors}};

  const Generated generated = generate(in, o.size_mb << 20);
  const std::size_t largest = generated.largest;
  const std::size_t file_bytes = std::filesystem::file_size(in);
  std::vector<std::byte> buffer(kPiece, std::byte{1});
  time_read(in, buffer);  // into the page cache

  // A warm-up run per format first: it checks every request (nothing is
  // printed before all of them ran) and gives each output's size.
  std::vector<std::vector<std::string>> commands;
  std::vector<std::size_t> out_bytes;
  for (const std::string& f : formats) {
    std::vector<std::string> args = {"quantize", in.string(), "-o", out.string(), "-f", f, "-q"};
    if (o.threads) args.insert(args.end(), {"--threads", std::to_string(o.threads)});
    run_self(args, errors);
    commands.push_back(std::move(args));
    out_bytes.push_back(std::filesystem::file_size(out));
  }

  nlohmann::json rows = nlohmann::json::array();
  if (!o.json) {
    fmt::print("{} MiB of BF16 ({} tensors of up to {} MiB), {} threads, median of {}\n",
               file_bytes >> 20, generated.tensors, largest >> 20,
               o.threads == 0 ? std::string("all") : std::to_string(o.threads), o.reps);
    fmt::print("{:<10} {:>10} {:>9} {:>9} {:>11} {:>13} {:>12}\n", "format", "quantize s", "read s",
               "write s", "vs read", "vs read+write", "peak RSS MB");
  }
  for (std::size_t k = 0; k < formats.size(); ++k) {
    const std::string& f = formats[k];
    std::vector<double> quantize_s, read_s, write_s, rss;
    for (int r = 0; r < o.reps; ++r) {
      read_s.push_back(time_read(in, buffer));
      write_s.push_back(time_write(scratch, out_bytes[k], buffer));
      const ChildRun run = run_self(commands[k], errors);
      quantize_s.push_back(run.seconds);
      rss.push_back(run.peak_rss_mb);
    }
    const double q = median(quantize_s), rd = median(read_s), wr = median(write_s);
    const double peak = *std::max_element(rss.begin(), rss.end());
    nlohmann::json row = {{"format", f},
                          {"file_bytes", file_bytes},
                          {"output_bytes", out_bytes[k]},
                          {"largest_tensor_bytes", largest},
                          {"threads", o.threads},
                          {"quantize_s", q},
                          {"read_s", rd},
                          {"write_s", wr},
                          {"vs_read", rd / q},
                          {"vs_read_write", (rd + wr) / q},
                          {"peak_rss_mb", peak}};
    rows.push_back(row);
    if (!o.json) {
      fmt::print("{:<10} {:>10.3f} {:>9.3f} {:>9.3f} {:>11.3f} {:>13.3f} {:>12.0f}\n", f, q, rd, wr,
                 rd / q, (rd + wr) / q, peak);
    }
  }
  if (o.json) {
    fmt::print("{}\n", rows.dump(2));
  } else {
    fmt::print(
        "vs read: reading the file from the page cache / quantizing it (1.0: at that speed); "
        "vs read+write: the same with writing a new file of the output's size added\n");
  }
}

}  // namespace

void add_bench_file_command(CLI::App& bench) {
  auto* cmd = bench.add_subcommand(
      "file",
      "lowp quantize of a generated BF16 safetensors file vs reading it from the page cache "
      "(and writing the output's size), with the quantizer's peak RSS");
  auto o = std::make_shared<FileBenchOptions>();
  cmd->add_option("--size-mb", o->size_mb, "Size of the generated file in MiB")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--formats", o->formats, "Comma-separated formats to quantize to")
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "Threads of lowp quantize (0: one per core)")
      ->capture_default_str();
  cmd->add_option("--reps", o->reps, "Timed rounds (the median is reported)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--dir", o->dir, "Directory for the files (default: the temp directory)");
  cmd->add_flag("--json", o->json, "Print JSON instead of a table");
  cmd->callback([o] { run_bench_file(*o); });
}

}  // namespace lowp::cli
