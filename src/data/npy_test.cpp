// .npy files: what gos writes reads back; files as numpy writes them (hand-made bytes) read;
// every broken file is one DataError naming it.
#include "data/npy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>

#include "data/data.h"
#include "util/scratch_folder.h"

namespace gos::data {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A .npy file of the given version around `header` (padded as numpy pads) and raw `data`.
std::string npy_bytes(int major, std::string header, const std::string& data) {
  const size_t length_bytes = major == 1 ? 2 : 4;
  const size_t unpadded = 6 + 2 + length_bytes + header.size() + 1;
  header += std::string((64 - unpadded % 64) % 64, ' ') + "\n";
  std::string bytes = std::string("\x93NUMPY") + static_cast<char>(major) + '\0';
  for (size_t i = 0; i < length_bytes; ++i) bytes += static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  return bytes + header + data;
}

template <typename T>
std::string raw(std::initializer_list<T> values) {
  std::string bytes(values.size() * sizeof(T), '\0');
  std::memcpy(bytes.data(), std::data(values), bytes.size());
  return bytes;
}

std::string error_reading(const std::string& path) {
  try {
    read_npy(path);
  } catch (const DataError& error) {
    return error.what();
  }
  return "(no error)";
}

class Npy : public ::testing::Test {
 protected:
  util::ScratchFolder scratch_{"gos-npy"};
  std::string path(const std::string& name) const { return scratch_.file(name).string(); }
};

TEST_F(Npy, WrittenFloatsReadBackWithTheirShape) {
  const std::vector<float> values{1.5f, -2.0f, 0.25f, 3e-8f, 1e9f, -0.0f};
  write_npy(path("a.npy"), {2, 3}, values);
  NpyArray array = read_npy(path("a.npy"));
  EXPECT_EQ(array.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(array.stored, NpyType::Float32);
  EXPECT_EQ(array.values, values);
}

TEST_F(Npy, WritesTheHeaderNumpyReads) {
  write_npy(path("a.npy"), {2, 3}, std::vector<float>(6, 0.0f));
  const std::string bytes = read_file(path("a.npy"));
  ASSERT_EQ(bytes.size(), 128u + 6 * 4) << "header padded to a multiple of 64 bytes, then the data";
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  EXPECT_EQ(bytes[8] + 256 * bytes[9], 118);
  EXPECT_EQ(bytes.substr(10, 59), "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }");
  EXPECT_EQ(bytes.substr(69, 58), std::string(58, ' '));
  EXPECT_EQ(bytes[127], '\n');
}

TEST_F(Npy, OneDimensionalAndScalarShapesRoundTrip) {
  write_npy(path("v.npy"), {4}, std::vector<float>{1, 2, 3, 4});
  EXPECT_NE(read_file(path("v.npy")).find("'shape': (4,), }"), std::string::npos) << "a 1-tuple keeps its comma";
  EXPECT_EQ(read_npy(path("v.npy")).shape, (std::vector<int64_t>{4}));
  write_npy(path("s.npy"), {}, std::vector<float>{7});
  NpyArray scalar = read_npy(path("s.npy"));
  EXPECT_TRUE(scalar.shape.empty());
  EXPECT_EQ(scalar.values, (std::vector<float>{7}));
  write_npy(path("e.npy"), {0, 3}, std::vector<float>{});
  EXPECT_EQ(read_npy(path("e.npy")).shape, (std::vector<int64_t>{0, 3}));
}

TEST_F(Npy, IntegersAreWrittenAsInt32) {
  write_npy(path("i.npy"), {3}, std::vector<int32_t>{1, -7, 8});
  NpyArray array = read_npy(path("i.npy"));
  EXPECT_EQ(array.stored, NpyType::Int32);
  EXPECT_EQ(array.values, (std::vector<float>{1, -7, 8}));
}

TEST_F(Npy, ReadsFloat64AsNumpyWritesIt) {
  write_file(path("d.npy"), npy_bytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }",
                                       raw<double>({1.5, -2.25, 0.1})));
  NpyArray array = read_npy(path("d.npy"));
  EXPECT_EQ(array.stored, NpyType::Float64);
  EXPECT_EQ(array.shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(array.values, (std::vector<float>{1.5f, -2.25f, 0.1f}));
}

TEST_F(Npy, ReadsInt64AndVersions2And3) {
  write_file(path("l.npy"), npy_bytes(2, "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 1), }",
                                       raw<int64_t>({5, -3})));
  EXPECT_EQ(read_npy(path("l.npy")).values, (std::vector<float>{5, -3}));
  write_file(path("v3.npy"), npy_bytes(3, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (1,), }",
                                        raw<float>({2.5f})));
  EXPECT_EQ(read_npy(path("v3.npy")).values, (std::vector<float>{2.5f}));
}

