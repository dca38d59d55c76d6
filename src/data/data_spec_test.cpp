// `--data` specs.
#include <gtest/gtest.h>

#include "data/data.h"

namespace gos::data {
namespace {

TEST(DataSpec, FashionMnistDefaultsToTheDebianDirectory) {
  DataSpec spec = parse_data_spec("fashion-mnist");
  EXPECT_EQ(spec.kind, DataSpec::Kind::FashionMnist);
  EXPECT_EQ(spec.dir, kFashionMnistDefaultDir);
}

TEST(DataSpec, FashionMnistTakesADirectory) {
  EXPECT_EQ(parse_data_spec("fashion-mnist:some/dir").dir, "some/dir");
  EXPECT_EQ(parse_data_spec("fashion-mnist:C:/data").dir, "C:/data");
}

TEST(DataSpec, SyntheticTakesAnOptionalCount) {
  DataSpec spec = parse_data_spec("synthetic");
  EXPECT_EQ(spec.kind, DataSpec::Kind::Synthetic);
  EXPECT_EQ(spec.synthetic_count, 1000);
  EXPECT_EQ(parse_data_spec("synthetic:64").synthetic_count, 64);
  EXPECT_EQ(load(parse_data_spec("synthetic:16"), Split::Test).size(), 16);
}

TEST(DataSpec, PpgTakesItsFolder) {
  DataSpec spec = parse_data_spec("ppg:data/dalia");
  EXPECT_EQ(spec.kind, DataSpec::Kind::Ppg);
  EXPECT_EQ(spec.dir, "data/dalia");
}

template <typename Load>
std::string load_error(Load load) {
  try {
    load();
  } catch (const DataError& error) {
    return error.what();
  }
  return "(no error)";
}

TEST(DataSpec, PpgHoldsWindowsNotImagesAndImagesAreNotWindows) {
  EXPECT_EQ(load_error([] { load(parse_data_spec("ppg:some/dir"), Split::Train); }),
            "--data ppg:some/dir holds signal windows, not images: this command needs an image set (fashion-mnist or "
            "synthetic)");
  EXPECT_EQ(load_error([] { load_ppg(parse_data_spec("synthetic:10"), Split::Train); }),
            "this command needs PPG windows (--data ppg:DIR); --data synthetic holds images");
  EXPECT_EQ(load_error([] { load_ppg(parse_data_spec("fashion-mnist"), Split::Test); }),
            "this command needs PPG windows (--data ppg:DIR); --data fashion-mnist holds images");
}

std::string error_of(std::string_view text) {
  try {
    parse_data_spec(text);
  } catch (const DataError& error) {
    return error.what();
  }
  return "(no error)";
}

TEST(DataSpec, RejectsAnythingElseWithOneLine) {
  EXPECT_EQ(error_of("mnist"),
            "unknown --data 'mnist': expected fashion-mnist, fashion-mnist:DIR, synthetic, synthetic:N or ppg:DIR");
  EXPECT_EQ(error_of("fashion-mnist:"), "--data 'fashion-mnist:': the directory is empty");
  EXPECT_EQ(error_of("ppg"), "--data 'ppg': name the folder of per-subject PPG arrays, as in ppg:DIR (docs/ppg.md)");
  EXPECT_EQ(error_of("ppg:"), "--data 'ppg:': name the folder of per-subject PPG arrays, as in ppg:DIR (docs/ppg.md)");
  for (const char* bad : {"synthetic:", "synthetic:0", "synthetic:-3", "synthetic:12x", "synthetic:100001"}) {
    EXPECT_EQ(error_of(bad), "--data '" + std::string(bad) + "': N must be an image count from 1 to 100000");
  }
}

}  // namespace
}  // namespace gos::data
