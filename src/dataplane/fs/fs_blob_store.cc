#include "dataplane/fs/fs_blob_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <vector>

#include "common/hash.h"
#include "common/sync.h"
#include "common/text.h"

namespace regionmove {

namespace fs = std::filesystem;
using sqlite::Stmt;

namespace {

// Reads a blob's file; owns the descriptor.
class FdReader final : public BlobReader {
 public:
  explicit FdReader(int fd) : fd_(fd) {}
  ~FdReader() override { ::close(fd_); }
  Result<size_t> Read(char* buf, size_t n) override {
    while (true) {
      ssize_t got = ::read(fd_, buf, n);
      if (got >= 0) return static_cast<size_t>(got);
      if (errno != EINTR) return Unavailable(std::string("read blob: ") + std::strerror(errno));
    }
  }

 private:
  int fd_;
};

// Streams `content` into a new file at `path`, hashing it on the way, and fsyncs it.
Result<BlobInfo> WriteSynced(const std::string& path, BlobReader& content) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Unavailable("cannot create " + path + ": " + std::strerror(errno));
  auto fail = [&](Status s) {
    ::close(fd);
    ::unlink(path.c_str());
    return s;
  };
  Sha256 hash;
  BlobInfo info;
  std::vector<char> buf(1 << 20);  // memory per blob being written, whatever its size
  while (true) {
    Result<size_t> n = content.Read(buf.data(), buf.size());
    if (!n.ok()) return fail(n.status());
    if (*n == 0) break;
    hash.Update(buf.data(), *n);
    info.size += static_cast<int64_t>(*n);
    for (size_t off = 0; off < *n;) {
      ssize_t w = ::write(fd, buf.data() + off, *n - off);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return fail(Unavailable("write " + path + ": " + std::strerror(errno)));
      off += static_cast<size_t>(w);
    }
  }
  if (::fsync(fd) != 0) return fail(Unavailable("fsync " + path));
  ::close(fd);
  info.sha256 = hash.HexDigest();
  return info;
}

// Removes `.tmp-` files a crash left behind. Only old ones: another process sharing the
// directory may be writing a fresh one right now.
void SweepTempFiles(const std::string& dir) {
  std::error_code ec;
  auto cutoff = fs::file_time_type::clock::now() - std::chrono::minutes(10);
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    if (it->path().filename().string().find(".tmp-") == std::string::npos) continue;
    if (fs::last_write_time(it->path(), ec) < cutoff) fs::remove(it->path(), ec);
  }
}

BlobInfo ReadInfo(const Stmt& q) { return BlobInfo{q.Text(0), q.Int(1), q.Text(2), q.Text(3)}; }

}  // namespace

Result<std::unique_ptr<FsBlobStore>> FsBlobStore::Open(const std::string& dir, Rng* rng) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Permanent("cannot create blob directory " + dir + ": " + ec.message());
  SweepTempFiles(dir);
  ASSIGN_OR_RETURN(auto index, sqlite::Db::Open(dir + "/_index.sqlite3"));
  RETURN_IF_ERROR(index->Exec(
      "CREATE TABLE IF NOT EXISTS blobs (app_id TEXT NOT NULL, key TEXT NOT NULL, size INTEGER "
      "NOT NULL, sha256 TEXT NOT NULL, content_type TEXT NOT NULL, PRIMARY KEY (app_id, key))"));
  return std::unique_ptr<FsBlobStore>(new FsBlobStore(dir, std::move(index), rng));
}

std::string FsBlobStore::PathFor(const std::string& app_id, const std::string& key,
                                 const std::string& sha256) const {
  std::string h = Sha256Hex(key);
  std::string base = dir_ + "/" + app_id + "/" + h.substr(0, 2) + "/" + h;
  // Named by key and content: a new version never overwrites the file the index points to.
  // Files of the first layout (key only) are still read.
  return sha256.empty() ? base : base + "-" + sha256.substr(0, 32);
}

Result<BlobInfo> FsBlobStore::Stage(const std::string& app_id, const std::string& key,
                                    BlobReader& content, const std::string& content_type) {
  RETURN_IF_ERROR(ValidateBlobKey(key));
  const std::string base = PathFor(app_id, key, "");
  const std::string dir = fs::path(base).parent_path().string();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Unavailable("cannot create " + dir + ": " + ec.message());
  // The content is durable under its own name (key and SHA-256) before Publish's index row
  // (the acknowledgement) points at it: every crash leaves the old or the new blob.
  std::string tmp = base + ".tmp-" + std::to_string(rng_->Next());
  ASSIGN_OR_RETURN(BlobInfo info, WriteSynced(tmp, content));
  info.key = key;
  info.content_type = content_type.empty() ? "application/octet-stream" : content_type;
  {
    std::lock_guard<std::mutex> lock(mu_);
    fs::rename(tmp, PathFor(app_id, key, info.sha256), ec);
  }
  if (ec) {
    fs::remove(tmp, ec);
    return Unavailable("rename blob into place: " + ec.message());
  }
  RETURN_IF_ERROR(SyncDir(dir));
  return info;
}

