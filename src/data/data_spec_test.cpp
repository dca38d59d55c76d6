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
            "--data ppg:some/dir holds signal windows, not images: this command needs an image set or class labels");
  EXPECT_EQ(load_error([] { load_ppg(parse_data_spec("synthetic:10"), Split::Train); }),
            "this command needs PPG windows (--data ppg:DIR); --data synthetic holds other data");
  EXPECT_EQ(load_error([] { load_ppg(parse_data_spec("fashion-mnist"), Split::Test); }),
            "this command needs PPG windows (--data ppg:DIR); --data fashion-mnist holds other data");
  EXPECT_EQ(load_error([] { load_regression(parse_data_spec("synthetic:10"), Split::Test); }),
            "--data synthetic holds class labels: this command needs float targets (ppg:DIR, or arrays:DIR with float y)");
}

TEST(DataSpec, OwnDataNamesItsFolder) {
  const DataSpec images = parse_data_spec("images:photos/flowers");
  EXPECT_EQ(images.kind, DataSpec::Kind::Images);
  EXPECT_EQ(images.dir, "photos/flowers");
  const DataSpec arrays = parse_data_spec("arrays:set.npz");
  EXPECT_EQ(arrays.kind, DataSpec::Kind::Arrays);
  EXPECT_EQ(arrays.dir, "set.npz");
  EXPECT_EQ(objective_of(parse_data_spec("ppg:x")), Objective::Regression);
  EXPECT_EQ(objective_of(parse_data_spec("synthetic")), Objective::Classification);
}

TEST(DataSpec, SamplesMustHaveTheModelsShapeAndAreNormalisedPerChannel) {
  DataSpec spec = parse_data_spec("synthetic:4");
  spec.input.shape = {1, 3, 28, 28};
  EXPECT_EQ(load_error([&] { load(spec, Split::Train); }),
            "--data synthetic: a sample is [1,1,28,28], the model reads [1,3,28,28] (at batch 1)");
  spec.input.shape = {1, 1, 28, 28};
  spec.input.mean = {0.5f};
  spec.input.std = {0.25f};
  const ImageDataset raw = synthetic_images(4, Split::Train), normalised = load(spec, Split::Train);
  ASSERT_EQ(raw.images.data.size(), normalised.images.data.size());
  for (size_t i = 0; i < raw.images.data.size(); i += 97) EXPECT_FLOAT_EQ(normalised.images.data[i], (raw.images.data[i] - 0.5f) / 0.25f);

  ir::Tensor rgb({2, 3, 1, 2}, std::vector<float>{1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3});
  normalize(rgb, {.mean = {1, 2, 3}, .std = {1, 2, 4}});
  EXPECT_EQ(rgb.data, (std::vector<float>{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(load_error([&] { normalize(rgb, {.mean = {1, 2}}); }),
            "--mean has 2 values; the samples have 3 channels (give one value, or one per channel)");
  EXPECT_EQ(load_error([&] { normalize(rgb, {.std = {0}}); }), "--std values must be positive");
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
            "unknown --data 'mnist': expected fashion-mnist, fashion-mnist:DIR, synthetic, synthetic:N, ppg:DIR, images:DIR or "
            "arrays:DIR");
  EXPECT_EQ(error_of("images:"), "--data 'images:': name the folder, as in images:DIR (DIR/<class>/*.png, or DIR/train/<class>/..., docs/data.md)");
  EXPECT_EQ(error_of("fashion-mnist:"), "--data 'fashion-mnist:': the directory is empty");
  EXPECT_EQ(error_of("ppg"), "--data 'ppg': name the folder of per-subject PPG arrays, as in ppg:DIR (docs/ppg.md)");
  EXPECT_EQ(error_of("ppg:"), "--data 'ppg:': name the folder of per-subject PPG arrays, as in ppg:DIR (docs/ppg.md)");
  for (const char* bad : {"synthetic:", "synthetic:0", "synthetic:-3", "synthetic:12x", "synthetic:100001"}) {
    EXPECT_EQ(error_of(bad), "--data '" + std::string(bad) + "': N must be an image count from 1 to 100000");
  }
}

}  // namespace
}  // namespace gos::data
