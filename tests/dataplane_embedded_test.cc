// Runs the data plane conformance suites against the embedded engines.
#include "conformance/dataplane_conformance.h"
#include "dataplane/fs/fs_blob_store.h"
#include "dataplane/sqlite/sqlite_database.h"
#include "dataplane/sqlite/sqlite_replicator.h"
#include "dataplane/sqlite/sqlite_runtime_store.h"

namespace regionmove::testing {
namespace {

Result<std::unique_ptr<Database>> OpenDb(const std::string& dir, Rng* rng) {
  ASSIGN_OR_RETURN(auto db, SqliteDatabase::Open(dir, rng));
  return std::unique_ptr<Database>(std::move(db));
}
Result<std::unique_ptr<BlobStore>> OpenBlobs(const std::string& dir, Rng* rng) {
  ASSIGN_OR_RETURN(auto bs, FsBlobStore::Open(dir, rng));
  return std::unique_ptr<BlobStore>(std::move(bs));
}
Result<std::unique_ptr<RuntimeStore>> OpenRuntime(const std::string& dir, const SecretBox* box) {
  ASSIGN_OR_RETURN(auto rs, SqliteRuntimeStore::Open(dir, box));
  return std::unique_ptr<RuntimeStore>(std::move(rs));
}
std::string RawEnv(const std::string& dir, const std::string& app, const std::string& key) {
  auto db = sqlite::Db::Open(dir + "/_runtime.sqlite3");
  if (!db.ok()) return "";
  auto q = (*db)->Prepare("SELECT value FROM env WHERE app_id = ? AND key = ?");
  if (!q.ok()) return "";
  auto row = q->BindAll(app, key).Step();
  return row.ok() && *row ? q->Blob(0) : "";
}
Result<ReplicationEngine::Pair> OpenPair(const std::string& dir, Rng* rng) {
  ReplicationEngine::Pair p;
  ASSIGN_OR_RETURN(auto a, SqliteDatabase::Open(dir + "/a", rng));
  ASSIGN_OR_RETURN(auto b, SqliteDatabase::Open(dir + "/b", rng));
  SqliteDatabase* ra = a.get();
  SqliteDatabase* rb = b.get();
  p.replicator = std::make_unique<SqliteReplicator>([ra, rb](const std::string& region) {
    return region == "a-1" ? ra : region == "b-1" ? rb : nullptr;
  });
  p.a = std::move(a);
  p.b = std::move(b);
  return p;
}

INSTANTIATE_TEST_SUITE_P(Sqlite, DatabaseConformance,
                         ::testing::Values(DatabaseEngine{"sqlite", OpenDb}),
                         [](const auto& i) { return i.param.name; });
INSTANTIATE_TEST_SUITE_P(Fs, BlobStoreConformance,
                         ::testing::Values(BlobStoreEngine{"fs", OpenBlobs}),
                         [](const auto& i) { return i.param.name; });
INSTANTIATE_TEST_SUITE_P(Sqlite, RuntimeStoreConformance,
                         ::testing::Values(RuntimeStoreEngine{"sqlite", OpenRuntime, RawEnv}),
                         [](const auto& i) { return i.param.name; });
INSTANTIATE_TEST_SUITE_P(Sqlite, ReplicatorConformance,
                         ::testing::Values(ReplicationEngine{"sqlite", OpenPair}),
                         [](const auto& i) { return i.param.name; });

TEST(SecretBox, SealOpenAndKeyFile) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto box, SecretBox::FromKeyFile(dir.File("k/secret.key")));
  ASSERT_OK_AND_ASSIGN(std::string sealed, box->Seal("hunter2"));
  EXPECT_EQ(sealed.find("hunter2"), std::string::npos);
  ASSERT_OK_AND_ASSIGN(std::string open, box->Open(sealed));
  EXPECT_EQ(open, "hunter2");
  ASSERT_OK_AND_ASSIGN(auto again, SecretBox::FromKeyFile(dir.File("k/secret.key")));
  ASSERT_OK_AND_ASSIGN(std::string open2, again->Open(sealed));
  EXPECT_EQ(open2, "hunter2");
  sealed[14] ^= 1;
  EXPECT_EQ(box->Open(sealed).status().code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace regionmove::testing

namespace regionmove {
namespace {

TEST(SqliteDatabase, TheConnectionCacheIsBounded) {
  testing::TempDir dir;
  Rng rng(5);
  ASSERT_OK_AND_ASSIGN(auto db, SqliteDatabase::Open(dir.path() + "/db", &rng));
  const size_t n = SqliteDatabase::kMaxOpenConns + 40;
  for (size_t i = 0; i < n; ++i) {
    std::string app = "app_" + std::to_string(100000 + i);
    ASSERT_OK(db->Create(app));
    ASSERT_OK(db->CreateTable(app, TableSpec{"t", {{"n", "integer"}}}));
  }
  EXPECT_LE(db->open_connections(), SqliteDatabase::kMaxOpenConns);
  // Every app still answers: an evicted connection reopens.
  for (size_t i = 0; i < n; i += 37) {
    ASSERT_OK_AND_ASSIGN(auto tables, db->ListTables("app_" + std::to_string(100000 + i)));
    EXPECT_EQ(tables.size(), 1u);
  }
}

}  // namespace
}  // namespace regionmove
