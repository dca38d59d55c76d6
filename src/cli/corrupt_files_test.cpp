// Corrupted model files as users meet them (a truncated download, flipped bits, a spliced or
// overwritten stretch): a few hundred mutations of the committed zoo models, each given to
// `gos inspect` and `gos run`. Every one ends with exit code 0 (the mutation left a valid model)
// or 2 (one line saying what is wrong), never a crash or an internal error.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "cli/run_binary.h"
#include "data/npy.h"
#include "util/scratch_folder.h"

namespace gos::cli {
namespace {

namespace fs = std::filesystem;
using testing::run_gos;

std::string read_bytes(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << file.rdbuf();
  return bytes.str();
}

// Mutation `trial` of `bytes`: the kind cycles, the positions are seeded.
std::string mutated(std::string bytes, int trial) {
  std::mt19937 random(static_cast<unsigned>(trial) * 7919u + 1u);
  auto position = [&](size_t size) { return std::uniform_int_distribution<size_t>(0, size - 1)(random); };
  switch (trial % 4) {
    case 0:  // flipped bits
      for (int flip = 1 + trial % 8; flip > 0; --flip) bytes[position(bytes.size())] ^= static_cast<char>(1u << (random() % 8));
      break;
    case 1:  // truncated
      bytes.resize(position(bytes.size()));
      break;
    case 2: {  // a stretch overwritten with random bytes
      const size_t start = position(bytes.size()), length = std::min<size_t>(bytes.size() - start, 1 + random() % 64);
      for (size_t i = 0; i < length; ++i) bytes[start + i] = static_cast<char>(random());
      break;
    }
    default: {  // a stretch spliced in elsewhere
      const size_t from = position(bytes.size()), length = std::min<size_t>(bytes.size() - from, 1 + random() % 256);
      bytes.insert(position(bytes.size()), bytes.substr(from, length));
    }
  }
  return bytes;
}

void expect_clean_exits(const std::string& model, int first_trial, int trials) {
  const fs::path source = fs::path(GOS_MODELS_DIR) / (model + ".onnx");
  ASSERT_TRUE(fs::exists(source)) << source;
  const std::string bytes = read_bytes(source);
  util::ScratchFolder scratch("gos-corrupt-test");
  const fs::path input = scratch.path() / "x.npy";  // a Fashion-MNIST-shaped sample, as the zoo models read
  data::write_npy(input.string(), {1, 1, 28, 28}, std::vector<float>(28 * 28, 0.5f));
  int valid = 0;
  for (int trial = first_trial; trial < first_trial + trials; ++trial) {
    const fs::path file = scratch.path() / "model.onnx";
    std::ofstream(file, std::ios::binary) << mutated(bytes, trial);
    const auto inspected = run_gos({"inspect", file.string()});
    EXPECT_TRUE(inspected.exit_code == 0 || inspected.exit_code == 2)
        << model << " mutation " << trial << ": gos inspect exited " << inspected.exit_code << ": " << inspected.err;
    if (inspected.exit_code == 2) {
      EXPECT_EQ(std::count(inspected.err.begin(), inspected.err.end(), '\n'), 1) << inspected.err;
      continue;
    }
    ++valid;
    // A model that still imports also runs (weights changed, structure intact), or says why not.
    const auto ran = run_gos({"run", file.string(), "--input", input.string(), "--backend", "interpreter", "-o",
                              (scratch.path() / "y.npy").string()});
    EXPECT_TRUE(ran.exit_code == 0 || ran.exit_code == 2) << model << " mutation " << trial << ": gos run exited " << ran.exit_code << ": " << ran.err;
  }
  ::testing::Test::RecordProperty("valid_mutants", valid);
}

TEST(CorruptFiles, MutatedResnet20FilesExitWithZeroOrTwo) { expect_clean_exits("resnet20", 0, 100); }
TEST(CorruptFiles, MutatedMixerFilesExitWithZeroOrTwo) { expect_clean_exits("mixer-s", 1000, 100); }

}  // namespace
}  // namespace gos::cli
