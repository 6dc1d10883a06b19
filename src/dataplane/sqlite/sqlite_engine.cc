#include "dataplane/sqlite/sqlite_engine.h"

#include "dataplane/sqlite/sqlite_runtime_store.h"

namespace regionmove {

SqliteEngine::SqliteEngine(const EngineEnv& env)
    : env_(env), replicator_([this](const std::string& region) -> SqliteDatabase* {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = regions_.find(region);
        return it == regions_.end() ? nullptr : it->second;
      }) {}

Result<std::unique_ptr<DatabaseEngine>> SqliteEngine::Make(const EngineEnv& env) {
  return std::unique_ptr<DatabaseEngine>(new SqliteEngine(env));
}

Result<std::unique_ptr<Database>> SqliteEngine::OpenDatabase(const RegionConfig& region) {
  ASSIGN_OR_RETURN(auto db, SqliteDatabase::Open(region.database.dir, env_.rng));
  std::lock_guard<std::mutex> lock(mu_);
  regions_[region.slug] = db.get();
  return std::unique_ptr<Database>(std::move(db));
}

Result<std::unique_ptr<RuntimeStore>> SqliteEngine::OpenRuntime(const RegionConfig& region) {
  ASSIGN_OR_RETURN(auto rs, SqliteRuntimeStore::Open(region.database.dir, env_.secrets));
  return std::unique_ptr<RuntimeStore>(std::move(rs));
}

}  // namespace regionmove
