#include "dataplane/data_plane.h"

#include <filesystem>

#include "dataplane/fs/fs_blob_store.h"
#include "dataplane/sqlite/sqlite_database.h"
#include "dataplane/sqlite/sqlite_replicator.h"
#include "dataplane/sqlite/sqlite_runtime_store.h"

namespace regionmove {

Result<std::unique_ptr<DataPlane>> DataPlane::Open(const Config& config, Rng* rng) {
  std::unique_ptr<DataPlane> plane(new DataPlane());
  plane->staging_dir_ = config.data_dir + "/staging";
  std::error_code ec;
  std::filesystem::create_directories(plane->staging_dir_, ec);
  if (ec) return Permanent("cannot create " + plane->staging_dir_ + ": " + ec.message());
  ASSIGN_OR_RETURN(plane->secrets_, SecretBox::FromKeyFile(config.secrets_key_file));
  for (const auto& rc : config.regions) {
    RegionPlane rp;
    rp.config = rc;
    if (rc.database.engine != "sqlite") {
      return InvalidArgument("region " + rc.slug + ": database engine '" + rc.database.engine +
                                 "' is not available in this build (sqlite is)",
                             "invalid_config");
    }
    ASSIGN_OR_RETURN(rp.db, SqliteDatabase::Open(rc.database.dir, rng));
    ASSIGN_OR_RETURN(rp.runtime, SqliteRuntimeStore::Open(rc.database.dir, plane->secrets_.get()));
    if (rc.blobs.engine != "fs") {
      return InvalidArgument("region " + rc.slug + ": blob engine '" + rc.blobs.engine +
                                 "' is not available in this build (fs is)",
                             "invalid_config");
    }
    ASSIGN_OR_RETURN(rp.blobs, FsBlobStore::Open(rc.blobs.dir, rng));
    plane->regions_.emplace(rc.slug, std::move(rp));
  }
  DataPlane* raw = plane.get();
  plane->replicator_ = std::make_unique<SqliteReplicator>([raw](const std::string& slug) {
    RegionPlane* r = raw->Region(slug);
    return r ? dynamic_cast<SqliteDatabase*>(r->db.get()) : nullptr;
  });
  return plane;
}

int64_t AppBytes(RegionPlane* region, const std::string& app_id) {
  auto db = region->db->SizeBytes(app_id);
  auto blobs = region->blobs->SizeBytes(app_id);
  return (db.ok() ? *db : 0) + (blobs.ok() ? *blobs : 0);
}

RegionPlane* DataPlane::Region(const std::string& slug) {
  auto it = regions_.find(slug);
  return it == regions_.end() ? nullptr : &it->second;
}

}  // namespace regionmove
