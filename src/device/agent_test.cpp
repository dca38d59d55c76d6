// The agent and its client over real TLS on localhost: what is refused, what is measured, and in
// what order two clients are served.
#include <fmt/core.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include "device/device.h"
#include "graph/onnx_export.h"
#include "graph/onnx_import.h"
#include "ir/ops.h"
#include "zoo/zoo.h"

namespace gos::device {
namespace {

namespace fs = std::filesystem;

fs::path scratch(const std::string& name) {
  fs::path folder = fs::temp_directory_path() / fmt::format("gos-agent-test-{}-{}", name, ::getpid());
  fs::remove_all(folder);
  return folder;
}

int mode_of(const fs::path& path) {
  struct stat info {};
  ::stat(path.c_str(), &info);
  return static_cast<int>(info.st_mode & 0777);
}

const measure::BenchOptions kQuick{.threads = 1, .warmup = 2, .min_runs = 5, .max_runs = 200, .budget_seconds = 0.05};

graph::Graph small_conv() {
  return measure::single_op_graph(
      ir::conv2d({.in_channels = 8, .out_channels = 8, .input_size = {8, 8}, .kernel = {3, 3}, .padding = {1, 1, 1, 1}, .bias = true}),
      {});
}

std::string onnx_bytes(const graph::Graph& graph) {
  std::string bytes;
  graph::to_onnx(graph).SerializeToString(&bytes);
  return bytes;
}

TEST(AgentIdentity, IsMadeOnceWithFilesOnlyItsOwnerReads) {
  const fs::path folder = scratch("identity");
  const AgentIdentity first = ensure_agent_identity(folder);
  EXPECT_EQ(mode_of(folder), 0700);
  for (const auto& file : {first.certificate, first.key, first.token_file}) EXPECT_EQ(mode_of(file), 0600) << file;
  EXPECT_EQ(first.token.size(), 64u);
  EXPECT_EQ(first.fingerprint.size(), 32u * 3 - 1);
  const AgentIdentity second = ensure_agent_identity(folder);
  EXPECT_EQ(second.token, first.token);
  EXPECT_EQ(second.fingerprint, first.fingerprint);
  fs::remove_all(folder);
}

// An agent on a free localhost port, served from a thread, with the requests it logged.
class LocalAgent : public ::testing::Test {
 protected:
  void start(AgentOptions options = {}) {
    folder_ = scratch("agent");
    options.host = "127.0.0.1";
    options.port = 0;
    options.folder = folder_;
    agent_ = std::make_unique<Agent>(options, [this](const ServedRequest& served) {
      std::lock_guard lock(log_mutex_);
      log_.push_back(served);
    });
    server_ = std::thread([this] { agent_->run(); });
    device_ = Device{"board", fmt::format("https://127.0.0.1:{}", agent_->port()), agent_->identity().fingerprint,
                     agent_->identity().token};
  }
  void TearDown() override {
    if (agent_) agent_->stop();
    if (server_.joinable()) server_.join();
    fs::remove_all(folder_);
  }
  // A client that trusts any certificate, for requests the workstation's client would not send.
  std::unique_ptr<httplib::SSLClient> raw_client(const std::string& token = "") {
    auto client = std::make_unique<httplib::SSLClient>("127.0.0.1", agent_->port());
    client->enable_server_certificate_verification(false);
    if (!token.empty()) client->set_bearer_token_auth(token);
    return client;
  }
  std::vector<ServedRequest> log() {
    std::lock_guard lock(log_mutex_);
    return log_;
  }

  fs::path folder_;
  std::unique_ptr<Agent> agent_;
  std::thread server_;
  Device device_;
  std::mutex log_mutex_;
  std::vector<ServedRequest> log_;
};

TEST_F(LocalAgent, CheckNamesTheBoardsMachine) {
  start();
  const MachineDescription machine = RemoteDevice(device_).check();
  EXPECT_EQ(machine.fingerprint, measure::machine_fingerprint());
  EXPECT_GT(machine.cores, 0);
  EXPECT_FALSE(machine.architecture.empty());
}

TEST_F(LocalAgent, RefusesARequestWithoutTheToken) {
  start();
  auto client = raw_client();
  auto result = client->Get("/v1/machine");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 401);
  EXPECT_NE(result->body.find("no token"), std::string::npos) << result->body;
}

TEST_F(LocalAgent, RefusesAWrongToken) {
  start();
  Device wrong = device_;
  wrong.token = std::string(64, 'a');
  try {
    RemoteDevice(wrong).check();
    FAIL() << "a wrong token was accepted";
  } catch (const DeviceError& error) {
    EXPECT_NE(std::string(error.what()).find("refused the token"), std::string::npos) << error.what();
  }
  // Unauthenticated, an unknown route is refused for the token, not reported as missing.
  auto client = raw_client(std::string(64, 'b'));
  auto result = client->Get("/v1/anything");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 403);
}

