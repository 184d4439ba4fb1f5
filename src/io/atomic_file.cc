// Atomic output files with SIGINT/SIGTERM cleanup (see atomic_file.h).
#include "lowp/io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>
#include <random>
#include <string>

#include "lowp/error.h"
#include "lowp/io/npy.h"

namespace lowp::io {
namespace {

// ---- atomic writes: temp-file registry for SIGINT/SIGTERM ----
//
// While write_file_atomic has a temporary file open it is listed here; the
// signal handler unlinks every listed file (unlink is async-signal-safe),
// restores the previous disposition and re-raises, so an interrupted run
// leaves no ".name.tmp.XXXXXX" litter behind. Slots are fixed-size and
// claimed with atomics: no allocation or locking in the handler.

constexpr std::size_t kMaxPending = 16;
constexpr std::size_t kMaxPathLen = 4096;

struct PendingSlot {
  std::atomic<int> state{0};  // 0 free, 1 being filled, 2 holds a path to remove
  char path[kMaxPathLen] = {};
};
static_assert(std::atomic<int>::is_always_lock_free);

PendingSlot g_pending[kMaxPending];
struct sigaction g_previous[2];
constexpr std::array<int, 2> kSignals = {SIGINT, SIGTERM};

void remove_pending_and_reraise(int sig) {
  const int saved_errno = errno;
  for (PendingSlot& slot : g_pending) {
    if (slot.state.load(std::memory_order_acquire) == 2) ::unlink(slot.path);
  }
  for (std::size_t i = 0; i < kSignals.size(); ++i) {
    if (kSignals[i] == sig) {
      // Hand the signal to whatever was installed before us (usually the
      // default action, which terminates the process with the right status).
      ::sigaction(sig, &g_previous[i], nullptr);
      ::raise(sig);  // delivered when this handler returns (sig is blocked now)
    }
  }
  errno = saved_errno;
}

void install_signal_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (std::size_t i = 0; i < kSignals.size(); ++i) {
      struct sigaction old {};
      if (::sigaction(kSignals[i], nullptr, &old) != 0) continue;
      // Only take over the default action: a program that ignores the signal
      // or handles it itself keeps its own behaviour.
      if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL) {
        g_previous[i] = old;
        struct sigaction act {};
        act.sa_handler = remove_pending_and_reraise;
        sigemptyset(&act.sa_mask);
        act.sa_flags = 0;
        ::sigaction(kSignals[i], &act, nullptr);
      }
    }
  });
}

// Returns the slot index, or -1 if the registry is full or the path too long
// (the write still works; only signal-time cleanup is lost).
int register_pending(const std::string& path) {
  if (path.size() >= kMaxPathLen) return -1;
  for (std::size_t i = 0; i < kMaxPending; ++i) {
    int expected = 0;
    if (g_pending[i].state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
      std::memcpy(g_pending[i].path, path.c_str(), path.size() + 1);
      g_pending[i].state.store(2, std::memory_order_release);
      return static_cast<int>(i);
    }
  }
  return -1;
}

void unregister_pending(int slot) {
  if (slot >= 0) g_pending[slot].state.store(0, std::memory_order_release);
}

// A hidden name next to the target: ".name.tmp.XXXXXXXXXXXX" with a random
// suffix (like mkstemp's, but chosen here so it can be registered before the
// file exists).
std::string temp_name_for(const std::filesystem::path& path) {
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  std::string suffix(12, 'x');
  {
    std::lock_guard lock(mu);
    for (char& c : suffix) c = kChars[rng() % (sizeof kChars - 1)];
  }
  return (path.parent_path() / ("." + path.filename().string() + ".tmp." + suffix)).string();
}

std::string errno_text(int err) { return std::strerror(err); }

}  // namespace

AtomicFile::AtomicFile(const std::filesystem::path& path) : target_(path.string()) {
  const std::filesystem::path name = path.filename();
  // A directory in the target's place would fail only at commit(), after the
  // caller's work: refuse it now.
  std::error_code ec;
  if (name.empty() || name == "." || name == ".." || std::filesystem::is_directory(path, ec)) {
    throw Error("cannot write '" + target_ + "': " + errno_text(EISDIR));
  }
  install_signal_handlers();
  // The temporary's name is registered for the signal handler *before* the
  // file is created and unregistered only after it is renamed or removed, so
  // whenever the file exists a SIGINT/SIGTERM (delivered to any thread) finds
  // it. Unlinking a registered name that does not exist is harmless.
  for (int attempt = 0; fd_ < 0; ++attempt) {
    temp_ = temp_name_for(path);
    slot_ = register_pending(temp_);
    // O_EXCL: never reuse an existing file. Mode 0666 is reduced by the umask,
    // giving the file the permissions any ordinary new file would get.
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ < 0) {
      const int err = errno;
      unregister_pending(slot_);
      slot_ = -1;
      if (err != EEXIST || attempt == 100)
        throw Error("cannot write '" + target_ + "': " + errno_text(err));
    }
  }
}

AtomicFile::~AtomicFile() {
  if (committed_) return;
  if (fd_ >= 0) ::close(fd_);
  ::unlink(temp_.c_str());
  unregister_pending(slot_);
}

void AtomicFile::abandon(int err) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(temp_.c_str());
  unregister_pending(slot_);
  slot_ = -1;
  committed_ = true;  // nothing left for the destructor to do
  throw Error("cannot write '" + target_ + "': " + errno_text(err));
}

void AtomicFile::write(std::span<const std::byte> bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      abandon(errno);
    }
    done += static_cast<std::size_t>(w);
  }
  written_ += bytes.size();
}

void AtomicFile::write_zeros(std::size_t count) {
  static constexpr std::byte kZeros[4096] = {};
  while (count > 0) {
    const std::size_t n = count < sizeof kZeros ? count : sizeof kZeros;
    write({kZeros, n});
    count -= n;
  }
}

void AtomicFile::commit() {
  // No fsync: atomicity against other readers is what we promise, not
  // durability across a power cut. close() can still report a write error
  // (e.g. on NFS or a full disk with delayed allocation), so check it.
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) abandon(errno);
  if (::rename(temp_.c_str(), target_.c_str()) != 0) abandon(errno);
  unregister_pending(slot_);
  slot_ = -1;
  committed_ = true;
}

void write_file_atomic(const std::filesystem::path& path, std::span<const std::byte> bytes) {
  AtomicFile file(path);
  file.write(bytes);
  file.commit();
}

}  // namespace lowp::io
