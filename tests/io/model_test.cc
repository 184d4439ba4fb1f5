// open_model's dispatch, MappedFile, and the npy/npz readers (zip archives
// built here byte by byte: stored, deflated, and numpy's zip64 form).
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "lowp/error.h"
#include "lowp/io/model.h"
#include "lowp/io/npy.h"

namespace lowp::io {
namespace {

using Bytes = std::vector<std::byte>;

void put(Bytes& b, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xFF));
}
void put(Bytes& b, const std::string& s) {
  for (char c : s) b.push_back(static_cast<std::byte>(c));
}
void put(Bytes& b, const Bytes& s) { b.insert(b.end(), s.begin(), s.end()); }

Bytes f32_npy(const std::vector<float>& v, std::vector<std::int64_t> shape) {
  Bytes data(v.size() * 4);
  if (!v.empty()) std::memcpy(data.data(), v.data(), data.size());
  return serialize_npy(DType::kF32, shape, data);
}

Bytes raw_deflate(const Bytes& in) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  Bytes out(deflateBound(&z, static_cast<uLong>(in.size())));
  z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

struct ZipMember {
  std::string name;
  Bytes content;  // the uncompressed .npy image
  bool deflate = false;
};

// A zip archive as np.savez writes it; with `zip64` every local header carries
// 0xFFFFFFFF sizes and a zip64 extra field (numpy's force_zip64=True).
Bytes make_zip(const std::vector<ZipMember>& members, bool zip64 = false) {
  Bytes out;
  Bytes central;
  for (const ZipMember& m : members) {
    const Bytes stored = m.deflate ? raw_deflate(m.content) : m.content;
    const auto crc = crc32(0L, reinterpret_cast<const Bytef*>(m.content.data()),
                           static_cast<uInt>(m.content.size()));
    const std::uint64_t local = out.size();
    put(out, 0x04034b50, 4);
    put(out, 20, 2);
    put(out, 0, 2);
    put(out, m.deflate ? 8 : 0, 2);
    put(out, 0, 4);  // time, date
    put(out, crc, 4);
    put(out, zip64 ? 0xFFFFFFFF : stored.size(), 4);
    put(out, zip64 ? 0xFFFFFFFF : m.content.size(), 4);
    put(out, m.name.size(), 2);
    put(out, zip64 ? 20 : 0, 2);
    put(out, m.name);
    if (zip64) {
      put(out, 1, 2);
      put(out, 16, 2);
      put(out, m.content.size(), 8);
      put(out, stored.size(), 8);
    }
    put(out, stored);
    put(central, 0x02014b50, 4);
    put(central, 20, 2);
    put(central, 20, 2);
    put(central, 0, 2);
    put(central, m.deflate ? 8 : 0, 2);
    put(central, 0, 4);
    put(central, crc, 4);
    put(central, stored.size(), 4);
    put(central, m.content.size(), 4);
    put(central, m.name.size(), 2);
    put(central, 0, 2);
    put(central, 0, 2);
    put(central, 0, 2);
    put(central, 0, 2);
    put(central, 0, 4);
    put(central, local, 4);
    put(central, m.name);
  }
  const std::uint64_t cd_offset = out.size();
  put(out, central);
  put(out, 0x06054b50, 4);
  put(out, 0, 4);
  put(out, members.size(), 2);
  put(out, members.size(), 2);
  put(out, central.size(), 4);
  put(out, cd_offset, 4);
  put(out, 0, 2);
  return out;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Npz, StoredDeflatedAndZip64) {
  const std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -0.5f};
  const std::vector<float> b = {42.0f};
  for (bool zip64 : {false, true}) {
    const Bytes zip =
        make_zip({{"weights.npy", f32_npy(a, {2, 3})}, {"bias.npy", f32_npy(b, {1}), true}}, zip64);
    const auto r = parse_npz(zip, "m.npz");
    EXPECT_EQ(r->kind(), "npz");
    ASSERT_EQ(r->tensors().size(), 2u);
    const TensorInfo* w = r->find("weights");
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->dtype, "float32");
    EXPECT_EQ(w->shape, (std::vector<std::int64_t>{2, 3}));
    EXPECT_EQ(r->read_f32(*w), a);
    EXPECT_EQ(r->raw(*w).size(), 24u);
    const TensorInfo* bias = r->find("bias");
    ASSERT_NE(bias, nullptr);
    EXPECT_EQ(r->read_f32(*bias), b);
    EXPECT_NE(error_of([&] { (void)r->raw(*bias); }).find("compressed"), std::string::npos);
  }
}

