// The one place that names the concrete engines of the data plane ports.
#include "dataplane/engines.h"
#include "dataplane/fs/fs_objects.h"
#include "dataplane/postgres/pg_engine.h"
#include "dataplane/s3/s3_objects.h"
#include "dataplane/sqlite/sqlite_engine.h"

namespace regionmove {

void RegisterBuiltinEngines() {
  RegisterDatabaseEngine("sqlite", SqliteEngine::Make);
  RegisterDatabaseEngine("postgres", PgEngine::Make);
  RegisterBlobEngine(
      "fs",
      [](const RegionConfig& region, const EngineEnv& env) -> Result<std::unique_ptr<BlobStore>> {
        return OpenFsBlobStore(region.blobs.dir, env.rng);
      });
  RegisterBlobEngine("s3", [](const RegionConfig& region, const EngineEnv& env) {
    return OpenS3BlobStore(region.blobs, env.rng);
  });
}

}  // namespace regionmove
