#pragma once

#include <memory>
#include <string>

#include "common/ids.h"
#include "dataplane/blob_store.h"
#include "dataplane/object_store.h"

namespace regionmove {

// Objects as files under a directory: `<dir>/<name>`. A new object is written to a temp file,
// fsynced and renamed to "<base>-<sha256[0:32]>" (the same content of the same key is one
// file); a crash leaves a temp file that the next Open sweeps away.
class FsObjects final : public ObjectStore {
 public:
  static Result<std::unique_ptr<FsObjects>> Open(const std::string& dir, Rng* rng);

  Result<std::unique_ptr<ObjectWriter>> Create(const std::string& base,
                                               const std::string& sha256) override;
  Result<std::unique_ptr<BlobReader>> Read(const std::string& name, int64_t offset,
                                           int64_t size) override;
  Result<bool> Exists(const std::string& name) override;
  Status Remove(const std::string& name) override;
  // A blob's copy is mostly waiting for its two fsyncs (file, then directory): concurrent
  // fsyncs share the filesystem's journal commits.
  int CopyStreams() const override { return 16; }
  Status RemoveDir(const std::string& dir) override;
  // Walks the whole directory on each call (strays are rare, and only a move's dest is swept).
  Result<std::vector<std::string>> List(const std::string& dir, const std::string& after,
                                        int limit) override;

 private:
  FsObjects(std::string dir, Rng* rng) : dir_(std::move(dir)), rng_(rng) {}
  std::string dir_;
  Rng* rng_;
};

// The fs blob engine: FsObjects under `dir`, indexed by `<dir>/_index.sqlite3`.
Result<std::unique_ptr<BlobStore>> OpenFsBlobStore(const std::string& dir, Rng* rng);

}  // namespace regionmove
