// Data-parallel training over two ranks (threads of this process on a localhost group) against
// one process taking the same global batches in the same parts.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <mutex>

#include "dist/local_ranks.h"
#include "train/train.h"
#include "zoo/zoo.h"

namespace gos::train {
namespace {

// The largest difference between two models' weights, relative to the weight (at least 1).
double largest_difference(const graph::Graph& a, const graph::Graph& b, int64_t* compared) {
  double largest = 0;
  for (size_t n = 0; n < a.nodes.size(); ++n) {
    for (const auto& [name, tensor] : a.nodes[n].weights) {
      const auto& other = b.nodes[n].weights.at(name);
      EXPECT_EQ(tensor.data.size(), other.data.size());
      for (size_t i = 0; i < std::min(tensor.data.size(), other.data.size()); ++i, ++*compared) {
        largest = std::max(largest, std::abs(double{tensor.data[i]} - other.data[i]) / std::max(1.0, std::abs(double{tensor.data[i]})));
      }
    }
  }
  return largest;
}

std::vector<TrainResult> on_two_ranks(const graph::Graph& model, const data::ImageDataset& train_set,
                                      const data::ImageDataset& validation, TrainOptions options) {
  std::vector<TrainResult> results(2);
  const auto errors = dist::run_local_ranks(2, [&](dist::Group& group) {
    TrainOptions mine = options;
    mine.group = &group;
    results[static_cast<size_t>(group.rank())] = train_classifier(model, train_set, validation, mine);
  });
  EXPECT_EQ(errors, (std::vector<std::string>{"", ""}));
  return results;
}

// A model as fine-tuning gets it: trained a little (an untrained deep network without batch norms
// diverges), batch norms folded, activations fused.
const graph::Graph& trained_resnet() {
  static const graph::Graph model = [] {
    TrainOptions options{.epochs = 2, .batch = 32, .learning_rate = 0.05, .augment = false, .threads = 2};
    graph::Graph trained = train_classifier(zoo::build_model("resnet20", 3), data::synthetic_images(256, data::Split::Train),
                                            data::synthetic_images(32, data::Split::Validation), options)
                               .model;
    graph::fuse_epilogues(trained);
    return trained;
  }();
  return model;
}

TEST(DataParallel, TwoRanksTakeTheStepsOneProcessTakesOnTheSameGlobalBatches) {
  const auto train_set = data::synthetic_images(160, data::Split::Train);
  const auto validation = data::synthetic_images(50, data::Split::Validation);
  // No batch norms in training mode: with them, running statistics are rank 0's (the next test).
  const graph::Graph& model = trained_resnet();
  // 160 = 5 batches of 32, each rank 16 rows; augmentation drawn for the global batch.
  TrainOptions options{.epochs = 2, .batch = 32, .learning_rate = 0.002, .augment = true, .seed = 5, .threads = 1};
  const auto ranks = on_two_ranks(model, train_set, validation, options);
  options.micro_batch = 16;
  const auto alone = train_classifier(model, train_set, validation, options);
  int64_t compared = 0;
  EXPECT_EQ(largest_difference(ranks[0].model, ranks[1].model, &compared), 0.0) << "the ranks ended apart";
  EXPECT_LT(largest_difference(alone.model, ranks[0].model, &compared), 1e-4);
  EXPECT_GT(compared, 100'000);
  ASSERT_EQ(alone.epochs.size(), ranks[0].epochs.size());
  for (size_t e = 0; e < alone.epochs.size(); ++e) {
    EXPECT_NEAR(alone.epochs[e].loss, ranks[0].epochs[e].loss, 1e-5 * std::max(1.0, alone.epochs[e].loss)) << e;
    EXPECT_NEAR(alone.epochs[e].train_accuracy, ranks[1].epochs[e].train_accuracy, 1e-9) << e;
    EXPECT_NEAR(alone.epochs[e].validation_accuracy, ranks[1].epochs[e].validation_accuracy, 1e-9) << e;
  }
  // ...and training moved the weights: the comparison is not of two untrained models.
  EXPECT_GT(largest_difference(model, alone.model, &compared), 1e-3);
}

TEST(DataParallel, RanksTrainingBatchNormsEndWithOneModelCloseToOneProcesss) {
  const auto train_set = data::synthetic_images(256, data::Split::Train);
  const auto validation = data::synthetic_images(100, data::Split::Validation);
  const graph::Graph& model = trained_resnet();
  // Parts of 16 on both sides, so that the restored statistics start alike.
  TrainOptions options{.epochs = 3, .batch = 32, .learning_rate = 0.01, .augment = false, .seed = 2, .threads = 1,
                       .restore_batch_norms = true, .micro_batch = 16};
  const auto ranks = on_two_ranks(model, train_set, validation, options);
  const auto alone = train_classifier(model, train_set, validation, options);
  int64_t compared = 0;
  EXPECT_EQ(largest_difference(ranks[0].model, ranks[1].model, &compared), 0.0) << "the ranks ended apart";
  // Training normalises by batch statistics, each part's or rank's shard's: the same steps. Only
  // the running statistics differ (rank 0's shard against both parts in turn), which evaluation
  // uses: early on that shows, and after three epochs it does not.
  for (size_t e = 0; e < alone.epochs.size(); ++e) {
    EXPECT_NEAR(alone.epochs[e].loss, ranks[0].epochs[e].loss, 1e-3 * alone.epochs[e].loss) << e;
  }
  EXPECT_NEAR(alone.epochs.back().validation_accuracy, ranks[0].epochs.back().validation_accuracy, 0.05);
  EXPECT_GT(alone.epochs.back().validation_accuracy, 0.5);
}

}  // namespace
}  // namespace gos::train
