#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "dataplane/engines.h"
#include "dataplane/sqlite/sqlite_database.h"
#include "dataplane/sqlite/sqlite_replicator.h"

namespace regionmove {

// The embedded database engine: a SQLite file per app under each region's `database.dir`, the
// runtime store in the same directory, replication by the session extension's changesets.
class SqliteEngine final : public DatabaseEngine {
 public:
  static Result<std::unique_ptr<DatabaseEngine>> Make(const EngineEnv& env);

  Result<std::unique_ptr<Database>> OpenDatabase(const RegionConfig& region) override;
  Result<std::unique_ptr<RuntimeStore>> OpenRuntime(const RegionConfig& region) override;
  Replicator* replicator() override { return &replicator_; }

 private:
  explicit SqliteEngine(const EngineEnv& env);
  EngineEnv env_;
  std::mutex mu_;
  std::map<std::string, SqliteDatabase*> regions_;  // owned by the caller of OpenDatabase
  SqliteReplicator replicator_;
};

}  // namespace regionmove
