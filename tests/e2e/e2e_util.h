#pragma once

#include <chrono>
#include <thread>

#include "common/hash.h"
#include "service/system.h"
#include "test_util.h"

namespace regionmove::testing {

// A System on a fresh data dir with three embedded regions.
inline std::unique_ptr<System> OpenSystem(const TempDir& dir, Clock* clock, Rng* rng,
                                          const std::string& extra_toml = "",
                                          const std::string& server_toml = "",
                                          const std::string& saga_toml = "") {
  std::string toml = R"(
[server]
data_dir = "var"
)" + server_toml + R"(
[saga]
workers = 2
max_attempts = 3
)" + saga_toml + R"(
[[users]]
name = "alice"
token = "alice-token"
[[users]]
name = "bob"
token = "bob-token"
[[users]]
name = "root"
token = "admin-token"
admin = true
)" + extra_toml;
  for (const char* slug : {"us-east-1", "eu-west-1", "ap-southeast-1"}) {
    toml += std::string("[[regions]]\nslug = \"") + slug +
            "\"\ndatabase = { engine = \"sqlite\", " + "dir = \"regions/" + slug +
            "/db\" }\nblobs = { engine = \"fs\", dir = \"regions/" + slug + "/blobs\" }\n";
  }
  auto config = ParseConfig(toml, dir.path(), "test");
  EXPECT_TRUE(config.ok()) << config.status().ToString();
  auto sys = System::Open(*config, clock, rng);
  EXPECT_TRUE(sys.ok()) << sys.status().ToString();
  return sys.ok() ? std::move(sys).value() : nullptr;
}

// Everything of an app in one region, comparable across regions.
struct AppState {
  std::vector<TableDigest> tables;
  std::vector<std::tuple<std::string, std::string, int64_t, std::string>> blobs;
  RuntimeSnapshot runtime;
  bool operator==(const AppState& o) const {
    return tables == o.tables && blobs == o.blobs && runtime == o.runtime;
  }
};

inline AppState Capture(System& sys, const std::string& region, const std::string& app_id) {
  AppState s;
  RegionPlane* r = sys.plane()->Region(region);
  auto tables = r->db->Digest(app_id);
  EXPECT_TRUE(tables.ok()) << tables.status().ToString();
  if (tables.ok()) s.tables = *tables;
  std::string after;
  while (true) {
    auto page = r->blobs->List(app_id, "", after, 100);
    EXPECT_TRUE(page.ok());
    if (!page.ok() || page->empty()) break;
    for (const auto& b : *page) s.blobs.emplace_back(b.key, b.sha256, b.size, b.content_type);
    after = page->back().key;
  }
  auto rt = r->runtime->Snapshot(app_id, false);
  EXPECT_TRUE(rt.ok());
  if (rt.ok()) s.runtime = *rt;
  return s;
}

// Drives the saga in this thread until the migration is terminal (real time, bounded).
inline Migration Drive(System& sys, const std::string& id, int timeout_ms = 60000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    auto n = sys.engine()->Drain();
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    auto m = sys.store()->GetMigration(id);
    EXPECT_TRUE(m.ok());
    if (m.ok() && m->terminal()) return *m;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "migration " << id << " did not finish";
  return *sys.store()->GetMigration(id);
}

// Runs the saga until the migration's current step is `step` (about to run).
inline void RunUntil(System& sys, const std::string& id, Step step) {
  for (int i = 0; i < 200; ++i) {
    auto m = sys.store()->GetMigration(id);
    ASSERT_TRUE(m.ok());
    if (m->current_step == step || m->terminal()) return;
    auto worked = sys.engine()->RunOnce();
    ASSERT_TRUE(worked.ok()) << worked.status().ToString();
    if (!*worked) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  FAIL() << "never reached " << StepName(step);
}

}  // namespace regionmove::testing
