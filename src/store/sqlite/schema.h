#pragma once

#include <string_view>
#include <vector>

namespace regionmove {

// Versioned schema of the control store. Entry i brings the schema from version i to i + 1;
// entries are append-only once released. The SQL is portable between SQLite and PostgreSQL
// except where noted, so both engines share it.
const std::vector<std::string_view>& ControlStoreSchemaSteps();

}  // namespace regionmove
