#pragma once

#include <string>

namespace regionmove {

// `regionmove serve`: the REST API (and MCP endpoint) with saga workers, until SIGINT/SIGTERM.
// `listen` overrides server.listen when not empty.
// With `workers` false the process only answers the API; `regionmove worker` processes on the
// same config run the migrations.
int RunServe(const std::string& config_path, const std::string& listen, bool workers = true);
// `regionmove worker`: saga workers and replication only, no HTTP.
int RunWorker(const std::string& config_path);
// "host:port" -> parts; false when malformed.
bool SplitHostPort(const std::string& listen, std::string* host, int* port);

}  // namespace regionmove
