// Tests for lowp/io/npy.h: round trips, numpy-identical headers, versions
// 2.0/3.0, and rejection of malformed or hostile files with useful messages.
#include "lowp/io/npy.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "lowp/error.h"

namespace lowp::io {
namespace {

namespace fs = std::filesystem;

std::vector<std::byte> bytes_of(std::string_view s) {
  std::vector<std::byte> out(s.size());
  if (!s.empty()) std::memcpy(out.data(), s.data(), s.size());
  return out;
}

std::string string_of(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// A .npy image with a hand-written header dict, laid out as numpy would
// (version 1.0 unless given, padded to 64 bytes, '\n'-terminated) plus `data`.
std::string npy_image(std::string_view dict, std::string_view data = "", int major = 1) {
  const std::size_t prefix = major == 1 ? 10 : 12;
  std::string header(dict);
  const std::size_t pad = 64 - (prefix + header.size() + 1) % 64;
  header.append(pad, ' ');
  header += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += '\0';
  for (std::size_t i = 0; i < prefix - 8; ++i)
    out += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + std::string(data);
}

// Parses `image` as "bad.npy" and returns the error message ("" if none).
std::string parse_error(std::string_view image) {
  try {
    parse_npy(bytes_of(image), "bad.npy");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The message is one line, starts with the source name, and mentions `what`.
#define EXPECT_REJECTED(image, what)                       \
  do {                                                     \
    const std::string msg_ = parse_error(image);           \
    EXPECT_EQ(msg_.rfind("bad.npy: ", 0), 0u) << msg_;     \
    EXPECT_NE(msg_.find(what), std::string::npos) << msg_; \
    EXPECT_EQ(msg_.find('\n'), std::string::npos) << msg_; \
  } while (0)

constexpr std::array kAllDTypes = {DType::kF64, DType::kF32, DType::kF16, DType::kBF16, DType::kI8,
                                   DType::kU8,  DType::kI16, DType::kU16, DType::kI32,  DType::kU32,
                                   DType::kI64, DType::kU64, DType::kBool};

// A scratch directory, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "lowp_npy_test.XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  std::set<std::string> listing() const {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(path_)) names.insert(e.path().filename().string());
    return names;
  }

 private:
  fs::path path_;
};

TEST(NpyTest, DTypeTables) {
  EXPECT_EQ(dtype_size(DType::kF64), 8u);
  EXPECT_EQ(dtype_size(DType::kBF16), 2u);
  EXPECT_EQ(dtype_size(DType::kBool), 1u);
  EXPECT_EQ(dtype_name(DType::kF32), "float32");
  EXPECT_EQ(dtype_name(DType::kBF16), "bfloat16");
  EXPECT_EQ(dtype_name(DType::kU8), "uint8");
  EXPECT_EQ(dtype_descr(DType::kF32), "<f4");
  EXPECT_EQ(dtype_descr(DType::kU8), "|u1");
  EXPECT_EQ(dtype_descr(DType::kBool), "|b1");
  EXPECT_EQ(dtype_descr(DType::kBF16), "<V2");
}

TEST(NpyTest, RoundTripEveryDTypeAndShape) {
  const std::vector<std::vector<std::int64_t>> shapes = {{}, {5}, {2, 3, 4}, {0}, {3, 0, 2}};
  for (DType t : kAllDTypes) {
    for (const auto& shape : shapes) {
      std::size_t n = 1;
      for (auto d : shape) n *= static_cast<std::size_t>(d);
      std::vector<std::byte> data(n * dtype_size(t));
      for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>(i * 37 + 11);
      const std::vector<std::byte> file = serialize_npy(t, shape, data);
      EXPECT_EQ((file.size() - data.size()) % 64, 0u) << "data must start 64-byte aligned";
      const NpyArray a = parse_npy(file, "mem");
      EXPECT_EQ(a.dtype, t) << dtype_name(t);
      EXPECT_EQ(a.shape, shape);
      EXPECT_EQ(a.data, data);
      EXPECT_EQ(a.element_count(), n);
    }
  }
}

TEST(NpyTest, WriteAndReadFile) {
  TempDir dir;
  const fs::path p = dir.path() / "x.npy";
  const std::vector<std::int64_t> shape = {2, 2};
  const std::vector<float> values = {1.0f, -2.5f, 3.25f, 0.0f};
  const auto data = std::as_bytes(std::span(values));
  write_npy(p, DType::kF32, shape, data);
  const NpyArray a = read_npy(p);
  EXPECT_EQ(a.dtype, DType::kF32);
  EXPECT_EQ(a.shape, shape);
  EXPECT_TRUE(std::equal(a.data.begin(), a.data.end(), data.begin(), data.end()));
  EXPECT_EQ(dir.listing(), std::set<std::string>{"x.npy"}) << "no temporary file may be left";
  // Overwriting replaces the file.
  write_npy(p, DType::kU8, std::vector<std::int64_t>{1}, bytes_of("\x07"));
  EXPECT_EQ(read_npy(p).dtype, DType::kU8);
  // The file gets the usual permissions, not mkstemp's 0600.
  const auto perms = fs::status(p).permissions();
  EXPECT_NE(perms & fs::perms::owner_write, fs::perms::none);
  EXPECT_NE(perms & fs::perms::others_read, fs::perms::none);
}

// Headers byte-identical to np.save (numpy >= 1.23, which adds the growth
// padding after the dict; older 1.x gives the same bytes for these shapes).
TEST(NpyTest, HeaderMatchesNumpy) {
  // np.save(f, np.zeros(3, np.float32))
  {
    const std::string expected = std::string("\x93NUMPY\x01\x00v\x00", 10) +
                                 "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }" +
                                 std::string(60, ' ') + "\n";
    ASSERT_EQ(expected.size(), 128u);
    const std::vector<std::byte> file =
        serialize_npy(DType::kF32, std::vector<std::int64_t>{3}, std::vector<std::byte>(12));
    EXPECT_EQ(string_of(std::span(file).first(128)), expected);
    EXPECT_EQ(file.size(), 128u + 12u);
  }
  // np.save(f, np.float64(0)) -- a 0-d array: shape ()
  {
    const std::string expected = std::string("\x93NUMPY\x01\x00v\x00", 10) +
                                 "{'descr': '<f8', 'fortran_order': False, 'shape': (), }" +
                                 std::string(62, ' ') + "\n";
    const std::vector<std::byte> file = serialize_npy(DType::kF64, {}, std::vector<std::byte>(8));
    EXPECT_EQ(string_of(std::span(file).first(128)), expected);
  }
  // np.save(f, np.zeros((2, 3, 4), np.uint8))
  {
    const std::string expected = std::string("\x93NUMPY\x01\x00v\x00", 10) +
                                 "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3, 4), }" +
                                 std::string(55, ' ') + "\n";
    const std::vector<std::byte> file =
        serialize_npy(DType::kU8, std::vector<std::int64_t>{2, 3, 4}, std::vector<std::byte>(24));
    EXPECT_EQ(string_of(std::span(file).first(128)), expected);
  }
  // np.save(f, np.zeros((1000,) * 10 + (0,), bool)): the header crosses 128
  // bytes; dict 116 chars + 17 growth spaces + 48 padding + '\n' = 182 (0xb6).
  {
    std::vector<std::int64_t> shape(10, 1000);
    shape.push_back(0);
    const std::string dict =
        "{'descr': '|b1', 'fortran_order': False, 'shape': "
        "(1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 0), }";
    ASSERT_EQ(dict.size(), 116u);
    const std::string expected =
        std::string("\x93NUMPY\x01\x00\xb6\x00", 10) + dict + std::string(65, ' ') + "\n";
    EXPECT_EQ(string_of(serialize_npy(DType::kBool, shape, {})), expected);
  }
}

TEST(NpyTest, HeaderPaddingAlwaysAtLeastOneSpace) {
  // numpy pads 64 - (len % 64) spaces, i.e. a full 64 when already aligned.
  for (std::int64_t d = 1; d < 100000000; d = d * 10 + 7) {
    for (int ndim = 1; ndim <= 12; ++ndim) {
      const std::vector<std::int64_t> shape(static_cast<std::size_t>(ndim), d);
      std::vector<std::int64_t> with_zero = shape;
      with_zero.push_back(0);
      const std::vector<std::byte> file = serialize_npy(DType::kI32, with_zero, {});
      ASSERT_EQ(file.size() % 64, 0u);
      const std::string s = string_of(file);
      ASSERT_EQ(s.back(), '\n');
      ASSERT_EQ(s[s.size() - 2], ' ');
      const std::size_t header_len = static_cast<std::size_t>(static_cast<unsigned char>(s[8])) |
                                     static_cast<std::size_t>(static_cast<unsigned char>(s[9]))
                                         << 8;
      ASSERT_EQ(header_len + 10, s.size());
      EXPECT_EQ(parse_npy(file, "mem").shape, with_zero);
    }
  }
}

TEST(NpyTest, ParsesVersions2And3) {
  const std::string dict = "{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }";
  for (int major : {2, 3}) {
    const NpyArray a =
        parse_npy(bytes_of(npy_image(dict, std::string("\x01\x00\xff\xff", 4), major)), "v.npy");
    EXPECT_EQ(a.dtype, DType::kI16);
    EXPECT_EQ(a.shape, std::vector<std::int64_t>{2});
    EXPECT_EQ(string_of(a.data), std::string("\x01\x00\xff\xff", 4));
  }
}

TEST(NpyTest, ToleratesWhatPythonAllows) {
  const std::string data(6, 'x');
  for (std::string_view dict : {
           "{'shape': (3,), 'fortran_order': False, 'descr': '<f2'}",  // any order, no trailing
                                                                       // comma
           "{ 'descr' : '<f2' , 'fortran_order' : False , 'shape' : ( 3 , ) , }",
           "{\"descr\": \"<f2\", \"fortran_order\": False, \"shape\": (3,)}",  // double quotes
           "{'descr': '<f2', 'fortran_order': False, 'shape': (3L,), }",       // Python 2 long
           "{'descr': '=f2', 'fortran_order': False, 'shape': (3,), }",  // native (little-endian
                                                                         // host)
       }) {
    const NpyArray a = parse_npy(bytes_of(npy_image(dict, data)), "ok.npy");
    EXPECT_EQ(a.dtype, DType::kF16) << dict;
    EXPECT_EQ(a.shape, std::vector<std::int64_t>{3}) << dict;
  }
  // Byte order is irrelevant for 1-byte types and for bfloat16 saved as '|V2'.
  EXPECT_EQ(
      parse_npy(
          bytes_of(npy_image("{'descr': '|V2', 'fortran_order': False, 'shape': (), }", "ab")), "m")
          .dtype,
      DType::kBF16);
  EXPECT_EQ(
      parse_npy(bytes_of(npy_image("{'descr': '<u1', 'fortran_order': False, 'shape': (), }", "a")),
                "m")
          .dtype,
      DType::kU8);
  // A header without numpy's 64-byte padding (older writers used 16).
  const std::string bare = "{'descr': '|i1', 'fortran_order': False, 'shape': (1,), }\n";
  std::string image =
      std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(bare.size()) + '\0' + bare + "z";
  EXPECT_EQ(parse_npy(bytes_of(image), "m").data.size(), 1u);
}

const std::string kGoodDict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
const std::string kGoodData(8, '\0');

TEST(NpyTest, RejectsBadMagic) {
  EXPECT_REJECTED("PK\x03\x04 this is a zip file", "not a .npy file");
  EXPECT_REJECTED("", "truncated header");
  EXPECT_REJECTED("\x93NUM", "truncated header");
  std::string image = npy_image(kGoodDict, kGoodData);
  image[1] = 'n';
  EXPECT_REJECTED(image, "not a .npy file");
}

TEST(NpyTest, RejectsUnknownVersion) {
  std::string image = npy_image(kGoodDict, kGoodData);
  image[6] = 4;
  EXPECT_REJECTED(image, "unsupported .npy format version 4.0");
  image[6] = 1;
  image[7] = 1;
  EXPECT_REJECTED(image, "unsupported .npy format version 1.1");
}

TEST(NpyTest, RejectsTruncatedHeader) {
  EXPECT_REJECTED(std::string("\x93NUMPY\x01\x00", 8), "truncated header");
  EXPECT_REJECTED(std::string("\x93NUMPY\x01\x00\x10", 9), "truncated header");
  EXPECT_REJECTED(std::string("\x93NUMPY\x02\x00\x10\x00\x00", 11), "truncated header");
}

TEST(NpyTest, RejectsHeaderLengthPastEof) {
  const std::string image = npy_image(kGoodDict, kGoodData);
  EXPECT_REJECTED(image.substr(0, 100), "header length 118 runs past the end of the file");
  std::string huge = std::string("\x93NUMPY\x02\x00\xff\xff\xff\xff", 12) + kGoodDict;
  EXPECT_REJECTED(huge, "header length 4294967295 runs past the end of the file");
}

TEST(NpyTest, RejectsMalformedDict) {
  for (std::string_view dict : {
           "[1, 2, 3]",
           "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), ",  // unclosed
           "{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}",    // missing comma
           "{'descr' '<f4', 'fortran_order': False, 'shape': (2,)}",    // missing colon
           "{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}",    // quote mismatch
           "{'descr': '<f4', 'fortran_order': false, 'shape': (2,)}",   // Python spells it False
           "{'descr': '<f4', 'fortran_order': False, 'shape': (2)}",    // an int, not a tuple
           "{'descr': '<f4', 'fortran_order': False, 'shape': [2]}",    // a list
           "{'descr': '<f4', 'fortran_order': False, 'shape': (2,,)}",
           "{'descr': '<f4', 'fortran_order': False, 'shape': (2.0,)}",
           "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} junk",
           "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}",
           "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}",
           "{'descr': '<\\x66\\x34', 'fortran_order': False, 'shape': (2,)}",
       }) {
    SCOPED_TRACE(dict);
    EXPECT_REJECTED(npy_image(dict, kGoodData), "malformed header");
  }
}

TEST(NpyTest, RejectsMissingKey) {
  EXPECT_REJECTED(npy_image("{'descr': '<f4', 'fortran_order': False}", kGoodData),
                  "missing key 'shape'");
  EXPECT_REJECTED(npy_image("{'descr': '<f4', 'shape': (2,)}", kGoodData),
                  "missing key 'fortran_order'");
  EXPECT_REJECTED(npy_image("{'fortran_order': False, 'shape': (2,)}", kGoodData),
                  "missing key 'descr'");
  EXPECT_REJECTED(npy_image("{}", kGoodData), "missing key");
}

TEST(NpyTest, RejectsBigEndian) {
  EXPECT_REJECTED(npy_image("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", kGoodData),
                  "big-endian arrays are not supported");
  EXPECT_REJECTED(npy_image("{'descr': '>V2', 'fortran_order': False, 'shape': (4,), }", kGoodData),
                  "big-endian arrays are not supported");
}

TEST(NpyTest, RejectsFortranOrder) {
  EXPECT_REJECTED(npy_image("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", kGoodData),
                  "Fortran-order arrays are not supported; save with np.ascontiguousarray");
}

TEST(NpyTest, RejectsUnsupportedDTypes) {
  EXPECT_REJECTED(npy_image("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", kGoodData),
                  "unsupported dtype '<c8'");
  EXPECT_REJECTED(npy_image("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", kGoodData),
                  "object arrays are not supported");
  EXPECT_REJECTED(npy_image("{'descr': '<U2', 'fortran_order': False, 'shape': (1,), }", kGoodData),
                  "string arrays are not supported");
  EXPECT_REJECTED(
      npy_image("{'descr': [('a', '<f4'), ('b', '<f4')], 'fortran_order': False, 'shape': (1,), }",
                kGoodData),
      "structured dtypes are not supported");
  EXPECT_REJECTED(npy_image("{'descr': '|V1', 'fortran_order': False, 'shape': (8,), }", kGoodData),
                  "unsupported dtype '|V1'");
  EXPECT_REJECTED(npy_image("{'descr': '|f4', 'fortran_order': False, 'shape': (2,), }", kGoodData),
                  "unsupported dtype '|f4'");
  // Hostile bytes in the descr are escaped, keeping the message on one line.
  EXPECT_REJECTED(
      npy_image("{'descr': '<f\t\x01', 'fortran_order': False, 'shape': (2,), }", kGoodData),
      "unsupported dtype '<f\\x09\\x01'");
}

TEST(NpyTest, RejectsNegativeDim) {
  EXPECT_REJECTED(
      npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1), }", kGoodData),
      "negative dimension -1 in shape");
}

TEST(NpyTest, RejectsOverflowingShape) {
  // (2**62, 2**62): the element count overflows 64 bits.
  EXPECT_REJECTED(npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': "
                            "(4611686018427387904, 4611686018427387904), }",
                            kGoodData),
                  "shape (4611686018427387904, 4611686018427387904) is too large");
  // 2**62 float32 elements: the count fits, the byte size does not.
  EXPECT_REJECTED(
      npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904,), }",
                kGoodData),
      "is too large");
  // A dimension that is not even an int64.
  EXPECT_REJECTED(
      npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }",
                kGoodData),
      "does not fit in 64 bits");
  // Huge but representable: rejected against the bytes actually present.
  EXPECT_REJECTED(
      npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 1000000000), }",
                kGoodData),
      "truncated: expected 4000000000000000000 data bytes, found 8");
  // A zero dimension makes the array empty whatever the others are.
  const NpyArray a =
      parse_npy(bytes_of(npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': "
                                   "(4611686018427387904, 0, 4611686018427387904), }")),
                "m");
  EXPECT_EQ(a.element_count(), 0u);
  // Too many dimensions.
  std::string many = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (int i = 0; i < 65; ++i) many += "1, ";
  EXPECT_REJECTED(npy_image(many + "), }", std::string(4, '\0')), "more than 64 dimensions");
}