TEST_F(Npy, ReadsBytesSignedBytesAndBools) {
  write_file(path("u1.npy"), npy_bytes(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }",
                                        raw<uint8_t>({0, 255, 7, 1})));
  NpyArray bytes = read_npy(path("u1.npy"));
  EXPECT_EQ(bytes.stored, NpyType::UInt8);
  EXPECT_EQ(bytes.shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(bytes.values, (std::vector<float>{0, 255, 7, 1}));
  write_file(path("i1.npy"), npy_bytes(1, "{'descr': '|i1', 'fortran_order': False, 'shape': (3,), }",
                                        raw<int8_t>({-128, 127, -1})));
  NpyArray signed_bytes = read_npy(path("i1.npy"));
  EXPECT_EQ(signed_bytes.stored, NpyType::Int8);
  EXPECT_EQ(signed_bytes.values, (std::vector<float>{-128, 127, -1}));
  write_file(path("b1.npy"), npy_bytes(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }",
                                        raw<uint8_t>({0, 1, 2})));
  NpyArray bools = read_npy(path("b1.npy"));
  EXPECT_EQ(bools.stored, NpyType::Bool);
  EXPECT_EQ(bools.values, (std::vector<float>{0, 1, 1})) << "any nonzero byte is true";
  EXPECT_EQ(to_string(NpyType::UInt8), "uint8");
  EXPECT_EQ(to_string(NpyType::Bool), "bool");
}

