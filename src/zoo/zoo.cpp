// The model registry.
#include "zoo/zoo.h"

#include <algorithm>

#include "zoo/models.h"

namespace gos::zoo {

namespace {

struct Entry {
  ModelInfo info;
  graph::Graph (*build)(uint64_t seed);
};

const std::vector<Entry>& entries() {
  using detail::kFashionMnistClasses;
  const graph::Shape image{1, 1, 28, 28};
  static const std::vector<Entry> table{
      {{"resnet20", Task::Classification, image, kFashionMnistClasses,
        "CIFAR-style ResNet-20: 3 stages x 3 basic blocks, widths 16/32/64"},
       detail::build_resnet20},
      {{"vgg11s", Task::Classification, image, kFashionMnistClasses,
        "VGG-11 layout, slim widths 16-32-64-64-128-128-128-128, BN, 5 max pools"},
       detail::build_vgg11s},
      {{"mobilenetv2s", Task::Classification, image, kFashionMnistClasses,
        "MobileNetV2 at width 0.5: inverted residuals, depthwise 3x3, ReLU6"},
       detail::build_mobilenetv2s},
      {{"mixer-s", Task::Classification, image, kFashionMnistClasses,
        "MLP-Mixer: 4x4 patches (49 tokens), 64 channels, 4 mixer layers"},
       detail::build_mixer_s},
      {{"tcn-ppg", Task::Regression, {1, 4, 512}, 1,
        "dilated Conv1d stack for pulse rate: 4 x 512 samples -> 1 value (placeholder)"},
       detail::build_tcn_ppg},
  };
  return table;
}

const Entry& entry(const std::string& name) {
  const auto& table = entries();
  auto found = std::find_if(table.begin(), table.end(), [&](const Entry& e) { return e.info.name == name; });
  if (found != table.end()) return *found;
  std::string known;
  for (const auto& e : table) known += (known.empty() ? "" : ", ") + e.info.name;
  throw ZooError("unknown model '" + name + "'; the zoo has " + known);
}

}  // namespace

const std::vector<ModelInfo>& models() {
  static const std::vector<ModelInfo> infos = [] {
    std::vector<ModelInfo> list;
    for (const auto& e : entries()) list.push_back(e.info);
    return list;
  }();
  return infos;
}

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& info : models()) names.push_back(info.name);
  return names;
}

const ModelInfo& model_info(const std::string& name) { return entry(name).info; }

graph::Graph build_model(const std::string& name, uint64_t seed) { return entry(name).build(seed); }

graph::Graph inference_graph(const std::string& name, uint64_t seed) {
  graph::Graph graph = graph::fold_batch_norms(build_model(name, seed));
  graph::fuse_epilogues(graph);
  return graph;
}

}  // namespace gos::zoo
