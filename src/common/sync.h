#pragma once

#include <string>

#include "common/status.h"

namespace regionmove {

// Durability helpers. A file is durable once its content is fsynced; a name (create, rename,
// unlink) once its directory is fsynced. Unavailable on an I/O error.
Status SyncFile(const std::string& path);
Status SyncDir(const std::string& dir);
// Renames `from` over `to` atomically (readers see the old or the new file, never none) and
// makes both the content and the new name durable.
Status DurableRename(const std::string& from, const std::string& to);

}  // namespace regionmove