Status FsBlobStore::Publish(const std::string& app_id, const std::vector<BlobInfo>& staged) {
  std::vector<std::string> superseded;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // One index transaction (one fsync) for the whole set.
    ASSIGN_OR_RETURN(sqlite::Txn txn, sqlite::Txn::Begin(index_.get()));
    ASSIGN_OR_RETURN(Stmt q,
                     index_->Prepare("INSERT INTO blobs(app_id, key, size, sha256, content_type) "
                                     "VALUES (?,?,?,?,?) ON CONFLICT(app_id, key) DO UPDATE SET "
                                     "size = excluded.size, sha256 = excluded.sha256, "
                                     "content_type = excluded.content_type"));
    for (const BlobInfo& b : staged) {
      // A Delete of the same key and content since it was staged removed its file.
      std::error_code ec;
      if (!fs::exists(PathFor(app_id, b.key, b.sha256), ec)) {
        return Unavailable("staged blob " + b.key + " is gone; stage it again");
      }
      ASSIGN_OR_RETURN(auto old, StatLocked(app_id, b.key));
      q.Reset();
      RETURN_IF_ERROR(q.BindAll(app_id, b.key, b.size, b.sha256, b.content_type).Run());
      if (old && old->sha256 != b.sha256) {
        superseded.push_back(PathFor(app_id, b.key, old->sha256));
        superseded.push_back(PathFor(app_id, b.key, ""));
      }
    }
    RETURN_IF_ERROR(txn.Commit());
    // The old versions' files go only after the index stopped pointing at them.
    std::error_code ec;
    for (const auto& path : superseded) fs::remove(path, ec);
  }
  return Status::Ok();
}

Result<std::optional<BlobInfo>> FsBlobStore::StatLocked(const std::string& app_id,
                                                        const std::string& key) {
  ASSIGN_OR_RETURN(Stmt q, index_->Prepare("SELECT key, size, sha256, content_type FROM blobs "
                                           "WHERE app_id = ? AND key = ?"));
  ASSIGN_OR_RETURN(bool row, q.BindAll(app_id, key).Step());
  if (!row) return std::optional<BlobInfo>();
  return std::optional<BlobInfo>(ReadInfo(q));
}

Result<std::optional<BlobInfo>> FsBlobStore::Stat(const std::string& app_id,
                                                  const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  return StatLocked(app_id, key);
}

Result<std::unique_ptr<BlobReader>> FsBlobStore::Open(const std::string& app_id,
                                                      const std::string& key, BlobInfo* info) {
  RETURN_IF_ERROR(ValidateBlobKey(key));
  // Open under the lock: a later rename or unlink does not change what this descriptor reads.
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(auto found, StatLocked(app_id, key));
  if (!found) return NotFound("blob " + key + " not found");
  if (info) *info = *found;
  int fd = ::open(PathFor(app_id, key, found->sha256).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fd = ::open(PathFor(app_id, key, "").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Corruption("blob " + key + " is indexed but its file is missing");
  return std::unique_ptr<BlobReader>(new FdReader(fd));
}

Status FsBlobStore::Delete(const std::string& app_id, const std::string& key) {
  RETURN_IF_ERROR(ValidateBlobKey(key));
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(auto found, StatLocked(app_id, key));
  if (!found) return NotFound("blob " + key + " not found");
  ASSIGN_OR_RETURN(Stmt q, index_->Prepare("DELETE FROM blobs WHERE app_id = ? AND key = ?"));
  RETURN_IF_ERROR(q.BindAll(app_id, key).Run());
  std::error_code ec;
  fs::remove(PathFor(app_id, key, found->sha256), ec);
  fs::remove(PathFor(app_id, key, ""), ec);
  return Status::Ok();
}

Result<std::vector<BlobInfo>> FsBlobStore::List(const std::string& app_id,
                                                const std::string& prefix, const std::string& after,
                                                int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt q, index_->Prepare("SELECT key, size, sha256, content_type FROM blobs "
                                           "WHERE app_id = ? AND key > ? AND substr(key, 1, ?) = "
                                           "? ORDER BY key LIMIT ?"));
  q.BindAll(app_id, after, static_cast<int64_t>(prefix.size()), prefix, limit);
  return sqlite::Collect<BlobInfo>(q, ReadInfo);
}

Status FsBlobStore::CreateNamespace(const std::string& app_id) {
  std::error_code ec;
  fs::create_directories(dir_ + "/" + app_id, ec);
  return ec ? Unavailable("create blob namespace: " + ec.message()) : Status::Ok();
}

Status FsBlobStore::DeleteNamespace(const std::string& app_id, int64_t token) {
  std::lock_guard<std::mutex> lock(mu_);
  {
    ASSIGN_OR_RETURN(sqlite::Txn txn, sqlite::Txn::Begin(index_.get()));
    RETURN_IF_ERROR(sqlite::CheckFenceToken(index_.get(), app_id, token));
    ASSIGN_OR_RETURN(Stmt q, index_->Prepare("DELETE FROM blobs WHERE app_id = ?"));
    RETURN_IF_ERROR(q.Bind(1, app_id).Run());
    RETURN_IF_ERROR(txn.Commit());
  }
  std::error_code ec;
  fs::remove_all(dir_ + "/" + app_id, ec);
  return ec ? Unavailable("delete blob namespace: " + ec.message()) : Status::Ok();
}

Result<int64_t> FsBlobStore::SizeBytes(const std::string& app_id) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt q,
                   index_->Prepare("SELECT COALESCE(SUM(size), 0) FROM blobs WHERE app_id = ?"));
  ASSIGN_OR_RETURN(bool row, q.Bind(1, app_id).Step());
  return row ? q.Int(0) : 0;
}

}  // namespace regionmove
