#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "common/status.h"

namespace regionmove {

// Durability helpers. A file is durable once its content is fsynced; a name (create, rename,
// unlink) once its directory is fsynced. Unavailable on an I/O error.
Status SyncFile(const std::string& path);
Status SyncDir(const std::string& dir);
// Renames `from` over `to` atomically (readers see the old or the new file, never none) and
// makes both the content and the new name durable.
Status DurableRename(const std::string& from, const std::string& to);
// A name beside `path` for a scratch file: unique in this process and across processes.
std::string ScratchPath(const std::string& path);
// Creates the file `path` holding `data`, durably (content and name), unless it exists: it is
// written under a scratch name, fsynced, then linked into place, and link() fails when another
// process got there first, whose file is then kept. Ok in both cases.
Status CreateFileOnce(const std::string& path, std::string_view data, mode_t mode);

}  // namespace regionmove
