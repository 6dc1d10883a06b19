#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/ids.h"
#include "common/result.h"
#include "common/secret_box.h"
#include "config/config.h"
#include "dataplane/blob_store.h"
#include "dataplane/database.h"
#include "dataplane/replicator.h"
#include "dataplane/runtime_store.h"

namespace regionmove {

// What an engine may use when it opens a region's port.
struct EngineEnv {
  const Config* config = nullptr;  // every region's settings (a copy reads from its source's)
  Rng* rng = nullptr;
  const SecretBox* secrets = nullptr;
};

// One per database engine in a data plane: it opens the regions that use the engine, and its
// replicator replicates between them. The engine keeps typed handles on the databases it
// opened, so its replicator never needs to find a partner by casting a port.
class DatabaseEngine {
 public:
  virtual ~DatabaseEngine() = default;
  virtual Result<std::unique_ptr<Database>> OpenDatabase(const RegionConfig& region) = 0;
  // The runtime store of a region lives on the region's database engine (SPEC §8).
  virtual Result<std::unique_ptr<RuntimeStore>> OpenRuntime(const RegionConfig& region) = 0;
  virtual Replicator* replicator() = 0;
};

using DatabaseEngineFactory =
    std::function<Result<std::unique_ptr<DatabaseEngine>>(const EngineEnv& env)>;
using BlobEngineFactory = std::function<Result<std::unique_ptr<BlobStore>>(
    const RegionConfig& region, const EngineEnv& env)>;

// The factories by engine name ("sqlite", "postgres", "fs"), filled explicitly from main by
// RegisterBuiltinEngines() (DESIGN rule 1: no static initialisers). Registering a name again
// replaces its factory.
void RegisterDatabaseEngine(const std::string& name, DatabaseEngineFactory factory);
void RegisterBlobEngine(const std::string& name, BlobEngineFactory factory);
// nullptr when no engine of that name is registered.
const DatabaseEngineFactory* FindDatabaseEngine(const std::string& name);
const BlobEngineFactory* FindBlobEngine(const std::string& name);
std::vector<std::string> DatabaseEngineNames();
std::vector<std::string> BlobEngineNames();

// Registers every engine this build has. Idempotent. Defined in builtin_engines.cc, the one
// file that names concrete engines.
void RegisterBuiltinEngines();

}  // namespace regionmove
