#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace regionmove {

struct BlobInfo {
  std::string key;
  int64_t size = 0;
  std::string sha256;
  std::string content_type;
};

// Ok for a key the API accepts: 1..1024 bytes, no NUL, not absolute, no ".." segment.
// Otherwise InvalidArgument with reason "invalid_key" saying why.
Status ValidateBlobKey(std::string_view key);

// The blobs of one region, namespaced per app. Writes are atomic: a reader sees the old or the
// new content, never a mix. Thread-safe.
class BlobStore {
 public:
  virtual ~BlobStore() = default;

  virtual Result<BlobInfo> Put(const std::string& app_id, const std::string& key,
                               const std::string& data, const std::string& content_type) = 0;
  // NotFound when absent.
  virtual Result<std::string> Get(const std::string& app_id, const std::string& key,
                                  BlobInfo* info) = 0;
  virtual Result<std::optional<BlobInfo>> Stat(const std::string& app_id,
                                               const std::string& key) = 0;
  // NotFound when absent.
  virtual Status Delete(const std::string& app_id, const std::string& key) = 0;
  // Keys > after with the prefix, in key order, at most `limit`.
  virtual Result<std::vector<BlobInfo>> List(const std::string& app_id, const std::string& prefix,
                                             const std::string& after, int limit) = 0;
  // Creates the app's namespace (idempotent) / removes it and everything in it (idempotent).
  virtual Status CreateNamespace(const std::string& app_id) = 0;
  // `token`: the acting migration's fencing token, as Database::Drop takes it (0: unchecked).
  virtual Status DeleteNamespace(const std::string& app_id, int64_t token = 0) = 0;
  virtual Result<int64_t> SizeBytes(const std::string& app_id) = 0;
};

}  // namespace regionmove