TEST_F(LocalAgent, RefusesACertificateOtherThanThePairedOne) {
  start();
  Device mistrusted = device_;
  mistrusted.fingerprint = std::string(mistrusted.fingerprint[0] == 'A' ? "B" : "A") + mistrusted.fingerprint.substr(1);
  try {
    RemoteDevice(mistrusted).check();
    FAIL() << "a certificate other than the paired one was trusted";
  } catch (const DeviceError& error) {
    EXPECT_NE(std::string(error.what()).find("presented certificate " + agent_->identity().fingerprint), std::string::npos) << error.what();
  }
}

TEST_F(LocalAgent, RefusesPlainHttpAndGoesOnServing) {
  start();
  httplib::Client plain("127.0.0.1", agent_->port());
  plain.set_bearer_token_auth(device_.token);
  plain.set_read_timeout(5, 0);
  auto result = plain.Get("/v1/machine");
  EXPECT_TRUE(!result || result->status != 200);
  EXPECT_NO_THROW(RemoteDevice(device_).check());
}

TEST_F(LocalAgent, RefusesAnUnknownRoute) {
  start();
  auto client = raw_client(device_.token);
  auto result = client->Get("/v2/machine");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 404);
  EXPECT_NE(result->body.find("/v1/bench"), std::string::npos) << result->body;
}

TEST_F(LocalAgent, RefusesAnUnknownBackend) {
  start();
  auto client = raw_client(device_.token);
  httplib::MultipartFormDataItems items{{"model0", onnx_bytes(small_conv()), "m.onnx", "application/octet-stream"}};
  auto result = client->Post("/v1/bench?backend=tpu", items);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 400);
  EXPECT_NE(result->body.find("tpu"), std::string::npos) << result->body;
}

TEST_F(LocalAgent, RefusesARequestOverItsSizeLimitBeforeReadingIt) {
  start({.max_request_bytes = 1 << 20});
  try {
    RemoteDevice(device_).bench_onnx({std::string(2 << 20, 'x')}, measure::Backend::Mobile, kQuick);
    FAIL() << "a request over the limit was served";
  } catch (const DeviceError& error) {
    EXPECT_NE(std::string(error.what()).find("limit of 1 MiB"), std::string::npos) << error.what();
  }
  EXPECT_NO_THROW(RemoteDevice(device_).check());
}

TEST_F(LocalAgent, RefusesGarbageAndTruncatedOnnxWithTheImportersMessage) {
  start();
  RemoteDevice remote(device_);
  const std::string bytes = onnx_bytes(small_conv());
  for (const std::string& file : {std::string("not an onnx file"), bytes.substr(0, bytes.size() / 2)}) {
    try {
      remote.bench_onnx({file}, measure::Backend::Mobile, kQuick);
      FAIL() << "a broken file was measured";
    } catch (const DeviceError& error) {
      EXPECT_NE(std::string(error.what()).find("HTTP 422"), std::string::npos) << error.what();
      EXPECT_NE(std::string(error.what()).find("model0"), std::string::npos) << error.what();
    }
  }
}

TEST_F(LocalAgent, RefusesARequestAskingForMoreTimingThanItAllows) {
  start({.max_request_seconds = 1});
  measure::BenchOptions long_budget = kQuick;
  long_budget.budget_seconds = 0.6;
  try {
    RemoteDevice(device_).bench({small_conv(), small_conv()}, measure::Backend::Mobile, long_budget);
    FAIL() << "the time bound was not kept";
  } catch (const DeviceError& error) {
    EXPECT_NE(std::string(error.what()).find("allows 1 s a request"), std::string::npos) << error.what();
  }
}

TEST_F(LocalAgent, MeasuresAZooModelAsTheWorkstationWould) {
  start();
  const graph::Graph model = zoo::inference_graph("resnet20", 1);
  const Measured measured = RemoteDevice(device_).bench({model}, measure::Backend::Mobile, kQuick);
  ASSERT_EQ(measured.timings.size(), 1u);
  EXPECT_GE(measured.timings[0].runs, 5);
  EXPECT_GT(measured.timings[0].median_ms, 0);
  EXPECT_LE(measured.timings[0].p10_ms, measured.timings[0].median_ms);
  EXPECT_LE(measured.timings[0].median_ms, measured.timings[0].p90_ms);
  EXPECT_GT(measured.reference.runs, 0);
  EXPECT_EQ(measured.machine.fingerprint, measure::machine_fingerprint());
}

