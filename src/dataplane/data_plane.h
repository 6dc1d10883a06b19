#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/ids.h"
#include "common/secret_box.h"
#include "config/config.h"
#include "dataplane/blob_store.h"
#include "dataplane/database.h"
#include "dataplane/engines.h"
#include "dataplane/replicator.h"
#include "dataplane/runtime_store.h"

namespace regionmove {

// The ports of one region, built from its config.
struct RegionPlane {
  RegionConfig config;
  std::unique_ptr<Database> db;
  std::unique_ptr<BlobStore> blobs;
  std::unique_ptr<RuntimeStore> runtime;
};

// Bytes an app holds in a region: its database plus its blobs (0 for what is not there).
int64_t AppBytes(RegionPlane* region, const std::string& app_id);
// AppBytes of many apps of one region, asking each store once for all of them.
std::map<std::string, int64_t> AppsBytes(RegionPlane* region,
                                         const std::vector<std::string>& app_ids);

// Every region's data plane plus the replication between them. Built once from the config by
// Open(), which makes each port's engine with the factory registered under the name the config
// gives (RegisterBuiltinEngines() must have run).
class DataPlane {
 public:
  static Result<std::unique_ptr<DataPlane>> Open(const Config& config, Rng* rng);
  ~DataPlane();

  // nullptr for an unknown slug.
  RegionPlane* Region(const std::string& slug);
  // Replication between any two regions: each call goes to the replicator of the regions'
  // database engine; regions of different engines get Permanent("engine_mismatch").
  Replicator* replicator() { return replicator_.get(); }
  // Ok when an app database can be copied and replicated between the two regions;
  // Conflict(reason "engine_mismatch") naming both engines when it cannot.
  Status CanExchange(const std::string& from_region, const std::string& to_region);
  const SecretBox* secrets() const { return secrets_.get(); }
  // Where copies stage their files (under "<staging_dir>/<migration id>.").
  const std::string& staging_dir() const { return staging_dir_; }

 private:
  class Router;
  DataPlane() = default;
  std::unique_ptr<Config> config_;
  std::unique_ptr<SecretBox> secrets_;
  std::map<std::string, std::unique_ptr<DatabaseEngine>> engines_;  // by engine name
  std::map<std::string, RegionPlane> regions_;                      // destroyed before the engines
  std::unique_ptr<Replicator> replicator_;
  std::string staging_dir_;
};

}  // namespace regionmove
