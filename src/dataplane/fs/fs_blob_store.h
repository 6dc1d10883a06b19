#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "common/ids.h"
#include "common/sqlite.h"
#include "dataplane/blob_store.h"

namespace regionmove {

// BlobStore on a directory. Content lives in `<dir>/<app_id>/<h[0:2]>/<h>` where h is the
// SHA-256 of the key (so no key can name a path outside the store); key, size, SHA-256 and
// content type live in one SQLite index per region (`<dir>/_index.sqlite3`) that gives ordered
// listings with a cursor. Stage streams into a temp file, fsyncs it and renames it to a name of
// key and content; Publish points the index at a set of them in one transaction, so readers see
// the old or the new blob.
class FsBlobStore final : public BlobStore {
 public:
  static Result<std::unique_ptr<FsBlobStore>> Open(const std::string& dir, Rng* rng);

  Result<BlobInfo> Stage(const std::string& app_id, const std::string& key, BlobReader& content,
                         const std::string& content_type) override;
  Status Publish(const std::string& app_id, const std::vector<BlobInfo>& staged) override;
  Result<std::unique_ptr<BlobReader>> Open(const std::string& app_id, const std::string& key,
                                           BlobInfo* info) override;
  Result<std::optional<BlobInfo>> Stat(const std::string& app_id, const std::string& key) override;
  Status Delete(const std::string& app_id, const std::string& key) override;
  Result<std::vector<BlobInfo>> List(const std::string& app_id, const std::string& prefix,
                                     const std::string& after, int limit) override;
  Status CreateNamespace(const std::string& app_id) override;
  Status DeleteNamespace(const std::string& app_id, int64_t token = 0) override;
  Result<int64_t> SizeBytes(const std::string& app_id) override;

 private:
  FsBlobStore(std::string dir, std::unique_ptr<sqlite::Db> index, Rng* rng)
      : dir_(std::move(dir)), index_(std::move(index)), rng_(rng) {}
  // The file of `key` holding content `sha256` (empty: the first layout, named by key only).
  std::string PathFor(const std::string& app_id, const std::string& key,
                      const std::string& sha256) const;
  Result<std::optional<BlobInfo>> StatLocked(const std::string& app_id, const std::string& key);

  std::string dir_;
  std::mutex mu_;  // guards index_ and every rename/unlink
  std::unique_ptr<sqlite::Db> index_;
  Rng* rng_;
};

}  // namespace regionmove
