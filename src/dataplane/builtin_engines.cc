// The one place that names the concrete engines of the data plane ports.
#include "dataplane/engines.h"
#include "dataplane/fs/fs_blob_store.h"
#include "dataplane/postgres/pg_engine.h"
#include "dataplane/sqlite/sqlite_engine.h"

namespace regionmove {

void RegisterBuiltinEngines() {
  RegisterDatabaseEngine("sqlite", SqliteEngine::Make);
  RegisterDatabaseEngine("postgres", PgEngine::Make);
  RegisterBlobEngine(
      "fs",
      [](const RegionConfig& region, const EngineEnv& env) -> Result<std::unique_ptr<BlobStore>> {
        ASSIGN_OR_RETURN(auto bs, FsBlobStore::Open(region.blobs.dir, env.rng));
        return std::unique_ptr<BlobStore>(std::move(bs));
      });
}

}  // namespace regionmove
