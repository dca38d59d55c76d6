#pragma once
// Test support: ranks of one group as threads of this process, on a free localhost port.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <future>
#include <string>
#include <vector>

#include "dist/dist.h"

namespace gos::dist {

// A TCP port on localhost that was free a moment ago.
inline int free_local_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

// Runs `body(group)` on `ranks` ranks at once, each on a thread of its own; returns each rank's
// error text (empty: none), by rank.
inline std::vector<std::string> run_local_ranks(int ranks, const std::function<void(Group&)>& body,
                                                std::chrono::seconds timeout = std::chrono::seconds(60)) {
  const int port = free_local_port();
  auto rank = [&](int r) -> std::string {
    try {
      Group group(Launch{.master_addr = "127.0.0.1", .master_port = port, .rank = r, .world_size = ranks}, timeout);
      body(group);
      return "";
    } catch (const std::exception& error) {
      return error.what();
    }
  };
  std::vector<std::future<std::string>> others;
  for (int r = 1; r < ranks; ++r) others.push_back(std::async(std::launch::async, rank, r));
  std::vector<std::string> errors{rank(0)};
  for (auto& other : others) errors.push_back(other.get());
  return errors;
}

}  // namespace gos::dist
