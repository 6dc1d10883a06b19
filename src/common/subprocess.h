#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace regionmove {

// Runs argv[0] (looked up on PATH) with `argv`, without a shell, and waits for it. Its
// standard output goes to `stdout_path` (created or truncated) or, when empty, is captured and
// returned. A non-zero exit is Permanent, naming the program and the end of what it wrote to
// standard error; a program that cannot start is Permanent too.
Result<std::string> RunProgram(const std::vector<std::string>& argv,
                               const std::string& stdout_path = "");

}  // namespace regionmove
