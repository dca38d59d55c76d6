// arrays:DIR and arrays:FILE.npz: a user's x/y arrays become class-labelled samples or regression
// targets; numpy's stored and compressed .npz give what the folder gives; every problem is one
// DataError naming the file. The .npz files are written by numpy (skipped when it is missing).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>

#include "data/data.h"
#include "data/npy.h"
#include "util/scratch_folder.h"

namespace gos::data {
namespace {

namespace fs = std::filesystem;

int run(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()); }
bool have_numpy() { return run(std::string(GOS_PYTHON) + " -c 'import numpy'") == 0; }

// Packs DIR's six .npy files into .npz files: np.savez (stored) and np.savez_compressed (deflated),
// leaving out the names given after the two outputs.
constexpr const char* kPack = R"(
import sys
import numpy as np
folder, stored, compressed, *left_out = sys.argv[1:]
names = [n for n in ['x_train', 'y_train', 'x_val', 'y_val', 'x_test', 'y_test'] if n not in left_out]
arrays = {n: np.load(f'{folder}/{n}.npy') for n in names}
np.savez(stored, **arrays)
np.savez_compressed(compressed, **arrays)
)";

std::string error_of(const std::function<void()>& load) {
  try {
    load();
  } catch (const DataError& error) {
    return error.what();
  }
  return "(no error)";
}