// The committed models as a workstation sends them (imported, then re-exported by gos): the agent
// reads every one back.
TEST_F(LocalAgent, MeasuresEveryCommittedModelAsReExported) {
  start();
  std::vector<graph::Graph> models;
  for (const char* name : {"resnet20", "vgg11s", "mobilenetv2s", "mixer-s"}) {
    models.push_back(graph::import_onnx(fmt::format("{}/{}.onnx", GOS_MODELS_DIR, name)).graph);
  }
  const Measured measured = RemoteDevice(device_).bench(models, measure::Backend::Mobile, kQuick);
  ASSERT_EQ(measured.timings.size(), models.size());
  for (const auto& timing : measured.timings) EXPECT_GT(timing.median_ms, 0);
}

TEST_F(LocalAgent, TimesOperatorsAndTwoModelsSideBySideInOneRequest) {
  start();
  RemoteDevice remote(device_);
  const graph::Graph small = small_conv();
  const graph::Graph large = measure::single_op_graph(
      ir::conv2d({.in_channels = 32, .out_channels = 32, .input_size = {28, 28}, .kernel = {3, 3}, .padding = {1, 1, 1, 1}, .bias = true}),
      {});
  const Measured ops = remote.bench({small, large}, measure::Backend::Mobile, kQuick, BenchMode::Operators);
  ASSERT_EQ(ops.timings.size(), 2u);
  // 14x the MACs: no machine load reorders them.
  EXPECT_LT(ops.timings[0].median_ms, ops.timings[1].median_ms);
  const Measured pair = remote.bench({small, large}, measure::Backend::Mobile, kQuick, BenchMode::SideBySide);
  ASSERT_EQ(pair.timings.size(), 2u);
  EXPECT_LT(pair.timings[0].median_ms, pair.timings[1].median_ms);
  EXPECT_THROW(remote.bench({small}, measure::Backend::Mobile, kQuick, BenchMode::SideBySide), DeviceError);
}

TEST_F(LocalAgent, ServesTwoClientsInTurnWithoutLosingEither) {
  start();
  measure::BenchOptions half_second = kQuick;
  half_second.budget_seconds = 0.5;
  half_second.max_runs = 1000000;
  auto first = std::async(std::launch::async, [&] { return RemoteDevice(device_).bench({small_conv()}, measure::Backend::Mobile, half_second); });
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  auto second = std::async(std::launch::async, [&] { return RemoteDevice(device_).bench({small_conv()}, measure::Backend::Mobile, kQuick); });
  const Measured a = first.get(), b = second.get();
  EXPECT_EQ(a.timings.size(), 1u);
  EXPECT_EQ(b.timings.size(), 1u);
  // Timed for its whole half second: the second request did not cut in.
  EXPECT_GT(a.timings[0].runs, b.timings[0].runs);
  const auto served = log();
  ASSERT_EQ(served.size(), 2u);
  EXPECT_EQ(served[0].status, 200);
  EXPECT_EQ(served[1].status, 200);
}

