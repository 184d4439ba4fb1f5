// Memory-mapped files, the common reader helpers, and open_model's dispatch.
#include "lowp/io/model.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lowp/error.h"

namespace lowp::io {

MappedFile::MappedFile(const std::filesystem::path& path) : path_(path) {
  const std::string name = path.string();
  const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open '" + name + "': " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw Error("cannot open '" + name + "': " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error("cannot open '" + name + "': not a regular file");
  }
  size_ = static_cast<std::size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      throw Error("cannot map '" + name + "': " + std::strerror(err));
    }
    data_ = static_cast<const std::byte*>(p);
  }
  ::close(fd);  // the mapping stays valid
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
}

std::uint64_t TensorInfo::element_count() const {
  std::uint64_t n = 1;
  for (std::int64_t d : shape) n *= static_cast<std::uint64_t>(d);
  return n;
}

const TensorInfo* ModelReader::find(std::string_view name) const {
  for (const TensorInfo& t : tensors()) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

std::unique_ptr<ModelReader> open_model(const std::filesystem::path& path) {
  auto file = std::make_shared<const MappedFile>(path);
  const std::span<const std::byte> image = file->bytes();
  const std::string source = path.string();
  auto starts_with = [&](std::string_view magic) {
    return image.size() >= magic.size() &&
           std::memcmp(image.data(), magic.data(), magic.size()) == 0;
  };
  if (starts_with("GGUF")) return parse_gguf(image, source, file);
  if (starts_with("\x93NUMPY")) return parse_npy_model(image, source, file);
  if (starts_with("PK\x03\x04") || starts_with("PK\x05\x06")) return parse_npz(image, source, file);
  const std::string ext = path.extension().string();
  if (ext == ".safetensors") return parse_safetensors(image, source, file);
  if (ext == ".onnx") return parse_onnx(image, source, file);
  throw Error(source +
              ": unknown model file kind (expected .safetensors, .gguf, .onnx, .npy or .npz)");
}

}  // namespace lowp::io
