#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/ids.h"
#include "common/secret_box.h"
#include "dataplane/blob_store.h"
#include "dataplane/database.h"
#include "dataplane/replicator.h"
#include "dataplane/runtime_store.h"
#include "test_util.h"

namespace regionmove::testing {

// An engine of each data plane port. `open(dir)` opens a handle on the port's data in `dir`;
// two calls with the same dir act as two processes sharing it.
struct DatabaseEngine {
  std::string name;
  std::function<Result<std::unique_ptr<Database>>(const std::string& dir, Rng* rng)> open;
};
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
// Two regions' databases and a replicator between them ("a-1" and "b-1").
struct ReplicationEngine {
  std::string name;
  struct Pair {
    std::unique_ptr<Database> a, b;
    std::unique_ptr<Replicator> replicator;
  };
  std::function<Result<Pair>(const std::string& dir, Rng* rng)> open;
};

inline void PrintTo(const DatabaseEngine& e, std::ostream* os) { *os << e.name; }
inline void PrintTo(const BlobStoreEngine& e, std::ostream* os) { *os << e.name; }
inline void PrintTo(const RuntimeStoreEngine& e, std::ostream* os) { *os << e.name; }
inline void PrintTo(const ReplicationEngine& e, std::ostream* os) { *os << e.name; }

class DatabaseConformance : public ::testing::TestWithParam<DatabaseEngine> {
 protected:
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
class ReplicatorConformance : public ::testing::TestWithParam<ReplicationEngine> {
 protected:
  TempDir dir_;
  Rng rng_{7};
};

}  // namespace regionmove::testing
