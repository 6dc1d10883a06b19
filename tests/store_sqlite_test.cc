#include "conformance/control_store_conformance.h"
#include "service/token_cache.h"
#include "store/sqlite/sqlite_control_store.h"

namespace regionmove::testing {
namespace {

Result<std::unique_ptr<ControlStore>> OpenSqlite(const std::string& dir) {
  ASSIGN_OR_RETURN(auto s, SqliteControlStore::Open(dir + "/control.sqlite3"));
  return std::unique_ptr<ControlStore>(std::move(s));
}

INSTANTIATE_TEST_SUITE_P(Sqlite, ControlStoreConformance,
                         ::testing::Values(ControlStoreEngine{"sqlite", OpenSqlite}),
                         [](const auto& info) { return info.param.name; });

TEST(SqliteControlStore, SchemaIsAppliedOnceAndReopens) {
  TempDir dir;
  std::string path = dir.File("c.sqlite3");
  {
    ASSERT_OK_AND_ASSIGN(auto s, SqliteControlStore::Open(path));
    App a;
    a.id = "app_aaaaaaaaaaaa";
    a.owner = "alice";
    a.subdomain = "a.test";
    a.region = "us-east-1";
    ASSERT_OK(s->CreateApp(a));
  }
  ASSERT_OK_AND_ASSIGN(auto s, SqliteControlStore::Open(path));
  ASSERT_OK_AND_ASSIGN(App a, s->GetApp("app_aaaaaaaaaaaa"));
  EXPECT_EQ(a.subdomain, "a.test");
  ASSERT_OK_AND_ASSIGN(auto db, sqlite::Db::Open(path));
  ASSERT_OK_AND_ASSIGN(auto q, db->Prepare("SELECT COUNT(*), MAX(version) FROM schema_version"));
  ASSERT_OK_AND_ASSIGN(bool row, q.Step());
  ASSERT_TRUE(row);
  EXPECT_EQ(q.Int(0), SqliteControlStore::SchemaVersion());
  EXPECT_EQ(q.Int(1), SqliteControlStore::SchemaVersion());
}

TEST(SqliteControlStore, RefusesANewerSchema) {
  TempDir dir;
  std::string path = dir.File("c.sqlite3");
  { ASSERT_OK_AND_ASSIGN(auto s, SqliteControlStore::Open(path)); }
  {
    ASSERT_OK_AND_ASSIGN(auto db, sqlite::Db::Open(path));
    ASSERT_OK(db->Exec("INSERT INTO schema_version(version) VALUES (999)"));
  }
  auto s = SqliteControlStore::Open(path);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("newer"), std::string::npos);
}

}  // namespace
}  // namespace regionmove::testing

namespace regionmove::testing {
namespace {

// A request's caller is remembered for a while; a token that did not exist is not.
TEST(TokenCache, RemembersKnownTokensForItsTtlOnly) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto store, SqliteControlStore::Open(dir.path() + "/control.sqlite3"));
  FakeClock clock;
  TokenCache cache(store.get(), &clock, 10'000);
  ASSERT_OK(store->UpsertUser(User{"alice", false}));
  ASSERT_OK(store->UpsertUser(User{"bob", true}));
  EXPECT_EQ(cache.UserForTokenHash("h1").status().reason(), "unauthorized");
  ASSERT_OK(store->AddTokenHash("h1", "alice"));
  ASSERT_OK_AND_ASSIGN(User first, cache.UserForTokenHash("h1"));  // not remembered as unknown
  EXPECT_EQ(first.name, "alice");
  ASSERT_OK(store->AddTokenHash("h1", "bob"));  // given to another user in the store
  clock.Advance(9'999);
  ASSERT_OK_AND_ASSIGN(User cached, cache.UserForTokenHash("h1"));
  EXPECT_EQ(cached.name, "alice");
  clock.Advance(1);
  ASSERT_OK_AND_ASSIGN(User fresh, cache.UserForTokenHash("h1"));
  EXPECT_EQ(fresh.name, "bob");
  EXPECT_TRUE(fresh.admin);
}

}  // namespace
}  // namespace regionmove::testing
