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

void MappedFile::release(std::span<const std::byte> range) const {
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto map_begin = reinterpret_cast<std::uintptr_t>(data_);
  const auto begin = reinterpret_cast<std::uintptr_t>(range.data());
  if (data_ == nullptr || page == 0 || begin < map_begin || range.size() > size_ ||
      begin - map_begin > size_ - range.size()) {
    return;
  }
  const std::uintptr_t first = (begin + page - 1) / page * page;
  const std::uintptr_t last = (begin + range.size()) / page * page;
  if (last > first) {
    // Only a hint: a failure leaves the pages mapped, which is harmless.
    (void)::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
  }
}

void ModelReader::release(const TensorInfo& t) const {
  if (mapping_) mapping_->release(raw(t));
}

std::unique_ptr<ModelReader> open_model(const std::filesystem::path& path) {
  auto file = std::make_shared<const MappedFile>(path);
  const std::span<const std::byte> image = file->bytes();
  const std::string source = path.string();
  auto starts_with = [&](std::string_view magic) {
    return image.size() >= magic.size() &&
           std::memcmp(image.data(), magic.data(), magic.size()) == 0;
  };
  std::unique_ptr<ModelReader> reader;
  const std::string ext = path.extension().string();
  if (starts_with("GGUF")) {
    reader = parse_gguf(image, source, file);
  } else if (starts_with("\x93NUMPY")) {
    reader = parse_npy_model(image, source, file);
  } else if (starts_with("PK\x03\x04") || starts_with("PK\x05\x06")) {
    reader = parse_npz(image, source, file);
  } else if (ext == ".safetensors") {
    reader = parse_safetensors(image, source, file);
  } else if (ext == ".onnx") {
    reader = parse_onnx(image, source, file);
  } else {
    throw Error(source +
                ": unknown model file kind (expected .safetensors, .gguf, .onnx, .npy or .npz)");
  }
  reader->set_mapping(std::move(file));
  return reader;
}

}  // namespace lowp::io
