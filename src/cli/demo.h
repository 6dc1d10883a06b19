#pragma once

#include <string>

namespace regionmove {

// `regionmove demo`: the main job on the embedded default, in one process. Creates an app with
// tables, rows, blobs and a runtime; moves it with live progress; writes to it and shows the
// write reach the retained replica; reverses it (fast path); moves it again; tears the replica
// down; prints a summary. Returns the process exit code.
int RunDemo(const std::string& config_path, int rows, int blob_mib);

}  // namespace regionmove
