#pragma once

#include <string>

namespace regionmove {

// `regionmove serve`: the REST API (and MCP endpoint) with saga workers, until SIGINT/SIGTERM.
// `listen` overrides server.listen when not empty.
int RunServe(const std::string& config_path, const std::string& listen);
// `regionmove worker`: saga workers and replication only, no HTTP.
int RunWorker(const std::string& config_path);
// "host:port" -> parts; false when malformed.
bool SplitHostPort(const std::string& listen, std::string* host, int* port);

}  // namespace regionmove
