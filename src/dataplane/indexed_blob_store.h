#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "common/sqlite.h"
#include "dataplane/blob_store.h"
#include "dataplane/object_store.h"

namespace regionmove {

// BlobStore on an ObjectStore (a directory, an S3 bucket) and an index. Each version of a blob
// is its own object, named after the SHA-256 of its key (so no key can name a path outside the
// store) and a suffix the object store chooses; key, size, SHA-256, content type and object
// name live in one SQLite index per region that gives ordered listings with a cursor and
// per-app sizes without listing objects. Stage writes the object (durable, unnamed by the
// index), Publish points the index at a set of them in one transaction, so readers see the old
// or the new blob, and removes the objects it superseded.
class IndexedBlobStore final : public BlobStore {
 public:
  // `index_path`: the SQLite index file (created if missing).
  static Result<std::unique_ptr<IndexedBlobStore>> Open(std::unique_ptr<ObjectStore> objects,
                                                        const std::string& index_path);

  Result<std::unique_ptr<BlobWriter>> StartStage(const std::string& app_id, const std::string& key,
                                                 const std::string& content_type,
                                                 const std::string& expected_sha256) override;
  Status Publish(const std::string& app_id, const std::vector<BlobInfo>& staged) override;
  int CopyStreams() const override { return objects_->CopyStreams(); }
  Result<std::unique_ptr<BlobReader>> OpenAt(const std::string& app_id, const std::string& key,
                                             int64_t offset, BlobInfo* info) override;
  std::string CopySource(const std::string& app_id, const BlobInfo& info) override;
  Result<std::optional<BlobInfo>> StageCopy(const std::string& app_id, const BlobInfo& info,
                                            const std::string& source) override;
  Result<std::optional<BlobInfo>> Stat(const std::string& app_id, const std::string& key) override;
  Status Delete(const std::string& app_id, const std::string& key) override;
  Result<std::vector<BlobInfo>> List(const std::string& app_id, const std::string& prefix,
                                     const std::string& after, int limit) override;
  Result<int64_t> RemoveUnpublished(const std::string& app_id) override;
  Status DeleteNamespace(const std::string& app_id, int64_t token = 0) override;
  Result<int64_t> SizeBytes(const std::string& app_id) override;
  Result<std::map<std::string, int64_t>> SizesBytes(
      const std::vector<std::string>& app_ids) override;

 private:
  IndexedBlobStore(std::unique_ptr<ObjectStore> objects, std::unique_ptr<sqlite::Db> index)
      : objects_(std::move(objects)), index_(std::move(index)) {}
  Result<std::optional<BlobInfo>> StatLocked(const std::string& app_id, const std::string& key);

  std::unique_ptr<ObjectStore> objects_;
  std::mutex mu_;  // guards index_
  std::unique_ptr<sqlite::Db> index_;
};

// "<app_id>/<h[0:2]>/<h>", h the SHA-256 of the key: where the objects of `key`'s versions go.
std::string BlobObjectBase(const std::string& app_id, const std::string& key);

}  // namespace regionmove
