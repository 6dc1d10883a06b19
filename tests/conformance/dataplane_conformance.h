#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/ids.h"
#include "common/secret_box.h"
#include "config/config.h"
#include "dataplane/blob_store.h"
#include "dataplane/database.h"
#include "dataplane/engines.h"
#include "dataplane/replicator.h"
#include "dataplane/runtime_store.h"
#include "test_util.h"

namespace regionmove::testing {

// A database engine under test: a config of two regions "a-1" and "b-1" that run it, with
// whatever they keep locally under `dir`. Handles opened from the same dir act as two
// processes sharing the regions.
struct DatabaseEngine {
  std::string name;  // the registered engine name
  std::function<Config(const std::string& dir)> config;
};

// One process's handle on one region's databases of a DatabaseEngine case.
struct DbHandle {
  std::unique_ptr<Config> config;
  std::unique_ptr<regionmove::DatabaseEngine> engine;
  std::unique_ptr<Database> db;
  Database* operator->() { return db.get(); }
  Database* get() { return db.get(); }
  explicit operator bool() const { return db != nullptr; }
};
DbHandle OpenRegion(const DatabaseEngine& e, const std::string& dir, const std::string& region,
                    Rng* rng);

struct BlobStoreEngine {
  std::string name;
  std::function<Result<std::unique_ptr<BlobStore>>(const std::string& dir, Rng* rng)> open;
};
struct RuntimeStoreEngine {
  std::string name;
  std::function<Result<std::unique_ptr<RuntimeStore>>(const std::string& dir,
                                                      const SecretBox* secrets)>
      open;
  // Reads the raw stored bytes of env var `key` (to check secrets are sealed at rest).
  std::function<std::string(const std::string& dir, const std::string& app, const std::string& key)>
      raw_env;
};
// Two regions' databases ("a-1" and "b-1") and the engine's replicator between them.
struct ReplicationPair {
  std::unique_ptr<Config> config;
  std::unique_ptr<regionmove::DatabaseEngine> engine;  // destroyed after the databases
  std::unique_ptr<Database> a, b;
  Replicator* replicator = nullptr;
};
Result<ReplicationPair> OpenPair(const DatabaseEngine& e, const std::string& dir, Rng* rng);

inline void PrintTo(const DatabaseEngine& e, std::ostream* os) { *os << e.name; }
inline void PrintTo(const BlobStoreEngine& e, std::ostream* os) { *os << e.name; }
inline void PrintTo(const RuntimeStoreEngine& e, std::ostream* os) { *os << e.name; }

// Both suites start from regions that hold no database of the test app (a PostgreSQL cluster
// outlives a test).
void DropTestApp(const DatabaseEngine& e, const std::string& dir, const std::string& app);

class DatabaseConformance : public ::testing::TestWithParam<DatabaseEngine> {
 protected:
  void SetUp() override { DropTestApp(GetParam(), dir_.path(), "app_aaaaaaaaaaaa"); }
  TempDir dir_;
  Rng rng_{5};
};
class BlobStoreConformance : public ::testing::TestWithParam<BlobStoreEngine> {
 protected:
  TempDir dir_;
  Rng rng_{6};
};
class RuntimeStoreConformance : public ::testing::TestWithParam<RuntimeStoreEngine> {
 protected:
  TempDir dir_;
};
class ReplicatorConformance : public ::testing::TestWithParam<DatabaseEngine> {
 protected:
  void SetUp() override { DropTestApp(GetParam(), dir_.path(), "app_aaaaaaaaaaaa"); }
  TempDir dir_;
  Rng rng_{7};
};

}  // namespace regionmove::testing
