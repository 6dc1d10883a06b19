#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/result.h"

namespace regionmove {

class System;

// The answer of one tool operation: the API's JSON body, or its error body.
struct ToolOutcome {
  bool is_error = false;
  nlohmann::json body;
};

// What the five MCP tools do, against some regionmove: in process (LocalBackend) or through a
// server's REST API (RemoteBackend). Bodies have the REST API's shapes. Thread-safe.
class McpBackend {
 public:
  virtual ~McpBackend() = default;
  virtual ToolOutcome ListRegions() = 0;
  virtual ToolOutcome ListApps() = 0;
  virtual ToolOutcome MoveApp(const std::string& app_id, const std::string& dest_region,
                              const std::string& strategy, bool dry_run) = 0;
  virtual ToolOutcome Status(const std::string& app_id, const std::string& migration_id) = 0;
  virtual ToolOutcome GetActive(const std::string& app_id) = 0;
  virtual ToolOutcome ListMigrations(const std::string& app_id) = 0;
  virtual ToolOutcome Abort(const std::string& app_id, const std::string& migration_id) = 0;
  virtual ToolOutcome Reverse(const std::string& app_id, const std::string& migration_id) = 0;
  virtual ToolOutcome ListReplicas() = 0;
  virtual ToolOutcome Teardown(const std::string& migration_id) = 0;
};

// The backend on a System in this process, acting as `owner` ("" for an admin).
std::unique_ptr<McpBackend> MakeLocalBackend(System* system, std::string owner);
// The backend on a running server, acting as the token's user.
std::unique_ptr<McpBackend> MakeRemoteBackend(const std::string& server_url,
                                              const std::string& token);

// Protocol versions this server speaks, newest first.
const std::vector<std::string>& McpProtocolVersions();

// One MCP session: the JSON-RPC 2.0 layer, the lifecycle (initialize, initialized, ping) and
// the tools. Transport-free: Handle() takes one message and returns the response to send, if
// any. Never throws; malformed input gets a JSON-RPC error. Not thread-safe: one per session.
class McpSession {
 public:
  explicit McpSession(McpBackend* backend) : backend_(backend) {}

  // nullopt for notifications (and for responses sent by the client).
  std::optional<nlohmann::json> Handle(const std::string& message);
  std::optional<nlohmann::json> HandleJson(const nlohmann::json& message);

  bool initialized() const { return initialized_; }
  const std::string& protocol_version() const { return protocol_version_; }
  // True when `message` (already parsed) is an initialize request.
  static bool IsInitialize(const nlohmann::json& message);

 private:
  nlohmann::json Dispatch(const std::string& method, const nlohmann::json& params,
                          const nlohmann::json& id);
  nlohmann::json CallTool(const nlohmann::json& params, const nlohmann::json& id);

  McpBackend* backend_;
  bool initialized_ = false;
  std::string protocol_version_;
};

// The tools/list result (names, titles, descriptions, input schemas, annotations).
nlohmann::json McpToolList();

}  // namespace regionmove