TEST(NpyTest, RejectsTruncatedData) {
  EXPECT_REJECTED(npy_image(kGoodDict, std::string(5, '\0')),
                  "truncated: expected 8 data bytes, found 5");
  EXPECT_REJECTED(npy_image(kGoodDict, ""), "truncated: expected 8 data bytes, found 0");
}

TEST(NpyTest, RejectsTrailingBytes) {
  EXPECT_REJECTED(npy_image(kGoodDict, std::string(9, '\0')),
                  "trailing bytes after the array data: expected 8 data bytes, found 9");
}

TEST(NpyTest, ReadFileErrorsNameThePath) {
  TempDir dir;
  const fs::path missing = dir.path() / "missing.npy";
  try {
    read_npy(missing);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "cannot open '" + missing.string() + "': No such file or directory");
  }
  // The file checks apply to files as well as to memory, with the path named.
  const std::string image = npy_image(kGoodDict, kGoodData);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {image.substr(0, image.size() - 3), "truncated: expected 8 data bytes, found 5"},
      {image + "xyz", "trailing bytes after the array data: expected 8 data bytes, found 11"},
      {image.substr(0, 50), "header length 118 runs past the end of the file"},
      {image.substr(0, 9), "truncated header"},
      {"hello", "not a .npy file"},
  };
  for (const auto& [content, what] : cases) {
    const fs::path p = dir.path() / "f.npy";
    std::ofstream(p, std::ios::binary) << content;
    try {
      read_npy(p);
      ADD_FAILURE() << "no error for " << what;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind(p.string() + ": ", 0), 0u) << msg;
      EXPECT_NE(msg.find(what), std::string::npos) << msg;
    }
  }
  // A directory is not a file.
  EXPECT_THROW(read_npy(dir.path()), Error);
}

