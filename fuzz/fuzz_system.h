// One embedded System per fuzzing process, on a fresh temporary data dir, with no workers and
// no background threads (so every input meets the same kind of state, and nothing runs between
// inputs). Users alice (token "alice") and an admin ("admin"); alice owns app kFuzzApp.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "common/clock.h"
#include "common/ids.h"
#include "common/log.h"
#include "dataplane/engines.h"
#include "service/system.h"

namespace regionmove::fuzz {

inline System* FuzzSystem(std::string* app_id = nullptr) {
  static std::string app;
  static System* sys = [] {
    SetLogLevel(LogLevel::kOff);  // a log line per request would be most of the work
    char tmpl[] = "/tmp/regionmove-fuzz-XXXXXX";
    std::string dir = mkdtemp(tmpl);
    std::string toml = R"(
[server]
data_dir = "var"
max_body_bytes = 65536
[[users]]
name = "alice"
token = "alice"
[[users]]
name = "admin"
token = "admin"
admin = true
)";
    auto config = ParseConfig(toml, dir, "fuzz");
    if (!config.ok()) {
      std::fprintf(stderr, "fuzz config: %s\n", config.status().ToString().c_str());
      std::abort();
    }
    static Rng rng(42);
    RegisterBuiltinEngines();
    auto opened = System::Open(*config, SystemClock::Default(), &rng);
    if (!opened.ok()) {
      std::fprintf(stderr, "fuzz system: %s\n", opened.status().ToString().c_str());
      std::abort();
    }
    System* s = opened->release();
    auto created = s->apps()->CreateApp("alice", "shop", "us-east-1", "shop");
    if (!created.ok()) std::abort();
    app = created->id;
    return s;
  }();
  if (app_id) *app_id = app;
  return sys;
}

}  // namespace regionmove::fuzz
