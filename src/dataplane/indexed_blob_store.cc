#include "dataplane/indexed_blob_store.h"

#include <vector>

#include "common/hash.h"

namespace regionmove {

using sqlite::Stmt;

namespace {

constexpr const char* kColumns = "key, size, sha256, content_type, object";
constexpr int kBusyBudgetMs = 10000;

// Hashes and counts what goes into the object as it goes.
class IndexedWriter final : public BlobWriter {
 public:
  IndexedWriter(std::unique_ptr<ObjectWriter> object, BlobInfo info, std::string expected_sha256)
      : object_(std::move(object)), info_(std::move(info)), expected_(std::move(expected_sha256)) {}
  Status Write(const char* data, size_t n) override {
    hash_.Update(data, n);
    info_.size += static_cast<int64_t>(n);
    return object_->Write(data, n);
  }
  Result<BlobInfo> Finish() override {
    info_.sha256 = hash_.HexDigest();
    if (!expected_.empty() && info_.sha256 != expected_) {
      // The object is dropped uncommitted: nothing of it stays.
      return Corruption("blob " + info_.key + " hashes to " + info_.sha256 + ", not " + expected_);
    }
    ASSIGN_OR_RETURN(info_.object, object_->Commit(info_.sha256));
    return info_;
  }

 private:
  std::unique_ptr<ObjectWriter> object_;
  BlobInfo info_;
  std::string expected_;
  Sha256 hash_;
};

// Entries written before the index named objects point at "<base>-<sha256[0:32]>", and the
// first ones at "<base>" alone.
std::vector<std::string> ObjectNames(const std::string& app_id, const BlobInfo& b) {
  if (!b.object.empty()) return {b.object};
  std::string base = BlobObjectBase(app_id, b.key);
  return {base + "-" + b.sha256.substr(0, 32), base};
}

BlobInfo ReadInfo(const Stmt& q) {
  return BlobInfo{q.Text(0), q.Int(1), q.Text(2), q.Text(3), q.Text(4)};
}

}  // namespace

std::string BlobObjectBase(const std::string& app_id, const std::string& key) {
  std::string h = Sha256Hex(key);
  return app_id + "/" + h.substr(0, 2) + "/" + h;
}

Result<std::unique_ptr<IndexedBlobStore>> IndexedBlobStore::Open(
    std::unique_ptr<ObjectStore> objects, const std::string& index_path) {
  ASSIGN_OR_RETURN(auto index, sqlite::Db::Open(index_path));
  // Several processes (serve, workers) may open one index at once: each schema statement waits
  // its turn, and no read is left open across them (a connection that holds a read snapshot
  // cannot take the write lock after another one wrote, however long it waits).
  RETURN_IF_ERROR(index->ExecWhileBusy(
      "CREATE TABLE IF NOT EXISTS blobs (app_id TEXT NOT NULL, key TEXT NOT NULL, size INTEGER "
      "NOT NULL, sha256 TEXT NOT NULL, content_type TEXT NOT NULL, object TEXT NOT NULL DEFAULT "
      "'', PRIMARY KEY (app_id, key))",
      kBusyBudgetMs));
  // Indexes made before objects were named in them gain the column (empty: the old names).
  bool has_object = false;
  {
    ASSIGN_OR_RETURN(Stmt cols, index->Prepare("SELECT count(*) FROM pragma_table_info('blobs') "
                                               "WHERE name = 'object'"));
    ASSIGN_OR_RETURN(bool row, cols.Step());
    has_object = row && cols.Int(0) > 0;
  }
  if (!has_object) {
    Status added = index->ExecWhileBusy(
        "ALTER TABLE blobs ADD COLUMN object TEXT NOT NULL DEFAULT ''", kBusyBudgetMs);
    // Another process may have added it in between.
    if (!added.ok() && added.message().find("duplicate column") == std::string::npos) {
      return added;
    }
  }
  RETURN_IF_ERROR(index->ExecWhileBusy(
      "CREATE INDEX IF NOT EXISTS blobs_by_object ON blobs(app_id, object)", kBusyBudgetMs));
  return std::unique_ptr<IndexedBlobStore>(
      new IndexedBlobStore(std::move(objects), std::move(index)));
}

Result<std::unique_ptr<BlobWriter>> IndexedBlobStore::StartStage(
    const std::string& app_id, const std::string& key, const std::string& content_type,
    const std::string& expected_sha256) {
  RETURN_IF_ERROR(ValidateBlobKey(key));
  ASSIGN_OR_RETURN(auto object, objects_->Create(BlobObjectBase(app_id, key), expected_sha256));
  BlobInfo info;
  info.key = key;
  info.content_type = content_type.empty() ? "application/octet-stream" : content_type;
  return std::unique_ptr<BlobWriter>(
      new IndexedWriter(std::move(object), std::move(info), expected_sha256));
}

Status IndexedBlobStore::Publish(const std::string& app_id, const std::vector<BlobInfo>& staged) {
  // The objects must still exist: a namespace deleted since they were staged took them along.
  for (const BlobInfo& b : staged) {
    ASSIGN_OR_RETURN(bool exists, objects_->Exists(b.object));
    if (!exists) return Unavailable("staged blob " + b.key + " is gone; stage it again");
  }
  std::vector<std::string> superseded;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // One index transaction (one fsync) for the whole set.
    ASSIGN_OR_RETURN(sqlite::Txn txn, sqlite::Txn::Begin(index_.get()));
    ASSIGN_OR_RETURN(
        Stmt q, index_->Prepare("INSERT INTO blobs(app_id, key, size, sha256, content_type, "
                                "object) VALUES (?,?,?,?,?,?) ON CONFLICT(app_id, key) DO UPDATE "
                                "SET size = excluded.size, sha256 = excluded.sha256, "
                                "content_type = excluded.content_type, object = excluded.object"));
    for (const BlobInfo& b : staged) {
      ASSIGN_OR_RETURN(auto old, StatLocked(app_id, b.key));
      q.Reset();
      RETURN_IF_ERROR(q.BindAll(app_id, b.key, b.size, b.sha256, b.content_type, b.object).Run());
      if (!old) continue;
      for (const auto& name : ObjectNames(app_id, *old)) {
        if (name != b.object) superseded.push_back(name);
      }
    }
    RETURN_IF_ERROR(txn.Commit());
  }
  // The old versions go only after the index stopped pointing at them. A crash here leaves an
  // object nothing names, removed with the namespace.
  for (const auto& name : superseded) (void)objects_->Remove(name);
  return Status::Ok();
}