// Pipes (e.g. bash's <(...)) have no size up front; the same checks apply.
TEST(NpyTest, ReadsFromPipe) {
  const std::string image = npy_image(kGoodDict, kGoodData);
  for (const auto& [content, what] : std::vector<std::pair<std::string, std::string>>{
           {image, ""},
           {image.substr(0, image.size() - 1), "truncated: expected 8 data bytes, found 7"},
           {image + "x",
            "trailing bytes after the array data: expected 8 data bytes, found more than 8"},
           {image.substr(0, 60),
            "header length 118 runs past the end of the file (only 50 bytes follow"},
       }) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    ASSERT_EQ(::write(fds[1], content.data(), content.size()),
              static_cast<ssize_t>(content.size()));
    ::close(fds[1]);
    const std::string path = "/proc/self/fd/" + std::to_string(fds[0]);
    try {
      const NpyArray a = read_npy(path);
      EXPECT_EQ(what, "") << "accepted";
      EXPECT_EQ(a.shape, std::vector<std::int64_t>{2});
    } catch (const Error& e) {
      EXPECT_NE(what, "") << e.what();
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
    ::close(fds[0]);
  }
}

TEST(NpyTest, UnwritableDestinationLeavesNothing) {
  TempDir dir;
  const std::set<std::string> before = {"keep"};
  fs::create_directory(dir.path() / "keep");
  // The destination directory does not exist.
  const fs::path p = dir.path() / "nodir" / "x.npy";
  try {
    write_npy(p, DType::kU8, std::vector<std::int64_t>{1}, bytes_of("a"));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "cannot write '" + p.string() + "': No such file or directory");
  }
  EXPECT_EQ(dir.listing(), before);
  // The destination is a directory: the temporary is written, rename fails,
  // and the temporary must be gone afterwards.
  const fs::path d = dir.path() / "keep";
  fs::create_directory(d / "inner");
  try {
    write_file_atomic(d / "inner", bytes_of("data"));
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg, "cannot write '" + (d / "inner").string() + "': Is a directory");
  }
  EXPECT_EQ(dir.listing(), before);
  std::set<std::string> inside;
  for (const auto& e : fs::directory_iterator(d)) inside.insert(e.path().filename().string());
  EXPECT_EQ(inside, std::set<std::string>{"inner"});
  // Data that does not match the shape is refused before anything is written.
  EXPECT_THROW(
      write_npy(dir.path() / "y.npy", DType::kF32, std::vector<std::int64_t>{2}, bytes_of("abc")),
      Error);
  EXPECT_EQ(dir.listing(), before);
}

