#pragma once

#include <string>

namespace regionmove {

// `regionmove mcp`: an MCP server on stdin/stdout (one JSON-RPC message per line). With
// `server_url` it is a client of that server acting as the token's user; otherwise it runs a
// System in process (with its own workers) from `config_path`, acting as configured `user`.
int RunMcpStdio(const std::string& config_path, const std::string& user,
                const std::string& server_url, const std::string& token);

}  // namespace regionmove
