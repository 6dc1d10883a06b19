#pragma once

#include <map>
#include <memory>
#include <string>

#include "common/ids.h"
#include "common/secret_box.h"
#include "config/config.h"
#include "dataplane/blob_store.h"
#include "dataplane/database.h"
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

// Every region's data plane plus the replicator between them. Built once from the config by
// Open(), which picks each port's engine (the only place that names concrete engines).
class DataPlane {
 public:
  static Result<std::unique_ptr<DataPlane>> Open(const Config& config, Rng* rng);

  // nullptr for an unknown slug.
  RegionPlane* Region(const std::string& slug);
  Replicator* replicator() { return replicator_.get(); }
  const SecretBox* secrets() const { return secrets_.get(); }
  // Where dump artifacts are staged.
  const std::string& staging_dir() const { return staging_dir_; }

 private:
  DataPlane() = default;
  std::map<std::string, RegionPlane> regions_;
  std::unique_ptr<Replicator> replicator_;
  std::unique_ptr<SecretBox> secrets_;
  std::string staging_dir_;
};

}  // namespace regionmove
