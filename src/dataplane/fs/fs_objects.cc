#include "dataplane/fs/fs_objects.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "common/sync.h"
#include "dataplane/indexed_blob_store.h"

namespace regionmove {

namespace fs = std::filesystem;

namespace {

// Reads an object's file; owns the descriptor (a later unlink does not change what it reads).
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

class FileWriter final : public ObjectWriter {
 public:
  // `root`: "<dir>/"; the object is written to `tmp` and becomes "<base>-<sha256[0:32]>".
  FileWriter(int fd, std::string root, std::string tmp, std::string base)
      : fd_(fd), root_(std::move(root)), tmp_(std::move(tmp)), base_(std::move(base)) {}
  ~FileWriter() override {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }
  Status Write(const char* data, size_t n) override {
    for (size_t off = 0; off < n;) {
      ssize_t w = ::write(fd_, data + off, n - off);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return Unavailable("write " + tmp_ + ": " + std::strerror(errno));
      off += static_cast<size_t>(w);
    }
    return Status::Ok();
  }
  // The content is durable under its own name (key and SHA-256) before an index entry can
  // point at it: every crash leaves the old or the new blob.
  Result<std::string> Commit(const std::string& sha256) override {
    if (::fsync(fd_) != 0) return Unavailable("fsync " + tmp_ + ": " + std::strerror(errno));
    ::close(fd_);
    fd_ = -1;
    std::string name = base_ + "-" + sha256.substr(0, 32);
    if (::rename(tmp_.c_str(), (root_ + name).c_str()) != 0) {
      return Unavailable("rename blob into place: " + std::string(std::strerror(errno)));
    }
    committed_ = true;
    RETURN_IF_ERROR(SyncDir(fs::path(root_ + name).parent_path().string()));
    return name;
  }

 private:
  int fd_;
  std::string root_;
  std::string tmp_;
  std::string base_;
  bool committed_ = false;
};

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

}  // namespace

Result<std::unique_ptr<FsObjects>> FsObjects::Open(const std::string& dir, Rng* rng) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Permanent("cannot create blob directory " + dir + ": " + ec.message());
  SweepTempFiles(dir);
  return std::unique_ptr<FsObjects>(new FsObjects(dir, rng));
}

Result<std::unique_ptr<ObjectWriter>> FsObjects::Create(const std::string& base,
                                                        const std::string& sha256) {
  (void)sha256;  // the name will say it
  std::string path = dir_ + "/" + base;
  std::string parent = fs::path(path).parent_path().string();
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) return Unavailable("cannot create " + parent + ": " + ec.message());
  std::string tmp = path + ".tmp-" + std::to_string(rng_->Next());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Unavailable("cannot create " + tmp + ": " + std::strerror(errno));
  return std::unique_ptr<ObjectWriter>(new FileWriter(fd, dir_ + "/", tmp, base));
}

Result<std::unique_ptr<BlobReader>> FsObjects::Read(const std::string& name, int64_t offset,
                                                    int64_t size) {
  (void)size;
  int fd = ::open((dir_ + "/" + name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) return NotFound("object " + name + " not found");
  if (fd < 0) return Unavailable("open " + name + ": " + std::strerror(errno));
  auto reader = std::make_unique<FdReader>(fd);
  if (offset > 0 && ::lseek(fd, offset, SEEK_SET) != offset) {
    return Unavailable("seek " + name + ": " + std::strerror(errno));
  }
  return std::unique_ptr<BlobReader>(std::move(reader));
}

Result<bool> FsObjects::Exists(const std::string& name) {
  std::error_code ec;
  return fs::exists(dir_ + "/" + name, ec);
}

Status FsObjects::Remove(const std::string& name) {
  std::error_code ec;
  fs::remove(dir_ + "/" + name, ec);
  return ec ? Unavailable("remove " + name + ": " + ec.message()) : Status::Ok();
}

Status FsObjects::RemoveDir(const std::string& dir) {
  std::error_code ec;
  fs::remove_all(dir_ + "/" + dir, ec);
  return ec ? Unavailable("delete blob namespace: " + ec.message()) : Status::Ok();
}

Result<std::vector<std::string>> FsObjects::List(const std::string& dir, const std::string& after,
                                                 int limit) {
  std::vector<std::string> names;
  std::error_code ec;
  const std::string root = dir_ + "/";
  for (auto it = fs::recursive_directory_iterator(root + dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string name = it->path().string().substr(root.size());
    if (name.find(".tmp-") == std::string::npos && name > after) names.push_back(name);
  }
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return Unavailable("list " + dir + ": " + ec.message());
  }
  std::sort(names.begin(), names.end());
  if (names.size() > static_cast<size_t>(limit)) names.resize(static_cast<size_t>(limit));
  return names;
}

Result<std::unique_ptr<BlobStore>> OpenFsBlobStore(const std::string& dir, Rng* rng) {
  ASSIGN_OR_RETURN(auto objects, FsObjects::Open(dir, rng));
  ASSIGN_OR_RETURN(auto store, IndexedBlobStore::Open(std::move(objects), dir + "/_index.sqlite3"));
  return std::unique_ptr<BlobStore>(std::move(store));
}

}  // namespace regionmove
