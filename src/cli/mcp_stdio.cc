#include "cli/mcp_stdio.h"

#include <cstdio>
#include <iostream>

#include "api/mcp/mcp.h"
#include "common/log.h"
#include "service/system.h"

namespace regionmove {

int RunMcpStdio(const std::string& config_path, const std::string& user,
                const std::string& server_url, const std::string& token) {
  SetLogLevel(LogLevel::kWarn);  // stdout carries the protocol; logs go to stderr
  std::unique_ptr<McpBackend> backend;
  Rng rng = Rng::FromEntropy();
  std::unique_ptr<System> sys;
  if (!server_url.empty()) {
    if (token.empty()) {
      std::fprintf(stderr, "regionmove mcp: --server needs --token (or REGIONMOVE_TOKEN)\n");
      return 2;
    }
    backend = MakeRemoteBackend(server_url, token);
  } else {
    auto config = LoadConfig(config_path);
    if (!config.ok()) {
      std::fprintf(stderr, "regionmove mcp: %s\n", config.status().message().c_str());
      return 2;
    }
    const UserConfig* found = nullptr;
    for (const auto& u : config->users) {
      if (u.name == user) found = &u;
    }
    if (!found) {
      std::fprintf(stderr, "regionmove mcp: --user '%s' is not a user of the config\n",
                   user.c_str());
      return 2;
    }
    auto opened = System::Open(*config, SystemClock::Default(), &rng);
    if (!opened.ok()) {
      std::fprintf(stderr, "regionmove mcp: %s\n", opened.status().ToString().c_str());
      return 1;
    }
    sys = std::move(opened).value();
    sys->Start();
    backend = MakeLocalBackend(sys.get(), found->admin ? "" : found->name);
  }
  McpSession session(backend.get());
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty() || line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::optional<nlohmann::json> reply = session.Handle(line);
    if (reply) {
      std::string out = reply->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      std::fwrite(out.data(), 1, out.size(), stdout);
      std::fputc('\n', stdout);
      std::fflush(stdout);
    }
  }
  if (sys) sys->Stop();
  return 0;
}

}  // namespace regionmove
