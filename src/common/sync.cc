#include "common/sync.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace regionmove {

namespace {

Status SyncPath(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return Unavailable("open " + path + " to sync: " + std::strerror(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return Unavailable("fsync " + path + ": " + std::strerror(err));
  return Status::Ok();
}

}  // namespace

Status SyncFile(const std::string& path) { return SyncPath(path, O_RDONLY); }

Status SyncDir(const std::string& dir) { return SyncPath(dir, O_RDONLY | O_DIRECTORY); }

Status DurableRename(const std::string& from, const std::string& to) {
  RETURN_IF_ERROR(SyncFile(from));
  if (std::rename(from.c_str(), to.c_str()) != 0) {
    return Unavailable("rename " + from + " to " + to + ": " + std::strerror(errno));
  }
  std::string dir = std::filesystem::path(to).parent_path().string();
  return SyncDir(dir.empty() ? "." : dir);
}

std::string ScratchPath(const std::string& path) {
  static std::atomic<uint64_t> next{0};
  return path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(next++);
}

Status CreateFileOnce(const std::string& path, std::string_view data, mode_t mode) {
  const std::string tmp = ScratchPath(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return Unavailable("create " + tmp + ": " + std::strerror(errno));
  Status s;
  for (size_t done = 0; done < data.size() && s.ok();) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) s = Unavailable("write " + tmp + ": " + std::strerror(errno));
    if (n > 0) done += static_cast<size_t>(n);
  }
  if (s.ok() && ::fsync(fd) != 0) s = Unavailable("fsync " + tmp + ": " + std::strerror(errno));
  ::close(fd);
  if (s.ok() && ::link(tmp.c_str(), path.c_str()) != 0 && errno != EEXIST) {
    s = Unavailable("link " + tmp + " to " + path + ": " + std::strerror(errno));
  }
  ::unlink(tmp.c_str());
  RETURN_IF_ERROR(s);
  std::string dir = std::filesystem::path(path).parent_path().string();
  return SyncDir(dir.empty() ? "." : dir);
}

}  // namespace regionmove
