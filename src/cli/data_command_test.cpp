// `gos data synth-ppg` as a user runs it: a tiny set written to a scratch folder, read back in the
// PPG layout; bad arguments are exit code 2 with a message.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/run_binary.h"
#include "data/data.h"
#include "data/npy.h"
#include "util/scratch_folder.h"

namespace gos::cli {
namespace {

using testing::run_gos;

class DataCommand : public ::testing::Test {
 protected:
  util::ScratchFolder scratch_{"gos-cli-data"};
  std::string folder(const std::string& name) const { return scratch_.file(name).string(); }
};

TEST_F(DataCommand, SynthPpgWritesTheLayoutAndSummarises) {
  const std::string out = folder("set");
  auto run = run_gos({"data", "synth-ppg", "--subjects", "3", "--minutes", "1", "--seed", "5", "-o", out, "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto summary = nlohmann::json::parse(run.out);
  EXPECT_EQ(summary.at("subjects"), 3);
  EXPECT_EQ(summary.at("minutes"), 1);
  EXPECT_EQ(summary.at("windows"), 81) << "27 windows of 8 s, shifted by 2 s, per minute";
  EXPECT_EQ(summary.at("dir"), out);
  for (const char* subject : {"S1", "S2", "S3"}) {
    const std::filesystem::path dir = std::filesystem::path(out) / subject;
    EXPECT_EQ(data::read_npy((dir / "ppg.npy").string()).shape, (std::vector<int64_t>{60 * 64}));
    EXPECT_EQ(data::read_npy((dir / "acc.npy").string()).shape, (std::vector<int64_t>{60 * 32, 3}));
    EXPECT_EQ(data::read_npy((dir / "hr.npy").string()).shape, (std::vector<int64_t>{27}));
    EXPECT_TRUE(std::filesystem::exists(dir / "activity.npy"));
  }
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(out) / "S4"));
  // Fewer subjects than PPG-DaLiA's are split among themselves: one each here.
  for (auto split : {data::Split::Train, data::Split::Validation, data::Split::Test}) {
    data::PpgDataset windows = data::load_ppg(data::parse_data_spec("ppg:" + out), split);
    EXPECT_EQ(windows.windows.shape, (std::vector<int64_t>{27, 4, 512}));
  }
}

TEST_F(DataCommand, SynthPpgPrintsOneLineAndHonoursTheSeed) {
  auto first = run_gos({"data", "synth-ppg", "--subjects", "3", "--minutes", "1", "--seed", "1", "-o", folder("a")});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(first.out.rfind("wrote 3 synthetic subjects x 1 min (81 windows of 8 s, seed 1) to " + folder("a"), 0), 0u)
      << first.out;
  EXPECT_EQ(std::count(first.out.begin(), first.out.end(), '\n'), 1);
  auto second = run_gos({"data", "synth-ppg", "--subjects", "3", "--minutes", "1", "--seed", "2", "-o", folder("b")});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(data::read_npy(folder("a") + "/S1/ppg.npy").values, data::read_npy(folder("b") + "/S1/ppg.npy").values);
}

TEST_F(DataCommand, BadArgumentsAreExitCode2WithAMessage) {
  for (auto arguments : std::vector<std::vector<std::string>>{
           {"data", "synth-ppg", "--subjects", "0", "-o", folder("x")},
           {"data", "synth-ppg", "--subjects", "2", "-o", folder("x")},
           {"data", "synth-ppg", "--subjects", "16", "-o", folder("x")},
           {"data", "synth-ppg", "--minutes", "0", "-o", folder("x")},
           {"data", "synth-ppg", "--subjects", "2"},
           {"data"}}) {
    auto run = run_gos(arguments);
    EXPECT_EQ(run.exit_code, 2) << arguments.back();
    EXPECT_FALSE(run.err.empty()) << arguments.back();
  }
  EXPECT_FALSE(std::filesystem::exists(folder("x"))) << "nothing written for bad arguments";
  // Fewer than three subjects could not be split into training, validation and test.
  auto two = run_gos({"data", "synth-ppg", "--subjects", "2", "-o", folder("x")});
  EXPECT_NE(two.err.find("--subjects must be at least 3"), std::string::npos) << two.err;
}

TEST_F(DataCommand, AnUnwritableOutputIsExitCode2NamingIt) {
  std::ofstream(scratch_.file("a-file")) << "not a folder";
  const std::string out = folder("a-file") + "/set";
  auto run = run_gos({"data", "synth-ppg", "--subjects", "3", "--minutes", "1", "-o", out});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("cannot create " + out + "/S1"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace gos::cli
