#include "cli/serve.h"

#include <signal.h>

#include <cstdio>

#include "api/http_api.h"
#include "common/log.h"
#include "service/system.h"

namespace regionmove {

bool SplitHostPort(const std::string& listen, std::string* host, int* port) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  std::string p = listen.substr(colon + 1);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  *host = listen.substr(0, colon);
  *port = std::stoi(p);
  return *port <= 65535;
}

namespace {

// Blocks SIGINT/SIGTERM in every thread and waits for one of them here.
void WaitForSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
  Log(LogLevel::kInfo, "shutdown", {{"signal", std::to_string(sig)}});
}

void BlockSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

struct Process {
  Config config;
  Rng rng = Rng::FromEntropy();
  std::unique_ptr<System> sys;
};

int Open(const std::string& config_path, Process* p) {
  auto config = LoadConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "regionmove: %s\n", config.status().message().c_str());
    return 2;
  }
  p->config = *config;
  auto sys = System::Open(p->config, SystemClock::Default(), &p->rng);
  if (!sys.ok()) {
    std::fprintf(stderr, "regionmove: %s\n", sys.status().ToString().c_str());
    return 1;
  }
  p->sys = std::move(sys).value();
  return 0;
}

}  // namespace

int RunServe(const std::string& config_path, const std::string& listen, bool workers) {
  BlockSignals();
  Process p;
  if (int rc = Open(config_path, &p)) return rc;
  std::string host;
  int port = 0;
  std::string addr = listen.empty() ? p.config.listen : listen;
  if (!SplitHostPort(addr, &host, &port)) {
    std::fprintf(stderr, "regionmove: listen address '%s' is not host:port\n", addr.c_str());
    return 2;
  }
  auto api = HttpApi::Make(p.sys.get(), p.sys->metrics());
  if (!api.ok()) {
    std::fprintf(stderr, "regionmove: %s\n", api.status().ToString().c_str());
    return 1;
  }
  if (Status s = (*api)->Start(host, port); !s.ok()) {
    std::fprintf(stderr, "regionmove: %s\n", s.message().c_str());
    return 1;
  }
  p.sys->Start(workers);
  Log(LogLevel::kInfo, "listening",
      {{"addr", host + ":" + std::to_string((*api)->port())}, {"config", p.config.source}});
  std::fprintf(stderr, "regionmove serving on http://%s:%d (config: %s)\n", host.c_str(),
               (*api)->port(), p.config.source.c_str());
  WaitForSignal();
  (*api)->Stop();
  p.sys->Stop();
  return 0;
}

int RunWorker(const std::string& config_path) {
  BlockSignals();
  Process p;
  if (int rc = Open(config_path, &p)) return rc;
  p.sys->Start();
  std::fprintf(stderr, "regionmove worker running (config: %s)\n", p.config.source.c_str());
  WaitForSignal();
  p.sys->Stop();
  return 0;
}

}  // namespace regionmove