std::string IndexedBlobStore::CopySource(const std::string& app_id, const BlobInfo& info) {
  return objects_->CopySource(ObjectNames(app_id, info).front());
}

Result<std::optional<BlobInfo>> IndexedBlobStore::StageCopy(const std::string& app_id,
                                                            const BlobInfo& info,
                                                            const std::string& source) {
  RETURN_IF_ERROR(ValidateBlobKey(info.key));
  if (source.empty()) return std::optional<BlobInfo>();
  ASSIGN_OR_RETURN(
      std::optional<std::string> name,
      objects_->CopyFrom(source, BlobObjectBase(app_id, info.key), info.size, info.sha256));
  if (!name) return std::optional<BlobInfo>();
  BlobInfo staged = info;
  staged.object = *name;
  return std::optional<BlobInfo>(std::move(staged));
}

Result<std::optional<BlobInfo>> IndexedBlobStore::StatLocked(const std::string& app_id,
                                                             const std::string& key) {
  ASSIGN_OR_RETURN(Stmt q, index_->Prepare(std::string("SELECT ") + kColumns +
                                           " FROM blobs WHERE app_id = ? AND key = ?"));
  ASSIGN_OR_RETURN(bool row, q.BindAll(app_id, key).Step());
  if (!row) return std::optional<BlobInfo>();
  return std::optional<BlobInfo>(ReadInfo(q));
}

Result<std::optional<BlobInfo>> IndexedBlobStore::Stat(const std::string& app_id,
                                                       const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  return StatLocked(app_id, key);
}

Result<std::unique_ptr<BlobReader>> IndexedBlobStore::OpenAt(const std::string& app_id,
                                                             const std::string& key, int64_t offset,
                                                             BlobInfo* info) {
  RETURN_IF_ERROR(ValidateBlobKey(key));
  // An overwrite that lands between the lookup and the read removes the object looked up:
  // look again, and read the new version.
  std::string missing;
  for (int attempt = 0; attempt < 8; ++attempt) {
    ASSIGN_OR_RETURN(auto found, Stat(app_id, key));
    if (!found) return NotFound("blob " + key + " not found");
    if (offset < 0 || offset > found->size) {
      return InvalidArgument("offset " + std::to_string(offset) + " is past the blob's end");
    }
    std::vector<std::string> names = ObjectNames(app_id, *found);
    if (names.front() == missing) break;  // the index still names an object that is gone
    for (const auto& name : names) {
      auto reader = objects_->Read(name, offset, found->size);
      if (reader.ok()) {
        if (info) *info = *found;
        return std::move(*reader);
      }
      if (reader.status().code() != StatusCode::kNotFound) return reader.status();
    }
    missing = names.front();
  }
  return Corruption("blob " + key + " is indexed but its content is missing");
}