TEST(NpyTest, SerializeChecksItsArguments) {
  EXPECT_THROW(serialize_npy(DType::kF32, std::vector<std::int64_t>{-1}, {}), Error);
  EXPECT_THROW(serialize_npy(DType::kF32, std::vector<std::int64_t>{3}, std::vector<std::byte>(11)),
               Error);
  EXPECT_THROW(serialize_npy(DType::kF32, std::vector<std::int64_t>{INT64_MAX, INT64_MAX}, {}),
               Error);
}

// SIGTERM while a large file is being written: the handler removes the
// temporary and the process still dies of SIGTERM.
TEST(NpyTest, SignalDuringWriteRemovesTemporary) {
  TempDir dir;
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const fs::path target = dir.path() / "big.npy";
    std::thread killer([&] {
      // Wait for the temporary to appear, then interrupt the write.
      for (int i = 0; i < 20000; ++i) {
        for (const auto& e : fs::directory_iterator(dir.path())) {
          if (e.path().filename().string().find(".tmp.") != std::string::npos) {
            ::kill(::getpid(), SIGTERM);
            return;
          }
        }
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
    });
    std::vector<std::byte> big(std::size_t{256} << 20);
    for (int i = 0; i < 8; ++i) write_file_atomic(target, big);
    killer.join();
    ::_exit(3);  // not interrupted: the test cannot tell; reported below
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status))
      << "the writer was not interrupted (exit " << WEXITSTATUS(status) << ")";
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
  for (const auto& name : dir.listing()) {
    EXPECT_EQ(name.find(".tmp."), std::string::npos) << "temporary left behind: " << name;
  }
}

}  // namespace
}  // namespace lowp::io
