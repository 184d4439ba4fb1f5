// lowp/io/atomic_file.h — output files that appear whole or not at all.
//
// An AtomicFile writes to a hidden temporary next to the target
// (".name.tmp.XXXXXXXXXXXX", same directory so the final rename is atomic) and
// renames it over the target only in commit(). If the writer is destroyed
// without commit() (an error, an exception), or the process gets SIGINT or
// SIGTERM while the temporary exists, the temporary is removed: an output path
// either keeps its old content or holds the complete new file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

namespace lowp::io {

class AtomicFile {
 public:
  // Creates the temporary. Throws lowp::Error "cannot write 'PATH': reason",
  // also when PATH is a directory (which commit() could not replace).
  explicit AtomicFile(const std::filesystem::path& path);
  ~AtomicFile();  // removes the temporary unless committed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(std::span<const std::byte> bytes);
  // Writes `count` zero bytes (padding).
  void write_zeros(std::size_t count);
  std::uint64_t bytes_written() const { return written_; }
  // The temporary's path: what has been written is in it (write() does not
  // buffer), so a writer may read its own output back before commit().
  const std::string& temp_path() const { return temp_; }
  // Closes and renames the temporary over the target.
  void commit();

 private:
  [[noreturn]] void abandon(int err);

  std::string target_;
  std::string temp_;
  int fd_ = -1;
  int slot_ = -1;
  std::uint64_t written_ = 0;
  bool committed_ = false;
};

}  // namespace lowp::io
