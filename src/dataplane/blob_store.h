#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace regionmove {

struct BlobInfo {
  std::string key;
  int64_t size = 0;
  std::string sha256;
  std::string content_type;
  std::string object;  // the store's own name for this version's content (not shown to users)
};

// Ok for a key the API accepts: 1..1024 bytes, no NUL, not absolute, no ".." segment.
// Otherwise InvalidArgument with reason "invalid_key" saying why.
Status ValidateBlobKey(std::string_view key);

// A blob's content, read in order.
class BlobReader {
 public:
  virtual ~BlobReader() = default;
  // Up to `n` bytes into `buf`; 0 at the end.
  virtual Result<size_t> Read(char* buf, size_t n) = 0;
};

// Reads from memory (for callers that hold the whole content).
class StringBlobReader final : public BlobReader {
 public:
  explicit StringBlobReader(std::string_view data) : data_(data) {}
  Result<size_t> Read(char* buf, size_t n) override;

 private:
  std::string_view data_;
};

// Receives a blob's content in order: the push side of a Stage (an HTTP body arrives this way).
// Destroyed without Finish, it leaves nothing behind that a reader can see.
class BlobWriter {
 public:
  virtual ~BlobWriter() = default;
  virtual Status Write(const char* data, size_t n) = 0;
  // Makes the content durable (still invisible until Publish) and returns its entry.
  virtual Result<BlobInfo> Finish() = 0;
};

// The blobs of one region, namespaced per app. Writes are atomic: a reader sees the old or the
// new content, never a mix. Thread-safe.
//
// A write has two halves, so that a copy can stream many blobs in parallel and publish them
// together: Stage streams the content into the store (hashing it as it goes; durable, but not
// yet visible to Get, Stat or List) and Publish makes a set of staged blobs visible at once.
// Staged content that is never published costs space until the namespace is deleted; staging
// the same key and content again reuses it.
class BlobStore {
 public:
  virtual ~BlobStore() = default;

  // Starts staging a new version of `key`: write the content, then Finish. `expected_sha256`,
  // when known (a copy), is kept with the content from the start, and Finish refuses content
  // that does not hash to it (Corruption), leaving nothing staged.
  virtual Result<std::unique_ptr<BlobWriter>> StartStage(const std::string& app_id,
                                                         const std::string& key,
                                                         const std::string& content_type,
                                                         const std::string& expected_sha256) = 0;
  // StartStage, every byte of `content`, Finish.
  Result<BlobInfo> Stage(const std::string& app_id, const std::string& key, BlobReader& content,
                         const std::string& content_type, const std::string& expected_sha256 = "");
  // How many blobs a copy into this store stages at once: more where each one waits on a
  // flush to a local disk (the waits overlap), few where each holds large buffers (multipart).
  virtual int CopyStreams() const { return 4; }
  // Makes staged blobs (as Stage returned them) the current versions of their keys.
  virtual Status Publish(const std::string& app_id, const std::vector<BlobInfo>& staged) = 0;
  // Stage + Publish of one blob held in memory.
  Result<BlobInfo> Put(const std::string& app_id, const std::string& key, std::string_view data,
                       const std::string& content_type);
  // The content from byte `offset` on (offset <= size). NotFound when absent; `info`, if
  // given, receives the blob's entry. The reader keeps reading the version it opened.
  virtual Result<std::unique_ptr<BlobReader>> OpenAt(const std::string& app_id,
                                                     const std::string& key, int64_t offset,
                                                     BlobInfo* info) = 0;
  Result<std::unique_ptr<BlobReader>> Open(const std::string& app_id, const std::string& key,
                                           BlobInfo* info) {
    return OpenAt(app_id, key, 0, info);
  }
  // The whole content (Open, read to the end). NotFound when absent.
  Result<std::string> Get(const std::string& app_id, const std::string& key, BlobInfo* info);
  // Where the storage server can copy `info`'s content from without it passing through this
  // process (S3: endpoint, account and object); empty when it cannot.
  virtual std::string CopySource(const std::string& app_id, const BlobInfo& info) {
    (void)app_id, (void)info;
    return "";
  }
  // Stages `info`'s content by a server-side copy from `source` (another store's CopySource);
  // nullopt when this store cannot reach it, and the caller streams the content instead.
  virtual Result<std::optional<BlobInfo>> StageCopy(const std::string& app_id, const BlobInfo& info,
                                                    const std::string& source) {
    (void)app_id, (void)info, (void)source;
    return std::optional<BlobInfo>();
  }
  virtual Result<std::optional<BlobInfo>> Stat(const std::string& app_id,
                                               const std::string& key) = 0;
  // NotFound when absent.
  virtual Status Delete(const std::string& app_id, const std::string& key) = 0;
  // Keys > after with the prefix, in key order, at most `limit`.
  virtual Result<std::vector<BlobInfo>> List(const std::string& app_id, const std::string& prefix,
                                             const std::string& after, int limit) = 0;
  // Removes the app's content that was staged but never published (what a crash between Stage
  // and Publish leaves behind). Only for a namespace no one else writes to (a move's dest: a
  // concurrent upload's staged content would go too). Returns how many were removed.
  virtual Result<int64_t> RemoveUnpublished(const std::string& app_id) = 0;
  // Removes the app's namespace and everything in it (idempotent). A namespace needs no making:
  // an app's blobs are under its id from the first one on (an fs store makes its directory
  // then). `token`: the acting migration's fencing token, as Database::Drop takes it (0:
  // unchecked).
  virtual Status DeleteNamespace(const std::string& app_id, int64_t token = 0) = 0;
  virtual Result<int64_t> SizeBytes(const std::string& app_id) = 0;
  // SizeBytes of many apps at once (a region's usage sums every app of the region): every one
  // of `app_ids` is in the answer, 0 for what is not there.
  virtual Result<std::map<std::string, int64_t>> SizesBytes(
      const std::vector<std::string>& app_ids) = 0;
};

}  // namespace regionmove
