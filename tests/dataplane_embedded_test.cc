// Runs the data plane conformance suites against the embedded engines.
#include <filesystem>

#include "conformance/dataplane_conformance.h"
#include "dataplane/fs/fs_objects.h"
#include "dataplane/sqlite/sqlite_database.h"
#include "dataplane/sqlite/sqlite_replicator.h"
#include "dataplane/sqlite/sqlite_runtime_store.h"

namespace regionmove::testing {
namespace {

using nlohmann::json;

// Regions a-1 and b-1 on the embedded engine, under `dir`.
Config SqliteRegions(const std::string& dir) {
  Config c;
  c.data_dir = dir;
  for (const char* slug : {"a-1", "b-1"}) {
    RegionConfig r;
    r.slug = slug;
    r.database = EngineConfig{.engine = "sqlite", .dir = dir + "/" + slug, .dsn = ""};
    r.blobs = EngineConfig{.engine = "fs", .dir = dir + "/" + slug + "-blobs", .dsn = ""};
    c.regions.push_back(r);
  }
  return c;
}

Result<std::unique_ptr<BlobStore>> OpenBlobs(const std::string& dir, Rng* rng) {
  return OpenFsBlobStore(dir, rng);
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
INSTANTIATE_TEST_SUITE_P(Sqlite, DatabaseConformance,
                         ::testing::Values(DatabaseEngine{"sqlite", SqliteRegions}),
                         [](const auto& i) { return i.param.name; });
INSTANTIATE_TEST_SUITE_P(Fs, BlobStoreConformance,
                         ::testing::Values(BlobStoreEngine{"fs", OpenBlobs}),
                         [](const auto& i) { return i.param.name; });
INSTANTIATE_TEST_SUITE_P(Sqlite, RuntimeStoreConformance,
                         ::testing::Values(RuntimeStoreEngine{"sqlite", OpenRuntime, RawEnv}),
                         [](const auto& i) { return i.param.name; });
INSTANTIATE_TEST_SUITE_P(Sqlite, ReplicatorConformance,
                         ::testing::Values(DatabaseEngine{"sqlite", SqliteRegions}),
                         [](const auto& i) { return i.param.name; });

// Two embedded databases' directories, a-1's (src) holding the app with one table, and b-1's.
class SqliteCopy : public ::testing::Test {
 protected:
  void SetUp() override {
    auto a = SqliteDatabase::Open(dir.File("a"), &rng);
    auto b = SqliteDatabase::Open(dir.File("b"), &rng);
    ASSERT_OK(a.status());
    ASSERT_OK(b.status());
    src = std::move(a).value();
    dst = std::move(b).value();
    ASSERT_OK(src->Create(app));
    ASSERT_OK(src->CreateTable(app, TableSpec{"t", {{"n", "integer"}}}));
  }

  TempDir dir;
  Rng rng{3};
  const std::string app = "app_aaaaaaaaaaaa";
  std::unique_ptr<SqliteDatabase> src, dst;
};

TEST_F(SqliteCopy, RestoreRefusesADamagedSnapshot) {
  ASSERT_OK_AND_ASSIGN(json state, src->ExportCopy(app, dir.File("stage"), nullptr));
  const std::string path = state["path"];
  {
    FILE* f = std::fopen(path.c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    std::fseek(f, state["size_bytes"].get<long>() / 2, SEEK_SET);
    std::fputc('Z', f);
    std::fclose(f);
  }
  Status s = dst->ImportCopy(app, "a-1", state, nullptr);
  EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.ToString();
  ASSERT_OK_AND_ASSIGN(bool exists, dst->Exists(app));
  EXPECT_FALSE(exists);
  // A snapshot that is gone is reported as such, not as an empty database.
  std::filesystem::remove(path);
  EXPECT_EQ(dst->ImportCopy(app, "a-1", state, nullptr).code(), StatusCode::kCorruption);
}

// The fence-token check of a restore reads a database that no connection has open (no -wal
// file: the placeholder a move made) as it is on disk, making no -wal or -shm file for the
// restore to delete; a token still only in another connection's WAL is read the usual way.
TEST_F(SqliteCopy, RestoreChecksTheTokenOfAnUnopenedFileWithoutMakingFiles) {
  ASSERT_OK_AND_ASSIGN(json state, src->ExportCopy(app, dir.File("stage"), nullptr));
  const std::string path = dir.File("b") + "/" + app + ".sqlite3";
  {
    // Another worker (a later migration, token 7) recorded its token and closed the file.
    ASSERT_OK_AND_ASSIGN(auto other, SqliteDatabase::Open(dir.File("b"), &rng));
    ASSERT_OK(other->Create(app));
    ASSERT_OK(other->Unfence(app, 7));
  }
  for (const char* suffix : {"-wal", "-shm"}) std::filesystem::remove(path + suffix);
  EXPECT_EQ(dst->ImportCopy(app, "a-1", state, nullptr, 6).code(), StatusCode::kConflict);
  EXPECT_FALSE(std::filesystem::exists(path + "-wal"));
  EXPECT_FALSE(std::filesystem::exists(path + "-shm"));
  ASSERT_OK(dst->ImportCopy(app, "a-1", state, nullptr, 8));
  ASSERT_OK_AND_ASSIGN(auto tables, dst->ListTables(app));
  EXPECT_EQ(tables.size(), 1u);
  // Token 9 committed by a connection still open: in its WAL, not yet in the file.
  ASSERT_OK_AND_ASSIGN(auto later, SqliteDatabase::Open(dir.File("b"), &rng));
  ASSERT_OK(later->Unfence(app, 9));
  EXPECT_EQ(dst->ImportCopy(app, "a-1", state, nullptr, 8).code(), StatusCode::kConflict);
}

// A dump reads the database file itself when the WAL could be emptied into it, and copies the
// snapshot with the backup API when it could not (a reader of an older snapshot keeps the WAL):
// either way the copy holds every row committed before it, and nothing after.
TEST_F(SqliteCopy, DumpHoldsWhatTheWalHeldWhenAReaderKeepsIt) {
  auto insert = [&](int from, int to) {
    json rows = json::array();
    for (int i = from; i < to; ++i) rows.push_back({{"id", "r" + std::to_string(i)}, {"n", i}});
    ASSERT_OK(src->InsertRows(app, "t", rows).status());
  };
  auto rows_after_copy = [&](const std::string& stage) -> int64_t {
    auto state = src->ExportCopy(app, dir.File(stage), nullptr);
    EXPECT_OK(state.status());
    if (!state.ok()) return -1;
    EXPECT_OK(dst->ImportCopy(app, "a-1", *state, nullptr));
    auto a = src->Digest(app);
    auto b = dst->Digest(app);
    EXPECT_OK(a.status());
    EXPECT_OK(b.status());
    if (a.ok() && b.ok()) {
      EXPECT_EQ(*a, *b);
    }
    auto tables = dst->ListTables(app);
    return tables.ok() && tables->size() == 1 ? (*tables)[0].row_count : -1;
  };
  insert(0, 150);
  // A reader of the app holds a snapshot; what is committed after it stays in the WAL (here
  // an update that leaves the file's size as it is, and its pages as they were).
  const std::string file = dir.File("a") + "/" + app + ".sqlite3";
  sqlite3* reader = nullptr;
  sqlite3* writer = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &reader), SQLITE_OK);
  ASSERT_EQ(sqlite3_open(file.c_str(), &writer), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(writer, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM t;", nullptr, nullptr, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(writer, "UPDATE t SET n = 0 WHERE n >= 100", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(writer);
  EXPECT_EQ(rows_after_copy("one"), 150);
  sqlite3_exec(reader, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(reader);
  // No reader: the WAL is emptied into the file, which is then the copy.
  insert(150, 175);
  EXPECT_EQ(rows_after_copy("two"), 175);
}

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
