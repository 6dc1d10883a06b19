#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "dataplane/blob_store.h"

namespace regionmove {

// Receives one new object's content. Destroyed without Commit, it leaves no object.
class ObjectWriter {
 public:
  virtual ~ObjectWriter() = default;
  virtual Status Write(const char* data, size_t n) = 0;
  // Makes the object durable and returns its name. `sha256`: of the content (hex).
  virtual Result<std::string> Commit(const std::string& sha256) = 0;
};

// Where an IndexedBlobStore keeps content: objects that are written once under a name of the
// store's choosing, never changed, and removed when no index entry names them any more.
// Names are '/'-separated paths under the app's directory ("<app_id>/..."). Thread-safe.
class ObjectStore {
 public:
  virtual ~ObjectStore() = default;
  // A new object; its name starts with `base` ("<app_id>/<h[0:2]>/<h>"). `sha256`, when known
  // before the content, may be stored with it from the start.
  virtual Result<std::unique_ptr<ObjectWriter>> Create(const std::string& base,
                                                       const std::string& sha256) = 0;
  // The content of `name` from byte `offset` on; `size` is the object's whole size.
  // NotFound when there is no such object.
  virtual Result<std::unique_ptr<BlobReader>> Read(const std::string& name, int64_t offset,
                                                   int64_t size) = 0;
  virtual Result<bool> Exists(const std::string& name) = 0;
  virtual Status Remove(const std::string& name) = 0;  // idempotent
  // BlobStore::CopyStreams of a store of these objects.
  virtual int CopyStreams() const { return 4; }
  // Removes every object under `dir` + "/" (idempotent).
  virtual Status RemoveDir(const std::string& dir) = 0;
  // Names of the objects under `dir` + "/" that sort after `after`, in order, at most `limit`.
  virtual Result<std::vector<std::string>> List(const std::string& dir, const std::string& after,
                                                int limit) = 0;
  // Server-side copies (see BlobStore::CopySource): where `name` can be copied from, and a new
  // object (named as Create names them) copied from such a source; nullopt when not reachable.
  // The copy is checked against `size` and `sha256`.
  virtual std::string CopySource(const std::string& name) {
    (void)name;
    return "";
  }
  virtual Result<std::optional<std::string>> CopyFrom(const std::string& source,
                                                      const std::string& base, int64_t size,
                                                      const std::string& sha256) {
    (void)source, (void)base, (void)size, (void)sha256;
    return std::optional<std::string>();
  }
};

}  // namespace regionmove
