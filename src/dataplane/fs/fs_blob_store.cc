#include "dataplane/fs/fs_blob_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include "common/hash.h"
#include "common/sync.h"
#include "common/text.h"

namespace regionmove {

namespace fs = std::filesystem;
using sqlite::Stmt;

Status ValidateBlobKey(std::string_view key) {
  auto bad = [](const std::string& why) { return InvalidArgument(why, "invalid_key"); };
  if (key.empty()) return bad("blob key is empty");
  if (key.size() > 1024) return bad("blob key is longer than 1024 bytes");
  if (key.find('\0') != std::string_view::npos) return bad("blob key contains a NUL byte");
  if (!IsValidUtf8(key)) return bad("blob key is not valid UTF-8");
  for (char c : key) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return bad("blob key contains a control character");
    }
  }
  if (key.front() == '/') return bad("blob key is an absolute path");
  size_t start = 0;
  while (start <= key.size()) {
    size_t end = key.find('/', start);
    if (end == std::string_view::npos) end = key.size();
    if (key.substr(start, end - start) == "..") return bad("blob key has a '..' segment");
    start = end + 1;
  }
  return Status::Ok();
}

namespace {

Status WriteFileSynced(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Unavailable("cannot create " + path + ": " + std::strerror(errno));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return Unavailable("write " + path + ": " + std::strerror(errno));
    }
    off += static_cast<size_t>(n);
  }
  bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok ? Status::Ok() : Unavailable("fsync " + path);
}

Result<std::string> ReadFd(int fd) {
  std::string out;
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Unavailable(std::string("read blob: ") + std::strerror(errno));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
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

Result<BlobInfo> FsBlobStore::Put(const std::string& app_id, const std::string& key,
                                  const std::string& data, const std::string& content_type) {
  RETURN_IF_ERROR(ValidateBlobKey(key));
  BlobInfo info{key, static_cast<int64_t>(data.size()), Sha256Hex(data),
                content_type.empty() ? "application/octet-stream" : content_type};
  std::string path = PathFor(app_id, key, info.sha256);
  std::string dir = fs::path(path).parent_path().string();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Unavailable("cannot create " + path + ": " + ec.message());
  std::string tmp = path + ".tmp-" + std::to_string(rng_->Next());
  RETURN_IF_ERROR(WriteFileSynced(tmp, data));
  // The order makes every crash leave the old or the new blob, never a mix: the content is
  // durable under its own name before the index row (the acknowledgement) points at it, and
  // the old version's file goes only after that.
  std::lock_guard<std::mutex> lock(mu_);
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return Unavailable("rename blob into place: " + ec.message());
  }
  RETURN_IF_ERROR(SyncDir(dir));
  ASSIGN_OR_RETURN(auto old, StatLocked(app_id, key));
  ASSIGN_OR_RETURN(Stmt q,
                   index_->Prepare("INSERT INTO blobs(app_id, key, size, sha256, content_type) "
                                   "VALUES (?,?,?,?,?) ON CONFLICT(app_id, key) DO UPDATE SET "
                                   "size = excluded.size, sha256 = excluded.sha256, "
                                   "content_type = excluded.content_type"));
  RETURN_IF_ERROR(q.BindAll(app_id, key, info.size, info.sha256, info.content_type).Run());
  if (old && old->sha256 != info.sha256) {
    fs::remove(PathFor(app_id, key, old->sha256), ec);
    fs::remove(PathFor(app_id, key, ""), ec);
  }
  return info;
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

Result<std::string> FsBlobStore::Get(const std::string& app_id, const std::string& key,
                                     BlobInfo* info) {
  RETURN_IF_ERROR(ValidateBlobKey(key));
  int fd = -1;
  {
    // Open under the lock: a later rename does not change what this descriptor reads.
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(auto found, StatLocked(app_id, key));
    if (!found) return NotFound("blob " + key + " not found");
    if (info) *info = *found;
    fd = ::open(PathFor(app_id, key, found->sha256).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fd = ::open(PathFor(app_id, key, "").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Corruption("blob " + key + " is indexed but its file is missing");
  }
  auto data = ReadFd(fd);
  ::close(fd);
  return data;
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
