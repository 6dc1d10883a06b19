// Runs the database and replicator conformance suites against the PostgreSQL engine, on the
// local clusters of scripts/pg-regions (`make test` starts them). Their DSNs can be given as
// REGIONMOVE_PG_DSN_A and REGIONMOVE_PG_DSN_B.
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>

#include "common/hash.h"
#include "conformance/control_store_conformance.h"
#include "conformance/dataplane_conformance.h"
#include "dataplane/postgres/pg_runtime_store.h"
#include "store/postgres/pg_control_store.h"

namespace regionmove::testing {
namespace {

std::string Env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

Config PgRegions(const std::string& dir) {
  Config c;
  c.data_dir = dir;
  const std::string dsn[] = {
      Env("REGIONMOVE_PG_DSN_A", "postgresql://postgres@127.0.0.1:54321/postgres"),
      Env("REGIONMOVE_PG_DSN_B", "postgresql://postgres@127.0.0.1:54322/postgres")};
  int i = 0;
  for (const char* slug : {"a-1", "b-1"}) {
    RegionConfig r;
    r.slug = slug;
    r.database =
        EngineConfig{.engine = "postgres", .dir = dir + "/" + slug + "-runtime", .dsn = dsn[i++]};
    r.blobs = EngineConfig{.engine = "fs", .dir = dir + "/" + slug + "-blobs", .dsn = ""};
    c.regions.push_back(r);
  }
  return c;
}

INSTANTIATE_TEST_SUITE_P(Postgres, DatabaseConformance,
                         ::testing::Values(DatabaseEngine{"postgres", PgRegions}),
                         [](const auto& i) { return i.param.name; });
INSTANTIATE_TEST_SUITE_P(Postgres, ReplicatorConformance,
                         ::testing::Values(DatabaseEngine{"postgres", PgRegions}),
                         [](const auto& i) { return i.param.name; });

// The runtime store of region a-1. The first open in a test's directory removes what earlier
// runs left of the test app (the cluster outlives a test; other apps' rows are left alone).
Result<std::unique_ptr<RuntimeStore>> OpenPgRuntime(const std::string& dir,
                                                    const SecretBox* secrets) {
  Config c = PgRegions(dir);
  const std::string& dsn = c.regions[0].database.dsn;
  ASSIGN_OR_RETURN(std::string admin, pg::Conninfo(dsn, "postgres"));
  ASSIGN_OR_RETURN(std::string info, pg::Conninfo(dsn, PgRuntimeStore::kDatabase));
  ASSIGN_OR_RETURN(auto rs, PgRuntimeStore::Open(admin, info, "region a-1", secrets));
  static std::mutex mu;
  static std::set<std::string> cleaned;
  std::lock_guard<std::mutex> lock(mu);
  if (cleaned.insert(dir).second) {
    ASSIGN_OR_RETURN(auto conn, pg::Conn::Open(info, "test"));
    for (const char* t : {"functions", "env", "cron", "domains", "fence_tokens"}) {
      RETURN_IF_ERROR(
          conn->Query(std::string("DELETE FROM ") + t + " WHERE app_id = $1", {"app_aaaaaaaaaaaa"})
              .status());
    }
  }
  return std::unique_ptr<RuntimeStore>(std::move(rs));
}

std::string PgRawEnv(const std::string& dir, const std::string& app, const std::string& key) {
  Config c = PgRegions(dir);
  auto info = pg::Conninfo(c.regions[0].database.dsn, PgRuntimeStore::kDatabase);
  if (!info.ok()) return "";
  auto conn = pg::Conn::Open(*info, "test");
  if (!conn.ok()) return "";
  auto r = (*conn)->Query(
      "SELECT translate(encode(value, 'base64'), E'\\n', '') FROM env "
      "WHERE app_id = $1 AND key = $2 AND NOT archived",
      {app, key});
  std::string raw;
  if (!r.ok() || r->size() != 1 || !Base64Decode(r->Text(0, 0), &raw)) return "";
  return raw;
}

INSTANTIATE_TEST_SUITE_P(Postgres, RuntimeStoreConformance,
                         ::testing::Values(RuntimeStoreEngine{"postgres", OpenPgRuntime, PgRawEnv}),
                         [](const auto& i) { return i.param.name; });

// The control store of a test: one database on the first cluster, made afresh by the first open in
// a test's directory (tests run one at a time; the handles of the previous test are gone).
Result<std::unique_ptr<ControlStore>> OpenPgControlStore(const std::string& dir) {
  const std::string dsn =
      Env("REGIONMOVE_PG_DSN_A", "postgresql://postgres@127.0.0.1:54321/postgres");
  static std::mutex mu;
  static std::string fresh_for;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (fresh_for != dir) {
      ASSIGN_OR_RETURN(std::string admin, pg::Conninfo(dsn, "postgres"));
      ASSIGN_OR_RETURN(auto conn, pg::Conn::Open(admin, "test"));
      RETURN_IF_ERROR(
          conn->Exec("DROP DATABASE IF EXISTS regionmove_control_test WITH (FORCE)").status());
      fresh_for = dir;
    }
  }
  ASSIGN_OR_RETURN(std::string info, pg::Conninfo(dsn, "regionmove_control_test"));
  ASSIGN_OR_RETURN(auto store, PgControlStore::Open(info, {}));
  return std::unique_ptr<ControlStore>(std::move(store));
}

// The connections of a store are cut (a failover, a restarted server, an idle timeout): the next
// calls reconnect and succeed, and the listener comes back so that wake-ups keep working.
TEST(PgControlStore, SurvivesLostConnections) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto store, OpenPgControlStore(dir.path()));
  ASSERT_OK(store->UpsertUser(User{"alice", false}));
  App app;
  app.id = "app_aaaaaaaaaaaa";
  app.name = "shop";
  app.owner = "alice";
  app.subdomain = "shop.apps.test";
  app.region = "us-east-1";
  ASSERT_OK(store->CreateApp(app));
  const std::string dsn =
      Env("REGIONMOVE_PG_DSN_A", "postgresql://postgres@127.0.0.1:54321/postgres");
  ASSERT_OK_AND_ASSIGN(std::string admin, pg::Conninfo(dsn, "postgres"));
  ASSERT_OK_AND_ASSIGN(auto killer, pg::Conn::Open(admin, "test"));
  for (int round = 0; round < 3; ++round) {
    ASSERT_OK_AND_ASSIGN(
        pg::Rows cut, killer->Exec("SELECT count(pg_terminate_backend(pid)) FROM "
                                   "pg_stat_activity WHERE datname = 'regionmove_control_test'"));
    EXPECT_GE(cut.Int(0, 0), 1);
    ASSERT_OK_AND_ASSIGN(App got, store->GetApp(app.id));
    EXPECT_EQ(got.owner, "alice");
    Migration m;
    m.id = "m" + std::to_string(round);
    m.app_id = app.id;
    m.owner = "alice";
    m.source_region = "us-east-1";
    m.dest_region = "eu-west-1";
    ASSERT_OK(store->CreateMigration(m));
    ASSERT_OK_AND_ASSIGN(auto c, store->ClaimNext("w", 1'000'000, 1000));
    ASSERT_TRUE(c.has_value());
    Migration end = *c;
    end.current_step = Step::kAborted;
    end.lease_owner.clear();
    ASSERT_OK(store->UpdateMigration(end, c->epoch, {}));
  }
  ASSERT_OK(store->Health());
  // The listener reconnected: a new migration wakes a waiting worker well before the timeout.
  auto* pgs = static_cast<PgControlStore*>(store.get());
  Migration m;
  m.id = "m-wake";
  m.app_id = app.id;
  m.owner = "alice";
  m.source_region = "us-east-1";
  m.dest_region = "eu-west-1";
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the listener's reconnect pause
  std::thread creator([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_TRUE(store->CreateMigration(m).ok());
  });
  auto start = std::chrono::steady_clock::now();
  pgs->WaitForWork(20'000);
  auto waited = std::chrono::steady_clock::now() - start;
  creator.join();
  EXPECT_LT(waited, std::chrono::seconds(10));
}

INSTANTIATE_TEST_SUITE_P(Postgres, ControlStoreConformance,
                         ::testing::Values(ControlStoreEngine{"postgres", OpenPgControlStore}),
                         [](const auto& i) { return i.param.name; });

}  // namespace
}  // namespace regionmove::testing
