#include "common/sync.h"

#include <fcntl.h>
#include <unistd.h>

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

}  // namespace regionmove
