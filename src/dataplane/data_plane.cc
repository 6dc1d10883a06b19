#include "dataplane/data_plane.h"

#include <filesystem>

namespace regionmove {

// Sends each replication call to the replicator of the database engine both regions share.
class DataPlane::Router final : public Replicator {
 public:
  explicit Router(DataPlane* plane) : plane_(plane) {}
  Status Start(const std::string& app, const std::string& p, const std::string& r) override {
    ASSIGN_OR_RETURN(Replicator * rep, For(p, r));
    return rep->Start(app, p, r);
  }
  Status StartFromSnapshot(const std::string& app, const std::string& p, const std::string& r,
                           const std::function<Status(const nlohmann::json&)>& copy) override {
    ASSIGN_OR_RETURN(Replicator * rep, For(p, r));
    return rep->StartFromSnapshot(app, p, r, copy);
  }
  Result<ReplicationLag> Pump(const std::string& app, const std::string& p,
                              const std::string& r) override {
    ASSIGN_OR_RETURN(Replicator * rep, For(p, r));
    return rep->Pump(app, p, r);
  }
  Result<ReplicationLag> Lag(const std::string& app, const std::string& p,
                             const std::string& r) override {
    ASSIGN_OR_RETURN(Replicator * rep, For(p, r));
    return rep->Lag(app, p, r);
  }
  Status Tick(const std::string& app, const std::string& p, const std::string& r) override {
    ASSIGN_OR_RETURN(Replicator * rep, For(p, r));
    return rep->Tick(app, p, r);
  }
  Status SyncRest(const std::string& app, const std::string& p, const std::string& r) override {
    ASSIGN_OR_RETURN(Replicator * rep, For(p, r));
    return rep->SyncRest(app, p, r);
  }
  Result<DigestScope> Changed(const std::string& app, const std::string& p,
                              const std::string& r) override {
    ASSIGN_OR_RETURN(Replicator * rep, For(p, r));
    return rep->Changed(app, p, r);
  }
  Status Stop(const std::string& app, const std::string& p, const std::string& r) override {
    ASSIGN_OR_RETURN(Replicator * rep, For(p, r));
    return rep->Stop(app, p, r);
  }

 private:
  Result<Replicator*> For(const std::string& primary, const std::string& replica) {
    Status s = plane_->CanExchange(primary, replica);
    if (!s.ok()) return Status(StatusCode::kPermanent, s.message(), s.reason());
    return plane_->engines_.at(plane_->Region(primary)->config.database.engine)->replicator();
  }
  DataPlane* plane_;
};

Result<std::unique_ptr<DataPlane>> DataPlane::Open(const Config& config, Rng* rng) {
  std::unique_ptr<DataPlane> plane(new DataPlane());
  plane->config_ = std::make_unique<Config>(config);  // the engines keep a pointer to it
  plane->staging_dir_ = config.data_dir + "/staging";
  std::error_code ec;
  std::filesystem::create_directories(plane->staging_dir_, ec);
  if (ec) return Permanent("cannot create " + plane->staging_dir_ + ": " + ec.message());
  ASSIGN_OR_RETURN(
      plane->secrets_,
      SecretBox::ForDeployment(config.secrets_key_file, config.control_store_engine != "postgres"));
  EngineEnv env{plane->config_.get(), rng, plane->secrets_.get()};
  for (const auto& rc : plane->config_->regions) {
    const std::string& db_engine = rc.database.engine;
    if (!plane->engines_.count(db_engine)) {
      const DatabaseEngineFactory* make = FindDatabaseEngine(db_engine);
      if (!make) {
        return InvalidArgument("region " + rc.slug + ": database engine '" + db_engine +
                                   "' is not available in this build",
                               "invalid_config");
      }
      ASSIGN_OR_RETURN(plane->engines_[db_engine], (*make)(env));
    }
    DatabaseEngine* engine = plane->engines_[db_engine].get();
    const BlobEngineFactory* make_blobs = FindBlobEngine(rc.blobs.engine);
    if (!make_blobs) {
      return InvalidArgument("region " + rc.slug + ": blob engine '" + rc.blobs.engine +
                                 "' is not available in this build",
                             "invalid_config");
    }
    RegionPlane rp;
    rp.config = rc;
    ASSIGN_OR_RETURN(rp.db, engine->OpenDatabase(rc));
    ASSIGN_OR_RETURN(rp.runtime, engine->OpenRuntime(rc));
    ASSIGN_OR_RETURN(rp.blobs, (*make_blobs)(rc, env));
    plane->regions_.emplace(rc.slug, std::move(rp));
  }
  plane->replicator_ = std::make_unique<Router>(plane.get());
  return plane;
}

DataPlane::~DataPlane() {
  replicator_.reset();
  regions_.clear();  // the databases before the engines that made them
}

Status DataPlane::CanExchange(const std::string& from_region, const std::string& to_region) {
  RegionPlane* from = Region(from_region);
  RegionPlane* to = Region(to_region);
  if (!from || !to) {
    return NotFound("region " + (from ? to_region : from_region) + " is not configured");
  }
  const std::string& a = from->config.database.engine;
  const std::string& b = to->config.database.engine;
  if (a == b) return Status::Ok();
  return Conflict("the app database cannot move between " + from_region + " (" + a + ") and " +
                      to_region + " (" + b + "): their database engines differ",
                  "engine_mismatch");
}

int64_t AppBytes(RegionPlane* region, const std::string& app_id) {
  auto db = region->db->SizeBytes(app_id);
  auto blobs = region->blobs->SizeBytes(app_id);
  return (db.ok() ? *db : 0) + (blobs.ok() ? *blobs : 0);
}

std::map<std::string, int64_t> AppsBytes(RegionPlane* region,
                                         const std::vector<std::string>& app_ids) {
  std::map<std::string, int64_t> out;
  for (const auto& id : app_ids) out[id] = 0;
  // As AppBytes: what cannot be measured counts as 0.
  auto add = [&out](const Result<std::map<std::string, int64_t>>& sizes) {
    if (!sizes.ok()) return;
    for (const auto& [id, n] : sizes.value()) out[id] += n;
  };
  add(region->db->SizesBytes(app_ids));
  add(region->blobs->SizesBytes(app_ids));
  return out;
}

RegionPlane* DataPlane::Region(const std::string& slug) {
  auto it = regions_.find(slug);
  return it == regions_.end() ? nullptr : &it->second;
}

}  // namespace regionmove