std::vector<float> ramp(int64_t count, float start) {
  std::vector<float> values(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) values[static_cast<size_t>(i)] = start + 0.25f * static_cast<float>(i);
  return values;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

// Gives an array another one-byte dtype ('|u1' -> '|i1' or '|b1'); the elements stay as they are.
void retype(const fs::path& path, const std::string& from, const std::string& to) {
  std::string bytes = read_bytes(path);
  bytes.replace(bytes.find(from), from.size(), to);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

class Arrays : public ::testing::Test {
 protected:
  util::ScratchFolder scratch_{"gos-arrays"};
  const fs::path set_ = scratch_.file("set");

  void SetUp() override { fs::create_directories(set_); }
  std::string dir() const { return set_.string(); }
  std::string file(const std::string& name) const { return (set_ / name).string(); }

  // Float32 samples [N,2,3] (train 4, val 2, test 3) with int64 labels; the largest label, 4, is
  // only in the test split.
  void write_classes() {
    write_npy(file("x_train.npy"), {4, 2, 3}, ramp(24, 0));
    write_npy(file("y_train.npy"), {4}, std::vector<int64_t>{0, 1, 1, 0});
    write_npy(file("x_val.npy"), {2, 2, 3}, ramp(12, 100));
    write_npy(file("y_val.npy"), {2}, std::vector<int64_t>{0, 2});
    write_npy(file("x_test.npy"), {3, 2, 3}, ramp(18, -50));
    write_npy(file("y_test.npy"), {3}, std::vector<int64_t>{4, 0, 1});
  }

  // Float32 samples [N,3] with float32 targets [N] (train 5, val 2, test 2).
  void write_targets() {
    for (auto [split, n] : {std::pair{"train", 5}, {"val", 2}, {"test", 2}}) {
      write_npy(file(std::string("x_") + split + ".npy"), {n, 3}, ramp(3 * n, static_cast<float>(n)));
      write_npy(file(std::string("y_") + split + ".npy"), {n}, ramp(n, -static_cast<float>(n)));
    }
  }

  // stored.npz and compressed.npz beside the folder, from its files; false when numpy is missing.
  bool pack(const std::string& left_out = "") const {
    std::ofstream(scratch_.file("pack.py")) << kPack;
    const int status = run(std::string(GOS_PYTHON) + " " + scratch_.file("pack.py").string() + " " + dir() + " " +
                           npz("stored") + " " + npz("compressed") + " " + left_out);
    EXPECT_EQ(status, 0) << "numpy could not pack " << dir();
    return status == 0;
  }
  std::string npz(const std::string& kind) const { return scratch_.file(kind + ".npz").string(); }
};

constexpr Split kSplits[] = {Split::Train, Split::Validation, Split::Test};

TEST_F(Arrays, FloatSamplesWithInt64LabelsAreClassesCountedOverEverySplit) {
  write_classes();
  EXPECT_TRUE(array_targets_are_classes(dir()));
  ImageDataset train = load_array_classes(dir(), Split::Train);
  EXPECT_EQ(train.images.shape, (std::vector<int64_t>{4, 2, 3}));
  EXPECT_EQ(train.images.data, ramp(24, 0));
  EXPECT_EQ(train.labels, (std::vector<int64_t>{0, 1, 1, 0}));
  EXPECT_EQ(train.classes, 5) << "label 4 is only in y_test.npy, yet every split has 5 classes";
  EXPECT_TRUE(train.class_names.empty());
  ImageDataset val = load_array_classes(dir(), Split::Validation);
  EXPECT_EQ(val.images.shape, (std::vector<int64_t>{2, 2, 3}));
  EXPECT_EQ(val.images.data, ramp(12, 100));
  EXPECT_EQ(val.labels, (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(val.classes, 5);
  ImageDataset test = load_array_classes(dir(), Split::Test);
  EXPECT_EQ(test.images.data, ramp(18, -50));
  EXPECT_EQ(test.labels, (std::vector<int64_t>{4, 0, 1}));
  EXPECT_EQ(test.classes, 5);
}

TEST_F(Arrays, BytesBecomeTheUnitRangeAndSmallIntegerLabelsCount) {
  for (const char* split : {"train", "val", "test"}) {
    write_npy(file(std::string("x_") + split + ".npy"), {2, 1, 2}, std::vector<uint8_t>{0, 255, 51, 102});
  }
  write_npy(file("y_train.npy"), {2}, std::vector<int32_t>{1, 0});
  write_npy(file("y_val.npy"), {2}, std::vector<uint8_t>{0, 3});
  write_npy(file("y_test.npy"), {2}, std::vector<uint8_t>{2, 1});
  retype(file("y_test.npy"), "|u1", "|i1");
  ImageDataset train = load_array_classes(dir(), Split::Train);
  EXPECT_EQ(train.images.shape, (std::vector<int64_t>{2, 1, 2}));
  EXPECT_EQ(train.images.data, (std::vector<float>{0.0f, 1.0f, 51 / 255.0f, 102 / 255.0f}));
  EXPECT_EQ(train.labels, (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(train.classes, 4);
  EXPECT_EQ(load_array_classes(dir(), Split::Test).labels, (std::vector<int64_t>{2, 1}));
  retype(file("y_train.npy"), "<i4", "<f4");
  EXPECT_FALSE(array_targets_are_classes(dir()));
  write_npy(file("y_train.npy"), {2}, std::vector<uint8_t>{1, 0});
  retype(file("y_train.npy"), "|u1", "|b1");
  EXPECT_TRUE(array_targets_are_classes(dir())) << "bools are labels 0 and 1";
  EXPECT_EQ(load_array_classes(dir(), Split::Train).labels, (std::vector<int64_t>{1, 0}));
}

TEST_F(Arrays, FloatTargetsAreRegressionAndAVectorBecomesAColumn) {
  write_targets();
  EXPECT_FALSE(array_targets_are_classes(dir()));
  for (Split split : kSplits) {
    const int64_t n = split == Split::Train ? 5 : 2;
    RegressionDataset dataset = load_array_targets(dir(), split);
    EXPECT_EQ(dataset.size(), n);
    EXPECT_EQ(dataset.inputs.shape, (std::vector<int64_t>{n, 3}));
    EXPECT_EQ(dataset.inputs.data, ramp(3 * n, static_cast<float>(n)));
    EXPECT_EQ(dataset.targets.shape, (std::vector<int64_t>{n, 1}));
    EXPECT_EQ(dataset.targets.data, ramp(n, -static_cast<float>(n)));
  }
}

TEST_F(Arrays, Float64SamplesAndTargetMatricesAreConverted) {
  for (auto [split, n] : {std::pair{"train", 3}, {"val", 1}, {"test", 2}}) {
    std::vector<double> x(static_cast<size_t>(2 * n)), y(static_cast<size_t>(2 * n));
    for (size_t i = 0; i < x.size(); ++i) {
      x[i] = 0.1 * static_cast<double>(i);
      y[i] = 1e3 + static_cast<double>(i);
    }
    write_npy(file(std::string("x_") + split + ".npy"), {n, 2}, x);
    write_npy(file(std::string("y_") + split + ".npy"), {n, 2}, y);
  }
  RegressionDataset train = load_array_targets(dir(), Split::Train);
  EXPECT_EQ(train.inputs.shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(train.inputs.data[5], static_cast<float>(0.5));
  EXPECT_EQ(train.targets.shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(train.targets.data, (std::vector<float>{1000, 1001, 1002, 1003, 1004, 1005}));
  EXPECT_EQ(load_array_targets(dir(), Split::Validation).targets.shape, (std::vector<int64_t>{1, 2}));
}

TEST_F(Arrays, StoredAndCompressedNpzGiveWhatTheFolderGives) {
  if (!have_numpy()) GTEST_SKIP() << GOS_PYTHON << " cannot import numpy";
  // Large enough that the deflated x_train is read in many pieces.
  std::vector<float> x(300 * 3 * 8 * 8);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.01f * static_cast<float>(i)) * static_cast<float>(i % 7);
  std::vector<int64_t> y(300);
  for (size_t i = 0; i < y.size(); ++i) y[i] = static_cast<int64_t>(i * 7 % 10);
  write_npy(file("x_train.npy"), {300, 3, 8, 8}, x);
  write_npy(file("y_train.npy"), {300}, y);
  write_npy(file("x_val.npy"), {2, 3, 8, 8}, ramp(2 * 192, 1));
  write_npy(file("y_val.npy"), {2}, std::vector<int64_t>{3, 11});
  write_npy(file("x_test.npy"), {1, 3, 8, 8}, ramp(192, 2));
  write_npy(file("y_test.npy"), {1}, std::vector<int64_t>{0});
  ASSERT_TRUE(pack());
  ASSERT_LT(fs::file_size(npz("compressed")), fs::file_size(npz("stored"))) << "savez_compressed deflates";
  for (const std::string& path : {npz("stored"), npz("compressed")}) {
    EXPECT_TRUE(array_targets_are_classes(path)) << path;
    for (Split split : kSplits) {
      ImageDataset from_folder = load_array_classes(dir(), split);
      ImageDataset from_npz = load_array_classes(path, split);
      EXPECT_EQ(from_npz.images.shape, from_folder.images.shape) << path << " " << to_string(split);
      EXPECT_EQ(from_npz.images.data, from_folder.images.data) << path << " " << to_string(split);
      EXPECT_EQ(from_npz.labels, from_folder.labels) << path << " " << to_string(split);
      EXPECT_EQ(from_npz.classes, 12) << path;
    }
  }
  EXPECT_EQ(load_array_classes(npz("compressed"), Split::Train).images.data, x);

  write_targets();
  ASSERT_TRUE(pack());
  for (const std::string& path : {npz("stored"), npz("compressed")}) {
    EXPECT_FALSE(array_targets_are_classes(path)) << path;
    for (Split split : kSplits) {
      RegressionDataset from_folder = load_array_targets(dir(), split);
      RegressionDataset from_npz = load_array_targets(path, split);
      EXPECT_EQ(from_npz.inputs.data, from_folder.inputs.data) << path << " " << to_string(split);
      EXPECT_EQ(from_npz.targets.shape, from_folder.targets.shape) << path << " " << to_string(split);
      EXPECT_EQ(from_npz.targets.data, from_folder.targets.data) << path << " " << to_string(split);
    }
  }
}

// ---- Errors: one line naming the file --------------------------------------------------------------

TEST_F(Arrays, MissingFilesAreNamedWithTheExpectedNames) {
  write_classes();
  fs::remove(file("x_val.npy"));
  fs::remove(file("y_test.npy"));
  const std::string expected = dir() +
                               ": missing x_val.npy, y_test.npy; arrays:DIR holds x_train.npy, y_train.npy, x_val.npy, "
                               "y_val.npy, x_test.npy and y_test.npy";
  EXPECT_EQ(error_of([&] { load_array_classes(dir(), Split::Train); }), expected);
  EXPECT_EQ(error_of([&] { array_targets_are_classes(dir()); }), expected);
  const std::string nowhere = scratch_.file("none").string();
  EXPECT_EQ(error_of([&] { load_array_targets(nowhere, Split::Train); }),
            nowhere + ": no such folder or .npz file (arrays:PATH names a folder of x_train.npy, y_train.npy, ... or an "
                      ".npz holding them; docs/data.md)");
}

TEST_F(Arrays, SamplesAndLabelsMustAgreeInNumber) {
  write_classes();
  write_npy(file("y_val.npy"), {3}, std::vector<int64_t>{0, 1, 2});
  EXPECT_EQ(error_of([&] { load_array_classes(dir(), Split::Validation); }),
            dir() + ": x_val.npy has 2 samples; y_val.npy has 3");
  write_targets();
  write_npy(file("y_test.npy"), {1}, std::vector<float>{1});
  EXPECT_EQ(error_of([&] { load_array_targets(dir(), Split::Test); }), dir() + ": x_test.npy has 2 samples; y_test.npy has 1");
}

TEST_F(Arrays, EverySplitHasTheSameSampleShape) {
  write_classes();
  write_npy(file("x_val.npy"), {2, 3, 2}, ramp(12, 0));
  EXPECT_EQ(error_of([&] { load_array_classes(dir(), Split::Validation); }),
            dir() + ": x_val.npy samples are [3,2]; x_train.npy's are [2,3]");
  write_npy(file("x_test.npy"), {3, 6}, ramp(18, 0));
  EXPECT_EQ(error_of([&] { load_array_classes(dir(), Split::Test); }),
            dir() + ": x_test.npy samples are [6]; x_train.npy's are [2,3]");
  write_targets();
  write_npy(file("y_val.npy"), {2, 2}, ramp(4, 0));
  EXPECT_EQ(error_of([&] { load_array_targets(dir(), Split::Validation); }),
            dir() + ": y_val.npy has 2 targets per sample; y_train.npy has 1");
}

TEST_F(Arrays, EachSampleNeedsAShape) {
  write_classes();
  write_npy(file("x_train.npy"), {4}, ramp(4, 0));
  EXPECT_EQ(error_of([&] { load_array_classes(dir(), Split::Train); }),
            file("x_train.npy") + " is [4]: each sample needs a shape, e.g. [4,1] (x.reshape(-1, 1))");
}

TEST_F(Arrays, AnEmptySplitIsAnError) {
  write_classes();
  write_npy(file("x_test.npy"), {0, 2, 3}, std::vector<float>{});
  write_npy(file("y_test.npy"), {0}, std::vector<int64_t>{});
  EXPECT_EQ(error_of([&] { load_array_classes(dir(), Split::Test); }),
            file("x_test.npy") + ": no samples (shape [0,2,3]); every split needs some");
  EXPECT_EQ(load_array_classes(dir(), Split::Train).classes, 3) << "the other splits still load";
}

TEST_F(Arrays, NaNAndInfinityAreRefused) {
  write_classes();
  std::vector<float> x = ramp(12, 0);
  x[7] = std::numeric_limits<float>::quiet_NaN();
  write_npy(file("x_val.npy"), {2, 2, 3}, x);
  EXPECT_EQ(error_of([&] { load_array_classes(dir(), Split::Validation); }),
            file("x_val.npy") + ": NaN or infinity at sample 1; gos needs finite values");
  write_targets();
  write_npy(file("y_train.npy"), {5}, std::vector<float>{1, 2, -std::numeric_limits<float>::infinity(), 4, 5});
  EXPECT_EQ(error_of([&] { load_array_targets(dir(), Split::Train); }),
            file("y_train.npy") + ": NaN or infinity at sample 2; gos needs finite values");
  write_npy(file("x_test.npy"), {2, 3}, std::vector<double>{1, 2, 3, 4, 1e300, 6});
  EXPECT_EQ(error_of([&] { load_array_targets(dir(), Split::Test); }),
            file("x_test.npy") + ": NaN or infinity at sample 1 (or a value beyond float32's range); gos needs finite values");
}

TEST_F(Arrays, LabelsAndTargetsAreNotMixedUp) {
  write_targets();
  EXPECT_EQ(error_of([&] { load_array_classes(dir(), Split::Train); }),
            file("y_train.npy") +
                ": holds float32 targets (regression), not class labels; save integer labels (y.astype('int64')) to classify");
  write_classes();
  EXPECT_EQ(error_of([&] { load_array_targets(dir(), Split::Test); }),
            file("y_test.npy") +
                ": holds int64 class labels, not float targets; save float targets (y.astype('float32')) for regression");
  write_npy(file("y_val.npy"), {2}, std::vector<float>{0, 1});
  EXPECT_EQ(error_of([&] { load_array_classes(dir(), Split::Train); }).find(file("y_val.npy") + ": holds float32 targets"),
            0u)
      << "every split's labels are read to count the classes";
}

TEST_F(Arrays, LabelsAreAVectorOfNonNegativeIntegers) {
  write_classes();
  write_npy(file("y_train.npy"), {4}, std::vector<int64_t>{0, 1, -1, 0});
  EXPECT_EQ(error_of([&] { load_array_classes(dir(), Split::Validation); }),
            file("y_train.npy") + ": label -1 at sample 2; labels are 0 to 16777215");
  write_npy(file("y_train.npy"), {4, 1}, std::vector<int64_t>{0, 1, 1, 0});
  EXPECT_EQ(error_of([&] { load_array_classes(dir(), Split::Train); }),
            file("y_train.npy") + ": shape [4,1]; class labels are [N] (y.reshape(-1))");
}

TEST_F(Arrays, SamplesAreFloatsOrBytes) {
  write_classes();
  write_npy(file("x_train.npy"), {4, 1}, std::vector<int32_t>{1, 2, 3, 4});
  EXPECT_EQ(error_of([&] { load_array_classes(dir(), Split::Train); }),
            file("x_train.npy") + ": int32 samples; save x as float32, float64 or uint8 (bytes, scaled to [0,1])");
}

TEST_F(Arrays, AFileThatIsNotAZipIsNamed) {
  std::ofstream(npz("text")) << "x_train,y_train\n1,2\n";
  EXPECT_EQ(error_of([&] { load_array_classes(npz("text"), Split::Train); }),
            npz("text") + ": not a zip file; write the arrays with numpy.savez or numpy.savez_compressed, or name a "
                          "folder of .npy files");
  EXPECT_EQ(error_of([&] { array_targets_are_classes(npz("text")); }).find(npz("text") + ": not a zip file"), 0u);
}

TEST_F(Arrays, AnNpzLackingAMemberOrDamagedIsNamed) {
  if (!have_numpy()) GTEST_SKIP() << GOS_PYTHON << " cannot import numpy";
  write_classes();
  ASSERT_TRUE(pack("y_test"));
  for (const std::string& path : {npz("stored"), npz("compressed")}) {
    EXPECT_EQ(error_of([&] { load_array_classes(path, Split::Train); }),
              path + ": no y_test.npy inside; the .npz needs x_train, y_train, x_val, y_val, x_test and y_test "
                     "(numpy.savez(FILE, x_train=..., y_train=..., ...))");
  }
  // A damaged byte inside the first member's data (stored: only its CRC tells; deflated: the CRC or
  // the inflater).
  write_npy(file("x_train.npy"), {400, 2, 3}, ramp(2400, 0));
  write_npy(file("y_train.npy"), {400}, std::vector<int64_t>(400, 1));
  ASSERT_TRUE(pack());
  for (const std::string& path : {npz("stored"), npz("compressed")}) {
    std::string bytes = read_bytes(path);
    bytes[bytes.size() / 4] = static_cast<char>(bytes[bytes.size() / 4] ^ 0x5A);
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
    const std::string error = error_of([&] { load_array_classes(path, Split::Train); });
    EXPECT_EQ(error.find(path + "/x_train.npy: corrupt .npz member ("), 0u) << error;
  }
}

}  // namespace
}  // namespace gos::data