TEST_F(LocalAgent, TellsAClientToRetryWhenItsQueueIsFull) {
  start({.queue = 0});
  measure::BenchOptions one_second = kQuick;
  one_second.budget_seconds = 1;
  one_second.max_runs = 1000000;
  auto busy = std::async(std::launch::async, [&] { return RemoteDevice(device_).bench({small_conv()}, measure::Backend::Mobile, one_second); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  try {
    RemoteDevice(device_).check();
    FAIL() << "a second request was taken with no queue";
  } catch (const DeviceError& error) {
    EXPECT_NE(std::string(error.what()).find("busy"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("retry"), std::string::npos) << error.what();
  }
  EXPECT_EQ(busy.get().timings.size(), 1u);
}

// What `--device` installs: the measure part's own functions then time on the agent.
TEST_F(LocalAgent, InstalledAsTheRemoteTimerEveryMeasurementGoesToTheAgent) {
  start();
  const graph::Graph conv = small_conv();
  {
    measure::UseRemoteTimer on_board(remote_timer(device_));
    EXPECT_EQ(measure::machine_fingerprint(), describe_this_machine().fingerprint);
    EXPECT_GE(measure::bench_model(conv, measure::Backend::Mobile, kQuick).runs, 5);
    EXPECT_EQ(measure::bench_ops(measure::operators_of(conv), measure::Backend::Mobile, kQuick).size(), 1u);
    const auto [a, b] = measure::bench_models_interleaved(conv, conv, measure::Backend::Mobile, kQuick);
    EXPECT_GT(a.runs, 0);
    // Right after a timing, the loop the agent timed after it, with no request of its own; asked
    // again, the board times it anew.
    EXPECT_GT(measure::time_machine_reference(0.1).runs, 0);
    EXPECT_EQ(log().size(), 4u);
    EXPECT_GT(measure::time_machine_reference(0.1).runs, 0);
    EXPECT_THROW(measure::bench_files_interleaved("a.pt", "b.pt", conv.inputs, measure::Backend::Mobile, kQuick), measure::MeasureError);
  }
  const auto served = log();
  // check, then model, operators, side by side, the fixed loop asked a second time.
  ASSERT_EQ(served.size(), 5u);
  EXPECT_EQ(served[1].route, "POST /v1/bench");
  EXPECT_EQ(served[4].route, "GET /v1/machine");
  // Uninstalled: this machine again, and nothing more reaches the agent.
  measure::bench_model(conv, measure::Backend::Mobile, kQuick);
  EXPECT_EQ(log().size(), 5u);
}

// `--device a,b`: two identical boards (two agents of this machine) share each request's operators.
TEST_F(LocalAgent, IdenticalBoardsShareTheOperatorsOfARequest) {
  start();
  AgentOptions second_options{.host = "127.0.0.1", .port = 0, .folder = scratch("second agent")};
  std::atomic<int> second_served{0};
  Agent second(second_options, [&](const ServedRequest& served) { second_served += served.route == "POST /v1/bench"; });
  std::thread second_server([&] { second.run(); });
  const Device other{"board2", fmt::format("https://127.0.0.1:{}", second.port()), second.identity().fingerprint, second.identity().token};
  {
    measure::UseRemoteTimer on_boards(remote_timer(std::vector<Device>{device_, other}));
    EXPECT_EQ(measure::machine_fingerprint(), describe_this_machine().fingerprint);
    std::vector<measure::OpToMeasure> ops;
    for (int channels : {8, 16, 24, 32}) {
      ops.push_back({ir::conv2d({.in_channels = channels, .out_channels = channels, .input_size = {14, 14}, .kernel = {3, 3},
                                 .padding = {1, 1, 1, 1}}),
                     {}});
    }
    const auto timings = measure::bench_ops(ops, measure::Backend::Mobile, kQuick);
    ASSERT_EQ(timings.size(), 4u);
    // In the operators' order: 16x the MACs from the first to the last.
    EXPECT_LT(timings[0].median_ms, timings[3].median_ms);
  }
  int first_served = 0;
  for (const auto& served : log()) first_served += served.route == "POST /v1/bench";
  EXPECT_EQ(first_served, 1);
  EXPECT_EQ(second_served, 1);
  second.stop();
  second_server.join();
}

TEST(DeviceRegistry, KeepsDevicesInAFileOnlyItsOwnerReads) {
  const fs::path folder = scratch("registry");
  DeviceRegistry registry(folder / "devices.json");
  EXPECT_TRUE(registry.all().empty());
  const Device pi{"pi4", "https://pi4.local:7070", std::string(31 * 3, 'A').replace(2, 1, ":") , std::string(64, 'c')};
  Device valid = pi;
  valid.fingerprint.clear();
  for (int i = 0; i < 32; ++i) valid.fingerprint += (i ? ":" : "") + std::string("AB");
  registry.add(valid);
  EXPECT_EQ(mode_of(folder / "devices.json"), 0600);
  EXPECT_EQ(registry.find("pi4").url, "https://pi4.local:7070");
  Device moved = valid;
  moved.url = "https://10.0.0.7:7071";
  registry.add(moved);
  ASSERT_EQ(registry.all().size(), 1u);
  EXPECT_EQ(registry.find("pi4").url, "https://10.0.0.7:7071");
  EXPECT_THROW(registry.find("pi5"), std::invalid_argument);
  EXPECT_THROW(registry.add(pi), std::invalid_argument);  // a malformed fingerprint
  Device plain = valid;
  plain.url = "http://pi4.local:7070";
  EXPECT_THROW(registry.add(plain), std::invalid_argument);
  EXPECT_TRUE(registry.remove("pi4"));
  EXPECT_FALSE(registry.remove("pi4"));
  fs::remove_all(folder);
}

}  // namespace
}  // namespace gos::device