TEST_F(Npy, WritesFloat64Int64AndBytes) {
  write_npy(path("d.npy"), {2}, std::vector<double>{0.5, -1e300});
  NpyArray doubles = read_npy(path("d.npy"));
  EXPECT_EQ(doubles.stored, NpyType::Float64);
  EXPECT_EQ(doubles.values[0], 0.5f);
  EXPECT_TRUE(std::isinf(doubles.values[1])) << "beyond float32's range";
  write_npy(path("l.npy"), {3, 1}, std::vector<int64_t>{9, -2, 1LL << 20});
  NpyArray longs = read_npy(path("l.npy"));
  EXPECT_EQ(longs.stored, NpyType::Int64);
  EXPECT_EQ(longs.shape, (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(longs.values, (std::vector<float>{9, -2, 1 << 20}));
  write_npy(path("u.npy"), {3}, std::vector<uint8_t>{0, 128, 255});
  EXPECT_NE(read_file(path("u.npy")).find("'descr': '|u1'"), std::string::npos) << "numpy's spelling of a byte";
  NpyArray bytes = read_npy(path("u.npy"));
  EXPECT_EQ(bytes.stored, NpyType::UInt8);
  EXPECT_EQ(bytes.values, (std::vector<float>{0, 128, 255}));
}

TEST_F(Npy, ParsesBytesInMemoryNamingThemInErrors) {
  write_npy(path("a.npy"), {3}, std::vector<float>{1, 2, 3});
  const std::string bytes = read_file(path("a.npy"));
  NpyArray array = parse_npy(bytes, "data.npz/a.npy");
  EXPECT_EQ(array.shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(array.values, (std::vector<float>{1, 2, 3}));
  try {
    parse_npy(std::span<const char>(bytes.data(), bytes.size() - 1), "data.npz/a.npy");
    FAIL() << "parsed a truncated array";
  } catch (const DataError& error) {
    EXPECT_EQ(std::string(error.what()),
              "data.npz/a.npy: truncated: shape (3,) of <f4 needs more than the 11 bytes of data the file holds");
  }
}

TEST_F(Npy, TheHeaderAloneNeedsNoData) {
  write_npy(path("big.npy"), {100, 3}, std::vector<float>(300, 1.0f));
  NpyHeader header = read_npy_header(path("big.npy"));
  EXPECT_EQ(header.shape, (std::vector<int64_t>{100, 3}));
  EXPECT_EQ(header.stored, NpyType::Float32);
  write_file(path("cut.npy"), read_file(path("big.npy")).substr(0, 128));
  EXPECT_EQ(read_npy_header(path("cut.npy")).shape, (std::vector<int64_t>{100, 3})) << "the elements are never read";
  EXPECT_NE(error_reading(path("cut.npy")).find("truncated"), std::string::npos);
  // From a stream that hands out the bytes in order (as a zip member does).
  const std::string v2 = npy_bytes(2, "{'descr': '|b1', 'fortran_order': False, 'shape': (5, 4, 3), }", std::string(60, '\1'));
  size_t at = 0;
  header = read_npy_header(
      [&](char* buffer, size_t count) {
        const size_t n = std::min(count, v2.size() - at);
        std::memcpy(buffer, v2.data() + at, n);
        at += n;
        return n;
      },
      "stream.npy");
  EXPECT_EQ(header.shape, (std::vector<int64_t>{5, 4, 3}));
  EXPECT_EQ(header.stored, NpyType::Bool);
  EXPECT_LT(at, v2.size()) << "stopped at the end of the header";
  try {
    read_npy_header(path("none.npy"));
    FAIL() << "read a missing file's header";
  } catch (const DataError& error) {
    EXPECT_EQ(std::string(error.what()), path("none.npy") + ": cannot open the file (missing or unreadable)");
  }
  write_file(path("short.npy"), std::string("\x93NUMPY\x01\x00\x76\x00{'descr'", 17));
  try {
    read_npy_header(path("short.npy"));
    FAIL() << "read a cut header";
  } catch (const DataError& error) {
    EXPECT_EQ(std::string(error.what()), path("short.npy") + ": truncated .npy header");
  }
}

TEST_F(Npy, MissingFileNamesIt) {
  EXPECT_EQ(error_reading(path("none.npy")), path("none.npy") + ": cannot open the file (missing or unreadable)");
}

TEST_F(Npy, BadMagicIsNotNpy) {
  write_file(path("bad.npy"), "PK\x03\x04 this is a zip");
  EXPECT_EQ(error_reading(path("bad.npy")),
            path("bad.npy") + ": not a .npy file (no \\x93NUMPY magic); write it with numpy.save");
}

TEST_F(Npy, TruncatedDataSaysSo) {
  std::string bytes = npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", raw<float>({1, 2, 3, 4, 5, 6}));
  write_file(path("cut.npy"), bytes.substr(0, bytes.size() - 1));
  EXPECT_EQ(error_reading(path("cut.npy")),
            path("cut.npy") + ": truncated: shape (2, 3) of <f4 needs more than the 23 bytes of data the file holds");
  write_file(path("head.npy"), bytes.substr(0, 30));
  EXPECT_EQ(error_reading(path("head.npy")), path("head.npy") + ": truncated .npy header");
}

TEST_F(Npy, AnAbsurdShapeIsTruncationNotAnAllocation) {
  write_file(path("huge.npy"), npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }",
                                          raw<float>({1})));
  EXPECT_NE(error_reading(path("huge.npy")).find("truncated"), std::string::npos);
}

TEST_F(Npy, UnsupportedDtypesAndOrderSayWhatToDo) {
  write_file(path("f2.npy"), npy_bytes(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }", "xx"));
  EXPECT_EQ(error_reading(path("f2.npy")),
            path("f2.npy") + ": dtype '<f2' is not supported; save float32, float64, int32, int64, uint8, int8 or bool "
                             "(array.astype('float32'))");
  write_file(path("be.npy"), npy_bytes(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", "xxxx"));
  EXPECT_EQ(error_reading(path("be.npy")),
            path("be.npy") + ": big-endian dtype '>f4'; save it little-endian (array.astype('<f4'))");
  write_file(path("f.npy"), npy_bytes(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", raw<float>({1, 2, 3, 4})));
  EXPECT_EQ(error_reading(path("f.npy")),
            path("f.npy") + ": the array is in Fortran order; save it in C order (numpy.ascontiguousarray)");
  std::string future = npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", raw<float>({1}));
  future[6] = 4;
  write_file(path("v4.npy"), future);
  EXPECT_EQ(error_reading(path("v4.npy")), path("v4.npy") + ": .npy format version 4.0; gos reads 1.0, 2.0 and 3.0");
}

TEST_F(Npy, WriterRefusesAMismatchedCountAndAMissingFolder) {
  EXPECT_THROW(write_npy(path("x.npy"), {2, 2}, std::vector<float>{1, 2, 3}), DataError);
  const std::string nowhere = path("no/such/folder/x.npy");
  try {
    write_npy(nowhere, {1}, std::vector<float>{1});
    FAIL() << "wrote into a missing folder";
  } catch (const DataError& error) {
    EXPECT_EQ(std::string(error.what()), nowhere + ": cannot write the file (check that its folder exists and is writable)");
  }
}

}  // namespace
}  // namespace gos::data