TEST(Npz, RejectsHostileArchives) {
  const Bytes good = make_zip({{"x.npy", f32_npy({1, 2, 3}, {3}), true}});
  // Every truncation is an error, never a crash.
  for (std::size_t n = 0; n < good.size(); ++n) {
    EXPECT_THROW(parse_npz(std::span(good).first(n), "t.npz"), Error) << n;
  }
  Bytes bad_crc = make_zip({{"x.npy", f32_npy({1, 2, 3}, {3}), true}});
  const std::size_t central = bad_crc.size() - 22 - (46 + 5);
  bad_crc[central + 16] ^= std::byte{1};
  EXPECT_NE(error_of([&] { parse_npz(bad_crc, "c.npz"); }).find("CRC-32"), std::string::npos);
  const Bytes not_npy = make_zip({{"readme.txt", Bytes(4)}});
  EXPECT_NE(
      error_of([&] { parse_npz(not_npy, "n.npz"); }).find("'readme.txt' is not an .npy array"),
      std::string::npos);
  const Bytes dup = make_zip({{"x.npy", f32_npy({1}, {1})}, {"x.npy", f32_npy({2}, {1})}});
  EXPECT_NE(error_of([&] { parse_npz(dup, "d.npz"); }).find("two arrays are named 'x'"),
            std::string::npos);
  Bytes bomb = make_zip({{"x.npy", f32_npy(std::vector<float>(1000, 0.0f), {1000}), true}});
  const std::size_t cd = bomb.size() - 22 - (46 + 5);
  bomb[cd + 24] = std::byte{0xFF};  // uncompressed size: 0xFF......
  bomb[cd + 27] = std::byte{0x7F};
  EXPECT_NE(error_of([&] { parse_npz(bomb, "b.npz"); }).find("implausible"), std::string::npos);
  const Bytes inner_bad = make_zip({{"x.npy", Bytes{std::byte{0x93}, std::byte{'N'}}}});
  EXPECT_NE(error_of([&] { parse_npz(inner_bad, "i.npz"); }).find("i.npz: x.npy"),
            std::string::npos);
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("lowp_model_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path write(const std::string& name, const Bytes& bytes) {
    const auto p = dir_ / name;
    std::ofstream(p, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    return p;
  }
  std::filesystem::path dir_;
};

TEST_F(TempDir, OpenModelDispatchesOnMagicAndExtension) {
  const auto npy = write("layer.npy", f32_npy({1, 2}, {2}));
  const auto r = open_model(npy);
  EXPECT_EQ(r->kind(), "npy");
  ASSERT_EQ(r->tensors().size(), 1u);
  EXPECT_EQ(r->tensors()[0].name, "layer");
  EXPECT_EQ(r->read_f32(r->tensors()[0]), (std::vector<float>{1, 2}));
  // npz is recognised by its zip magic whatever the name.
  EXPECT_EQ(open_model(write("arch.bin", make_zip({{"a.npy", f32_npy({3}, {1})}})))->kind(), "npz");
  const std::string unknown = error_of([&] { open_model(write("notes.txt", Bytes(10))); });
  EXPECT_NE(unknown.find("unknown model file kind"), std::string::npos) << unknown;
  const std::string missing = error_of([&] { open_model(dir_ / "nope.safetensors"); });
  EXPECT_NE(missing.find("cannot open"), std::string::npos) << missing;
  EXPECT_NE(missing.find("nope.safetensors"), std::string::npos);
  const std::string directory = error_of([&] { open_model(dir_); });
  EXPECT_NE(directory.find("not a regular file"), std::string::npos) << directory;
}

}  // namespace
}  // namespace lowp::io
