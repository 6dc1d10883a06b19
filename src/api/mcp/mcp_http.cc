// MCP over Streamable HTTP (POST /mcp with JSON responses), on the REST server.
#include <httplib.h>

#include <map>
#include <mutex>

#include "api/http_api.h"
#include "api/http_util.h"
#include "api/mcp/mcp.h"
#include "common/ids.h"
#include "common/json_limits.h"

namespace regionmove {

using nlohmann::json;

struct HttpApi::McpSessions {
  struct Entry {
    std::string user;
    std::unique_ptr<McpBackend> backend;
    std::unique_ptr<McpSession> session;
    std::mutex mu;
    uint64_t serial = 0;  // creation order
  };
  // Sessions per user: a user's oldest session makes room for its newest, so no user can
  // evict another's. The table as a whole is bounded by users x kMaxPerUser.
  static constexpr size_t kMaxPerUser = 64;
  std::mutex mu;
  std::map<std::string, std::shared_ptr<Entry>> by_id;
  uint64_t next_serial = 0;
  Rng rng = Rng::FromEntropy();
};

namespace {

void ReplyRpcError(httplib::Response& res, int http_status, int code, const std::string& message) {
  http::Reply(
      res, http_status,
      {{"jsonrpc", "2.0"}, {"id", nullptr}, {"error", {{"code", code}, {"message", message}}}});
}

}  // namespace

void HttpApi::RegisterMcp() {
  mcp_ = std::make_shared<McpSessions>();
  auto sessions = mcp_;
  System* sys = sys_;

  Route("POST", "/mcp", [sys, sessions](const httplib::Request& req, httplib::Response& res) {
    auto caller = http::Authenticate(sys->tokens(), req);
    if (!caller.ok()) {
      res.set_header("WWW-Authenticate", "Bearer");
      return http::ReplyError(res, caller.status());
    }
    std::string version = req.get_header_value("MCP-Protocol-Version");
    const auto& versions = McpProtocolVersions();
    if (!version.empty() &&
        std::find(versions.begin(), versions.end(), version) == versions.end()) {
      return ReplyRpcError(res, 400, -32600,
                           "Bad Request: unsupported MCP-Protocol-Version " + version);
    }
    if (!JsonDepthWithin(req.body)) {
      return ReplyRpcError(res, 400, -32700, "Parse error: JSON nested too deep");
    }
    json message = json::parse(req.body, nullptr, false);
    if (message.is_discarded()) return ReplyRpcError(res, 400, -32700, "Parse error: not JSON");

    std::shared_ptr<McpSessions::Entry> entry;
    if (McpSession::IsInitialize(message)) {
      entry = std::make_shared<McpSessions::Entry>();
      entry->user = caller->user.name;
      entry->backend = MakeLocalBackend(sys, caller->owner());
      entry->session = std::make_unique<McpSession>(entry->backend.get());
      std::lock_guard<std::mutex> lock(sessions->mu);
      size_t mine = 0;
      auto oldest = sessions->by_id.end();
      for (auto it = sessions->by_id.begin(); it != sessions->by_id.end(); ++it) {
        if (it->second->user != entry->user) continue;
        ++mine;
        if (oldest == sessions->by_id.end() || it->second->serial < oldest->second->serial) {
          oldest = it;
        }
      }
      if (mine >= McpSessions::kMaxPerUser) sessions->by_id.erase(oldest);
      entry->serial = sessions->next_serial++;
      std::string id = NewUuidV4(sessions->rng);
      sessions->by_id[id] = entry;
      res.set_header("Mcp-Session-Id", id);
    } else {
      std::string id = req.get_header_value("Mcp-Session-Id");
      if (id.empty()) {
        return ReplyRpcError(res, 400, -32600,
                             "Bad Request: Mcp-Session-Id header is required (initialize first)");
      }
      std::lock_guard<std::mutex> lock(sessions->mu);
      auto it = sessions->by_id.find(id);
      if (it == sessions->by_id.end() || it->second->user != caller->user.name) {
        return ReplyRpcError(res, 404, -32001,
                             "Session not found: initialize a new session. MCP sessions live in "
                             "the API server that created them; behind a load balancer, "
                             "route each session to one server (Mcp-Session-Id)");
      }
      entry = it->second;
    }
    std::optional<json> reply;
    {
      std::lock_guard<std::mutex> lock(entry->mu);
      reply = entry->session->HandleJson(message);
    }
    if (!reply) {
      res.status = 202;
      return;
    }
    http::Reply(res, 200, *reply);
  });

  Route("GET", "/mcp", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Allow", "POST, DELETE");
    http::Reply(res, 405,
                {{"error", "method_not_allowed"},
                 {"message", "this server answers with JSON; there is no SSE stream"}});
  });

  Route("DELETE", "/mcp", [sys, sessions](const httplib::Request& req, httplib::Response& res) {
    auto caller = http::Authenticate(sys->tokens(), req);
    if (!caller.ok()) return http::ReplyError(res, caller.status());
    std::lock_guard<std::mutex> lock(sessions->mu);
    auto it = sessions->by_id.find(req.get_header_value("Mcp-Session-Id"));
    if (it == sessions->by_id.end() || it->second->user != caller->user.name) {
      return http::ReplyError(res, NotFound("session not found"));
    }
    sessions->by_id.erase(it);
    res.status = 204;
  });
}

}  // namespace regionmove
