// The two McpBackends: on a System in this process, and on a server's REST API.
#include <httplib.h>

#include "api/mcp/mcp.h"
#include "api/views.h"
#include "service/system.h"

namespace regionmove {

using nlohmann::json;

namespace {

ToolOutcome From(const Result<json>& r) {
  if (!r.ok()) return {true, ErrorJson(r.status())};
  return {false, *r};
}

class LocalBackend final : public McpBackend {
 public:
  LocalBackend(System* sys, std::string owner) : sys_(sys), owner_(std::move(owner)) {}

  ToolOutcome ListRegions() override {
    json regions = json::array();
    for (const auto& r : sys_->config().regions) regions.push_back(RegionJson(r));
    return {false, {{"regions", regions}}};
  }
  ToolOutcome ListApps() override {
    return From([&]() -> Result<json> {
      ASSIGN_OR_RETURN(auto apps, sys_->store()->ListApps(owner_));
      auto sizes = sys_->apps()->SizesBytes(apps);
      json out = json::array();
      for (const auto& a : apps) out.push_back(AppJson(a, sizes[a.id]));
      return json{{"apps", out}};
    }());
  }
  ToolOutcome MoveApp(const std::string& app, const std::string& dest, const std::string& strategy,
                      bool dry_run) override {
    MigrationService* ms = sys_->migrations();
    if (dry_run) return From(ms->PlanMove(owner_, app, dest, strategy));
    return From([&]() -> Result<json> {
      ASSIGN_OR_RETURN(Migration m, ms->Move(owner_, app, dest, strategy));
      return json{{"migration_id", m.id}, {"status", "queued"}};
    }());
  }
  ToolOutcome Status(const std::string& app, const std::string& id) override {
    return From([&]() -> Result<json> {
      ASSIGN_OR_RETURN(Migration m, sys_->migrations()->Get(owner_, app, id));
      return MigrationView(sys_->migrations(), m);
    }());
  }
  ToolOutcome GetActive(const std::string& app) override {
    return From([&]() -> Result<json> {
      ASSIGN_OR_RETURN(auto m, sys_->migrations()->Active(owner_, app));
      return json{{"migration", m ? MigrationView(sys_->migrations(), *m) : json(nullptr)}};
    }());
  }
  ToolOutcome ListMigrations(const std::string& app) override {
    return From([&]() -> Result<json> {
      ASSIGN_OR_RETURN(auto list, sys_->migrations()->List(owner_, app));
      json out = json::array();
      for (const auto& m : list) out.push_back(MigrationView(sys_->migrations(), m));
      return json{{"migrations", out}};
    }());
  }
  ToolOutcome Abort(const std::string& app, const std::string& id) override {
    return From([&]() -> Result<json> {
      ASSIGN_OR_RETURN(Migration m, sys_->migrations()->Abort(owner_, app, id));
      return json{{"migration_id", m.id}, {"status", "aborting"}};
    }());
  }
  ToolOutcome Reverse(const std::string& app, const std::string& id) override {
    return From([&]() -> Result<json> {
      ASSIGN_OR_RETURN(Migration r, sys_->migrations()->Reverse(owner_, app, id));
      return json{{"migration_id", r.id},
                  {"reverse_of", r.reverse_of},
                  {"path", r.reverse_path},
                  {"status", "queued"}};
    }());
  }
  ToolOutcome ListReplicas() override {
    return From([&]() -> Result<json> {
      ASSIGN_OR_RETURN(auto replicas, sys_->migrations()->ListReplicas(owner_));
      json out = json::array();
      for (const auto& r : replicas) out.push_back(ReplicaJson(r));
      return json{{"source_replicas", out}};
    }());
  }
  ToolOutcome Teardown(const std::string& id) override {
    return From([&]() -> Result<json> {
      RETURN_IF_ERROR(sys_->migrations()->Teardown(owner_, id));
      return json{{"migration_id", id}, {"status", kReplicaTornDown}};
    }());
  }

 private:
  System* sys_;
  std::string owner_;
};

class RemoteBackend final : public McpBackend {
 public:
  RemoteBackend(std::string url, std::string token)
      : url_(std::move(url)), token_(std::move(token)) {}

  ToolOutcome ListRegions() override { return Call("GET", "/v1/regions", nullptr); }
  ToolOutcome ListApps() override { return Call("GET", "/v1/apps", nullptr); }
  ToolOutcome MoveApp(const std::string& app, const std::string& dest, const std::string& strategy,
                      bool dry_run) override {
    json body = {{"dest_region", dest}, {"dry_run", dry_run}};
    if (!strategy.empty()) body["strategy"] = strategy;
    return Call("POST", "/v1/apps/" + Seg(app) + "/move", &body);
  }
  ToolOutcome Status(const std::string& app, const std::string& id) override {
    return Call("GET", "/v1/apps/" + Seg(app) + "/migrations/" + Seg(id), nullptr);
  }
  ToolOutcome GetActive(const std::string& app) override {
    return Call("GET", "/v1/apps/" + Seg(app) + "/migrations/active", nullptr);
  }
  ToolOutcome ListMigrations(const std::string& app) override {
    return Call("GET", "/v1/apps/" + Seg(app) + "/migrations", nullptr);
  }
  ToolOutcome Abort(const std::string& app, const std::string& id) override {
    json body = json::object();
    return Call("POST", "/v1/apps/" + Seg(app) + "/migrations/" + Seg(id) + "/abort", &body);
  }
  ToolOutcome Reverse(const std::string& app, const std::string& id) override {
    json body = json::object();
    return Call("POST", "/v1/apps/" + Seg(app) + "/migrations/" + Seg(id) + "/reverse", &body);
  }
  ToolOutcome ListReplicas() override { return Call("GET", "/v1/source-replicas", nullptr); }
  ToolOutcome Teardown(const std::string& id) override {
    return Call("DELETE", "/v1/source-replicas/" + Seg(id), nullptr);
  }

 private:
  // A path segment, percent-encoded so that no argument can change the route.
  static std::string Seg(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
      if (isalnum(c) || c == '-' || c == '_' || c == '.') {
        out += static_cast<char>(c);
      } else {
        char buf[4];
        std::snprintf(buf, sizeof(buf), "%%%02X", c);
        out += buf;
      }
    }
    return out.empty() ? "%20" : out;
  }

  ToolOutcome Call(const std::string& method, const std::string& path, const json* body) {
    httplib::Client c(url_);
    c.set_connection_timeout(5);
    c.set_read_timeout(60);
    c.set_bearer_token_auth(token_);
    httplib::Result r = method == "GET"    ? c.Get(path)
                        : method == "POST" ? c.Post(path, body->dump(), "application/json")
                                           : c.Delete(path);
    if (!r) {
      return {true,
              {{"error", "unavailable"},
               {"message", "cannot reach " + url_ + ": " + httplib::to_string(r.error())}}};
    }
    json parsed = json::parse(r->body, nullptr, false);
    if (parsed.is_discarded()) {
      parsed = {{"error", "bad_response"}, {"message", "HTTP " + std::to_string(r->status)}};
    }
    return {r->status >= 400, parsed};
  }

  std::string url_, token_;
};

}  // namespace

std::unique_ptr<McpBackend> MakeLocalBackend(System* system, std::string owner) {
  return std::make_unique<LocalBackend>(system, std::move(owner));
}

std::unique_ptr<McpBackend> MakeRemoteBackend(const std::string& server_url,
                                              const std::string& token) {
  return std::make_unique<RemoteBackend>(server_url, token);
}

}  // namespace regionmove