Status IndexedBlobStore::Delete(const std::string& app_id, const std::string& key) {
  RETURN_IF_ERROR(ValidateBlobKey(key));
  std::optional<BlobInfo> found;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(found, StatLocked(app_id, key));
    if (!found) return NotFound("blob " + key + " not found");
    ASSIGN_OR_RETURN(Stmt q, index_->Prepare("DELETE FROM blobs WHERE app_id = ? AND key = ?"));
    RETURN_IF_ERROR(q.BindAll(app_id, key).Run());
  }
  for (const auto& name : ObjectNames(app_id, *found)) (void)objects_->Remove(name);
  return Status::Ok();
}

Result<std::vector<BlobInfo>> IndexedBlobStore::List(const std::string& app_id,
                                                     const std::string& prefix,
                                                     const std::string& after, int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt q, index_->Prepare(std::string("SELECT ") + kColumns +
                                           " FROM blobs WHERE app_id = ? AND key > ? AND "
                                           "substr(key, 1, ?) = ? ORDER BY key LIMIT ?"));
  q.BindAll(app_id, after, static_cast<int64_t>(prefix.size()), prefix, limit);
  return sqlite::Collect<BlobInfo>(q, ReadInfo);
}

Result<int64_t> IndexedBlobStore::RemoveUnpublished(const std::string& app_id) {
  {
    // Entries of the first layouts name no object: their files cannot be told from strays.
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(Stmt old, index_->Prepare("SELECT 1 FROM blobs WHERE app_id = ? AND "
                                               "object = '' LIMIT 1"));
    ASSIGN_OR_RETURN(bool legacy, old.Bind(1, app_id).Step());
    if (legacy) return int64_t{0};
  }
  int64_t removed = 0;
  std::string after;
  while (true) {
    ASSIGN_OR_RETURN(std::vector<std::string> names, objects_->List(app_id, after, 1000));
    if (names.empty()) return removed;
    for (const auto& name : names) {
      bool named = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        ASSIGN_OR_RETURN(Stmt q, index_->Prepare("SELECT 1 FROM blobs WHERE app_id = ? AND "
                                                 "object = ?"));
        ASSIGN_OR_RETURN(named, q.BindAll(app_id, name).Step());
      }
      if (!named) {
        RETURN_IF_ERROR(objects_->Remove(name));
        ++removed;
      }
    }
    after = names.back();
  }
}

Status IndexedBlobStore::DeleteNamespace(const std::string& app_id, int64_t token) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(sqlite::Txn txn, sqlite::Txn::Begin(index_.get()));
    RETURN_IF_ERROR(sqlite::CheckFenceToken(index_.get(), app_id, token));
    ASSIGN_OR_RETURN(Stmt q, index_->Prepare("DELETE FROM blobs WHERE app_id = ?"));
    RETURN_IF_ERROR(q.Bind(1, app_id).Run());
    RETURN_IF_ERROR(txn.Commit());
  }
  return objects_->RemoveDir(app_id);
}

Result<std::map<std::string, int64_t>> IndexedBlobStore::SizesBytes(
    const std::vector<std::string>& app_ids) {
  std::map<std::string, int64_t> out;
  for (const auto& id : app_ids) out[id] = 0;
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt q, index_->Prepare("SELECT app_id, SUM(size) FROM blobs GROUP BY app_id"));
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    auto it = out.find(q.Text(0));
    if (it != out.end()) it->second = q.Int(1);
  }
  return out;
}

Result<int64_t> IndexedBlobStore::SizeBytes(const std::string& app_id) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt q,
                   index_->Prepare("SELECT COALESCE(SUM(size), 0) FROM blobs WHERE app_id = ?"));
  ASSIGN_OR_RETURN(bool row, q.Bind(1, app_id).Step());
  return row ? q.Int(0) : 0;
}

}  // namespace regionmove
