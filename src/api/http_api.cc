#include "api/http_api.h"

#include <httplib.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <regex>
#include <set>

#include "api/http_util.h"
#include "api/routing.h"
#include "api/views.h"
#include "common/log.h"
#include "common/text.h"

namespace regionmove {

using http::Caller;
using http::Reply;
using http::ReplyError;
using nlohmann::json;
using Req = httplib::Request;
using Res = httplib::Response;

HttpApi::HttpApi(System* system, Metrics* metrics) : sys_(system), metrics_(metrics) {
  HttpLimits limits;
  limits.max_connections = system->config().max_connections;
  limits.header_timeout_ms = system->config().header_timeout_seconds * 1000;
  limits.idle_timeout_ms = system->config().idle_timeout_seconds * 1000;
  server_ = std::make_unique<HttpServer>(limits);
  // Waiting writes hold their connection's thread: at most half the connections wait, and a
  // quarter of them for one app.
  int waiters = std::max(1, limits.max_connections / 2);
  buffer_ = std::make_unique<WriteBuffer>(std::max(1, waiters / 4), waiters);
  // For bench/api_bench.py only: the price of the guard is the difference it makes.
  const char* unguarded = std::getenv("REGIONMOVE_BENCH_UNGUARDED");
  unguarded_ = unguarded && std::string(unguarded) == "1";
  if (unguarded_) {
    Log(LogLevel::kWarn, "guard_disabled",
        {{"why",
          "REGIONMOVE_BENCH_UNGUARDED=1: writes are not checked against moves (benchmarks "
          "only; never in service)"}});
  }
}

HttpApi::~HttpApi() {
  DetachFeed();  // the store's routing listener may outlive this server
  Stop();
}

Result<std::unique_ptr<HttpApi>> HttpApi::Make(System* system, Metrics* metrics) {
  std::unique_ptr<HttpApi> api(new HttpApi(system, metrics));
  api->Register();
  api->RegisterDataRoutes();
  api->RegisterMcp();
  api->RegisterIntegration();
  api->RegisterUi();
  return api;
}

Status HttpApi::Start(const std::string& host, int port) {
  RETURN_IF_ERROR(server_->Listen(host, port));
  port_ = server_->port();
  return Status::Ok();
}

void HttpApi::Stop() { server_->Shutdown(); }

void HttpApi::Wait() { server_->Wait(); }

void HttpApi::Route(const std::string& method, const std::string& pattern, Handler handler,
                    StreamHandler stream) {
  routes_.push_back(BodylessRoute{method, std::regex(pattern), handler});
  if (method == "GET") {
    server_->Get(pattern, std::move(handler));
    return;
  }
  // Bodies are read raw, whatever their Content-Type: httplib would otherwise parse one sent as
  // application/x-www-form-urlencoded (curl's default for -d) and refuse it past 8 KiB.
  std::regex re(pattern);
  int64_t max_body = sys_->config().max_body_bytes;
  int64_t max_blob = sys_->config().max_blob_bytes;
  auto with_body = [handler, stream, re, max_body, max_blob](const httplib::Request& req,
                                                             httplib::Response& res,
                                                             const httplib::ContentReader& reader) {
    // A blob upload streams unless it is small enough to hold: a held body can be replayed
    // after an online move's pause (the write buffer), a streamed one cannot.
    const bool blob = IsBlobUpload(req);
    const std::string length = req.get_header_value("Content-Length");
    const bool held = !length.empty() && length.size() <= 18 &&
                      length.find_first_not_of("0123456789") == std::string::npos &&
                      std::stoll(length) <= kHeldBlobBytes;
    if (stream && blob && !held) {
      httplib::Request copy = req;
      std::regex_match(copy.path, copy.matches, re);
      return stream(copy, res, reader);
    }
    const int64_t limit = blob ? max_blob : max_body;
    std::string body;
    bool too_large = false;
    reader([&](const char* data, size_t n) {
      if (static_cast<int64_t>(body.size() + n) > limit) {
        too_large = true;
        return false;
      }
      body.append(data, n);
      return true;
    });
    if (too_large) {
      res.set_header("Connection", "close");  // the rest of the body was not read
      return http::ReplyError(res, http::PayloadTooLarge(limit));
    }
    httplib::Request copy = req;
    copy.body = std::move(body);
    std::regex_match(copy.path, copy.matches, re);
    handler(copy, res);
  };
  if (method == "POST") server_->Post(pattern, with_body);
  if (method == "PUT") server_->Put(pattern, with_body);
  if (method == "PATCH") server_->Patch(pattern, with_body);
  if (method == "DELETE") server_->Delete(pattern, with_body);
}

std::string HttpApi::AllowedMethods(const std::string& path) const {
  std::set<std::string> methods;
  for (const auto& r : routes_) {
    if (std::regex_match(path, r.pattern)) methods.insert(r.method);
  }
  if (methods.count("GET")) methods.insert("HEAD");
  std::string out;
  for (const auto& m : methods) out += (out.empty() ? "" : ", ") + m;
  return out;
}

bool HttpApi::AwaitUnblock(const std::string& app, const Migration& blocker) {
  int64_t seconds = sys_->config().buffer_writes_seconds;
  if (blocker.strategy != "online" || seconds <= 0) return false;
  MigrationService* ms = sys_->migrations();
  auto outcome =
      buffer_->Wait(app, std::chrono::steady_clock::now() + std::chrono::seconds(seconds), [&] {
        auto b = ms->WriteBlocker(app);
        return !b.ok() || b->has_value();
      });
  const char* label = outcome == WriteBuffer::Outcome::kCleared    ? "outcome=\"served\""
                      : outcome == WriteBuffer::Outcome::kTimedOut ? "outcome=\"timed_out\""
                                                                   : "outcome=\"full\"";
  metrics_->Inc("regionmove_guard_buffered_total", label);
  return outcome == WriteBuffer::Outcome::kCleared;
}

bool HttpApi::DispatchBodyless(const httplib::Request& req, httplib::Response& res) {
  if (req.has_header("Content-Length") || req.has_header("Transfer-Encoding")) return false;
  for (const auto& r : routes_) {
    if (r.method != req.method || r.method == "GET") continue;
    httplib::Request copy = req;
    if (std::regex_match(copy.path, copy.matches, r.pattern)) {
      r.handler(copy, res);
      return true;
    }
  }
  return false;
}

namespace {

// Runs a handler body that yields (status, json) or an error.
template <typename Fn>
void Handle(Res& res, Fn&& fn) {
  Result<std::pair<int, json>> r = fn();
  if (!r.ok()) return ReplyError(res, r.status());
  Reply(res, r->first, r->second);
}

std::pair<int, json> Ok(json body) { return {200, std::move(body)}; }

}  // namespace

void HttpApi::Register() {
  httplib::Server& s = *server_;
  System* sys = sys_;
  MigrationService* ms = sys->migrations();
  Metrics* mx = metrics_;
  int64_t max_body = sys->config().max_body_bytes;
  int64_t max_blob = sys->config().max_blob_bytes;
  // The larger of the two: each route holds its own bodies to their limit.
  s.set_payload_max_length(static_cast<size_t>(std::max(max_body, max_blob)));
  mx->Describe("regionmove_http_requests_total", "counter", "HTTP requests by route and code");
  mx->Describe("regionmove_guard_rejections_total", "counter",
               "writes answered 503 app_migrating by the migration guard");
  mx->Describe("regionmove_guard_buffered_total", "counter",
               "writes held by the guard during an online move's pause, by outcome");
  mx->Describe("regionmove_step_duration_seconds", "histogram", "duration of completed steps");
  mx->Describe("regionmove_bytes_copied_total", "counter", "bytes moved by steps");
  mx->Describe("regionmove_step_retries_total", "counter", "step retries");
  mx->Describe("regionmove_migrations_finished_total", "counter", "migrations by final status");

  // Before authentication and body parsing: well-formed input, the size limit and the
  // migration guard.
  s.set_pre_routing_handler([this, sys, ms, mx, max_body, max_blob](const Req& req, Res& res) {
    auto unread_body = [&] {
      // The body is not read: the connection cannot carry another request.
      if (req.get_header_value("Connection") != "close") res.set_header("Connection", "close");
    };
    if (Status bad = http::CheckRequestText(req); !bad.ok()) {
      unread_body();
      ReplyError(res, bad);
      return httplib::Server::HandlerResponse::Handled;
    }
    if (req.has_header("Content-Length")) {
      std::string len = req.get_header_value("Content-Length");
      if (len.empty() || len.size() > 18 || len.find_first_not_of("0123456789") != len.npos) {
        unread_body();
        ReplyError(res, InvalidArgument("header Content-Length must be a decimal number of bytes"));
        return httplib::Server::HandlerResponse::Handled;
      }
      int64_t limit = IsBlobUpload(req) ? max_blob : max_body;
      if (std::stoll(len) > limit) {
        unread_body();
        ReplyError(res, http::PayloadTooLarge(limit));
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    auto pass = [&] {
      return DispatchBodyless(req, res) ? httplib::Server::HandlerResponse::Handled
                                        : httplib::Server::HandlerResponse::Unhandled;
    };
    if (unguarded_) return pass();
    std::optional<std::string> app = DataWriteTarget(sys, req);
    if (!app) return pass();
    auto blocker = ms->WriteBlocker(*app);
    if (!blocker.ok() || !*blocker) return pass();
    if (AwaitUnblock(*app, **blocker)) return pass();
    mx->Inc("regionmove_guard_rejections_total");
    unread_body();
    http::ReplyAppMigrating(res, ms, *app, *blocker);
    return httplib::Server::HandlerResponse::Handled;
  });

  // Route labels are templates only: a client probing random paths can neither grow /metrics
  // nor put text of its own into it.
  s.set_logger([this, mx](const Req& req, const Res& res) {
    if (res.status >= 500 && res.status != 503) internal_errors_++;
    std::string route = NormalizeRoute(req.path);
    mx->Inc("regionmove_http_requests_total",
            MetricLabel("route", SanitizeUtf8(req.method.substr(0, 16)) + " " + route) + "," +
                MetricLabel("code", std::to_string(res.status)));
    Log(LogLevel::kInfo, "http_request",
        {{"method", SanitizeUtf8(req.method)},
         {"path", SanitizeUtf8(req.path)},
         {"route", route},
         {"status", std::to_string(res.status)},
         {"remote", req.remote_addr}});
  });

  s.set_error_handler([this, max_body](const Req& req, Res& res) {
    if (!res.body.empty()) return;
    if (res.status == 404) {
      std::string allow = AllowedMethods(req.path);
      if (!allow.empty()) {
        res.status = 405;
        res.set_header("Allow", allow);
        http::Reply(res, 405,
                    ErrorJson(Status(StatusCode::kInvalidArgument,
                                     req.method + " is not served here; use " + allow,
                                     "method_not_allowed")));
        return;
      }
    }
    Status st = res.status == 404   ? NotFound("no such route")
                : res.status == 413 ? http::PayloadTooLarge(max_body)
                : res.status == 414
                    ? InvalidArgument("the request URI is too long", "uri_too_long")
                    : InvalidArgument("bad request (" + std::to_string(res.status) + ")");
    http::Reply(res, res.status, ErrorJson(st));
  });

  // Last line of defence: a handler that throws answers 500 without its exception's text (which
  // can carry internal detail or bytes of the request) and the server goes on.
  s.set_exception_handler([](const Req& req, Res& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    Log(LogLevel::kError, "http_exception",
        {{"error", SanitizeUtf8(what)}, {"path", SanitizeUtf8(req.path)}});
    http::Reply(res, 500,
                {{"error", "internal"}, {"message", "internal error; see the server log"}});
  });

  Route("GET", "/healthz", [sys](const Req&, Res& res) {
    Status store = sys->store()->Health();
    if (!store.ok()) {
      return Reply(res, 503,
                   {{"status", "unavailable"},
                    {"control_store",
                     {{"engine", sys->config().control_store_engine},
                      {"status", "unavailable"},
                      {"error", store.message()}}}});
    }
    Reply(res, 200,
          {{"status", "ok"},
           {"control_store", {{"engine", sys->config().control_store_engine}, {"status", "ok"}}}});
  });

  HttpServer* server = server_.get();
  Route("GET", "/metrics", [sys, mx, server](const Req&, Res& res) {
    std::string extra;
    extra += "# HELP regionmove_http_parked_requests long polls waiting without a thread\n";
    extra += "# TYPE regionmove_http_parked_requests gauge\n";
    extra += "regionmove_http_parked_requests " + std::to_string(server->parked_requests()) + "\n";
    auto active = sys->store()->ListActiveMigrations();
    std::map<std::string, int> by;
    if (active.ok()) {
      for (const auto& m : *active) {
        by["status=\"" + std::string(MigrationStatusName(m.status())) + "\",step=\"" +
           std::string(StepName(m.current_step)) + "\""]++;
      }
    }
    extra += "# HELP regionmove_active_migrations active migrations by status and step\n";
    extra += "# TYPE regionmove_active_migrations gauge\n";
    for (const auto& [labels, n] : by) {
      extra += "regionmove_active_migrations{" + labels + "} " + std::to_string(n) + "\n";
    }
    auto replicas = sys->store()->ListRetainedReplicas();
    extra += "# HELP regionmove_source_replicas retained source replicas\n";
    extra += "# TYPE regionmove_source_replicas gauge\n";
    extra +=
        "regionmove_source_replicas " + std::to_string(replicas.ok() ? replicas->size() : 0) + "\n";
    res.set_content(mx->Render(extra), "text/plain; version=0.0.4");
  });

  Route("GET", "/v1/regions", [sys](const Req&, Res& res) {
    json regions = json::array();
    for (const auto& r : sys->config().regions) regions.push_back(RegionJson(r));
    Reply(res, 200, {{"regions", regions}});
  });

  // ---- apps
  Route("POST", "/v1/apps", [sys](const Req& req, Res& res) {
    Handle(res, [&]() -> Result<std::pair<int, json>> {
      ASSIGN_OR_RETURN(Caller c, http::Authenticate(sys->tokens(), req));
      ASSIGN_OR_RETURN(json body, http::ParseJsonBody(req));
      RETURN_IF_ERROR(http::CheckFields(body, {"name", "region", "subdomain"}));
      ASSIGN_OR_RETURN(std::string name, http::StringField(body, "name", true));
      ASSIGN_OR_RETURN(std::string region, http::StringField(body, "region", true));
      ASSIGN_OR_RETURN(std::string sub, http::StringField(body, "subdomain", false));
      ASSIGN_OR_RETURN(App app, sys->apps()->CreateApp(c.user.name, name, region, sub));
      return std::pair<int, json>{201, AppJson(app, sys->apps()->SizeBytes(app))};
    });
  });
  Route("GET", "/v1/apps", [sys](const Req& req, Res& res) {
    Handle(res, [&]() -> Result<std::pair<int, json>> {
      ASSIGN_OR_RETURN(Caller c, http::Authenticate(sys->tokens(), req));
      ASSIGN_OR_RETURN(auto apps, sys->store()->ListApps(c.owner()));
      auto sizes = sys->apps()->SizesBytes(apps);
      json out = json::array();
      for (const auto& a : apps) out.push_back(AppJson(a, sizes[a.id]));
      return Ok({{"apps", out}});
    });
  });
  Route("GET", R"(/v1/apps/([^/]+))", [sys, ms](const Req& req, Res& res) {
    Handle(res, [&]() -> Result<std::pair<int, json>> {
      ASSIGN_OR_RETURN(Caller c, http::Authenticate(sys->tokens(), req));
      ASSIGN_OR_RETURN(App app, ms->OwnedApp(c.owner(), req.matches[1]));
      return Ok(AppJson(app, sys->apps()->SizeBytes(app)));
    });
  });

  // ---- moves and migrations
  auto migration_json = [ms](const Migration& m) { return MigrationView(ms, m); };
  Route("POST", R"(/v1/apps/([^/]+)/move)", [sys, ms](const Req& req, Res& res) {
    Handle(res, [&]() -> Result<std::pair<int, json>> {
      ASSIGN_OR_RETURN(Caller c, http::Authenticate(sys->tokens(), req));
      ASSIGN_OR_RETURN(json body, http::ParseJsonBody(req));
      RETURN_IF_ERROR(http::CheckFields(body, {"dest_region", "strategy", "dry_run"}));
      ASSIGN_OR_RETURN(std::string dest, http::StringField(body, "dest_region", true));
      ASSIGN_OR_RETURN(std::string strategy, http::StringField(body, "strategy", false));
      ASSIGN_OR_RETURN(bool dry_run, http::BoolField(body, "dry_run", false));
      if (dry_run) {
        ASSIGN_OR_RETURN(json plan, ms->PlanMove(c.owner(), req.matches[1], dest, strategy));
        return Ok(plan);
      }
      ASSIGN_OR_RETURN(Migration m, ms->Move(c.owner(), req.matches[1], dest, strategy));
      return std::pair<int, json>{202, {{"migration_id", m.id}, {"status", "queued"}}};
    });
  });
  Route("GET", R"(/v1/apps/([^/]+)/migrations)",
        [sys, ms, migration_json](const Req& req, Res& res) {
          Handle(res, [&]() -> Result<std::pair<int, json>> {
            ASSIGN_OR_RETURN(Caller c, http::Authenticate(sys->tokens(), req));
            ASSIGN_OR_RETURN(auto list, ms->List(c.owner(), req.matches[1]));
            json out = json::array();
            for (const auto& m : list) out.push_back(migration_json(m));
            return Ok({{"migrations", out}});
          });
        });
  Route("GET", R"(/v1/apps/([^/]+)/migrations/active)",
        [sys, ms, migration_json](const Req& req, Res& res) {
          Handle(res, [&]() -> Result<std::pair<int, json>> {
            ASSIGN_OR_RETURN(Caller c, http::Authenticate(sys->tokens(), req));
            ASSIGN_OR_RETURN(auto active, ms->Active(c.owner(), req.matches[1]));
            return Ok({{"migration", active ? migration_json(*active) : json(nullptr)}});
          });
        });
  Route("GET", R"(/v1/apps/([^/]+)/migrations/([^/]+))",
        [sys, ms, migration_json](const Req& req, Res& res) {
          Handle(res, [&]() -> Result<std::pair<int, json>> {
            ASSIGN_OR_RETURN(Caller c, http::Authenticate(sys->tokens(), req));
            ASSIGN_OR_RETURN(Migration m, ms->Get(c.owner(), req.matches[1], req.matches[2]));
            return Ok(migration_json(m));
          });
        });
  Route("GET", R"(/v1/apps/([^/]+)/migrations/([^/]+)/events)",
        [sys, ms](const Req& req, Res& res) {
          Handle(res, [&]() -> Result<std::pair<int, json>> {
            ASSIGN_OR_RETURN(Caller c, http::Authenticate(sys->tokens(), req));
            ASSIGN_OR_RETURN(auto events, ms->Events(c.owner(), req.matches[1], req.matches[2]));
            json out = json::array();
            for (const auto& e : events) out.push_back(EventJson(e));
            return Ok({{"events", out}});
          });
        });
  Route("POST", R"(/v1/apps/([^/]+)/migrations/([^/]+)/abort)",
        [sys, ms](const Req& req, Res& res) {
          Handle(res, [&]() -> Result<std::pair<int, json>> {
            ASSIGN_OR_RETURN(Caller c, http::Authenticate(sys->tokens(), req));
            ASSIGN_OR_RETURN(json body, http::ParseJsonBody(req));
            RETURN_IF_ERROR(http::CheckFields(body, {}));
            ASSIGN_OR_RETURN(Migration m, ms->Abort(c.owner(), req.matches[1], req.matches[2]));
            return std::pair<int, json>{202, {{"migration_id", m.id}, {"status", "aborting"}}};
          });
        });
  Route("POST", R"(/v1/apps/([^/]+)/migrations/([^/]+)/reverse)",
        [sys, ms](const Req& req, Res& res) {
          Handle(res, [&]() -> Result<std::pair<int, json>> {
            ASSIGN_OR_RETURN(Caller c, http::Authenticate(sys->tokens(), req));
            ASSIGN_OR_RETURN(json body, http::ParseJsonBody(req));
            RETURN_IF_ERROR(http::CheckFields(body, {}));
            ASSIGN_OR_RETURN(Migration r, ms->Reverse(c.owner(), req.matches[1], req.matches[2]));
            return std::pair<int, json>{202,
                                        {{"migration_id", r.id},
                                         {"reverse_of", r.reverse_of},
                                         {"path", r.reverse_path},
                                         {"status", "queued"}}};
          });
        });

  // ---- replicas
  Route("GET", "/v1/source-replicas", [sys, ms](const Req& req, Res& res) {
    Handle(res, [&]() -> Result<std::pair<int, json>> {
      ASSIGN_OR_RETURN(Caller c, http::Authenticate(sys->tokens(), req));
      ASSIGN_OR_RETURN(auto replicas, ms->ListReplicas(c.owner()));
      json out = json::array();
      for (const auto& r : replicas) out.push_back(ReplicaJson(r));
      return Ok({{"source_replicas", out}});
    });
  });
  Route("DELETE", R"(/v1/source-replicas/([^/]+))", [sys, ms](const Req& req, Res& res) {
    Handle(res, [&]() -> Result<std::pair<int, json>> {
      ASSIGN_OR_RETURN(Caller c, http::Authenticate(sys->tokens(), req));
      RETURN_IF_ERROR(ms->Teardown(c.owner(), req.matches[1]));
      return Ok({{"migration_id", req.matches[1]}, {"status", kReplicaTornDown}});
    });
  });

  // ---- admin
  auto admin = [sys](const Req& req) { return http::RequireAdmin(sys->tokens(), req); };
  Route("GET", "/v1/admin/migrations/summary", [sys, admin](const Req& req, Res& res) {
    Handle(res, [&]() -> Result<std::pair<int, json>> {
      RETURN_IF_ERROR(admin(req).status());
      ASSIGN_OR_RETURN(auto active, sys->store()->ListActiveMigrations());
      std::map<std::string, std::pair<int, int64_t>> by_step;
      std::map<std::pair<std::string, std::string>, int> by_pair;
      for (const auto& m : active) {
        auto& [count, oldest] = by_step[std::string(StepName(m.current_step))];
        ++count;
        int64_t started = m.step_started_at_ms > 0 ? m.step_started_at_ms : m.initiated_at_ms;
        oldest = oldest == 0 ? started : std::min(oldest, started);
        by_pair[{m.source_region, m.dest_region}]++;
      }
      json steps = json::array(), pairs = json::array();
      for (const auto& [step, v] : by_step) {
        steps.push_back(
            {{"step", step}, {"count", v.first}, {"oldest_started_at", FormatTimeMs(v.second)}});
      }
      for (const auto& [pair, n] : by_pair) {
        pairs.push_back(
            {{"source_region", pair.first}, {"dest_region", pair.second}, {"count", n}});
      }
      ASSIGN_OR_RETURN(auto replicas, sys->store()->ListRetainedReplicas());
      return Ok({{"by_step", steps},
                 {"by_region_pair", pairs},
                 {"active_source_replicas", replicas.size()}});
    });
  });
  Route("GET", "/v1/admin/region-state", [sys, admin](const Req& req, Res& res) {
    Handle(res, [&]() -> Result<std::pair<int, json>> {
      RETURN_IF_ERROR(admin(req).status());
      ASSIGN_OR_RETURN(auto apps, sys->store()->ListApps(""));
      auto sizes = sys->apps()->SizesBytes(apps);
      std::map<std::string, std::pair<int, int64_t>> per;
      for (const auto& a : apps) {
        auto& [n, bytes] = per[a.region];
        ++n;
        bytes += sizes[a.id];
      }
      json regions = json::array(), unknown = json::array();
      for (const auto& r : sys->config().regions) {
        auto it = per.find(r.slug);
        regions.push_back({{"slug", r.slug},
                           {"status", r.status},
                           {"apps", it == per.end() ? 0 : it->second.first},
                           {"bytes", it == per.end() ? 0 : it->second.second},
                           {"max_apps", r.max_apps},
                           {"max_bytes", r.max_bytes}});
      }
      for (const auto& [slug, v] : per) {
        if (!sys->config().FindRegion(slug)) {
          unknown.push_back({{"slug", slug}, {"apps", v.first}, {"bytes", v.second}});
        }
      }
      return Ok({{"regions", regions}, {"unknown_regions", unknown}});
    });
  });
  Route("GET", "/v1/admin/debris", [ms, admin](const Req& req, Res& res) {
    Handle(res, [&]() -> Result<std::pair<int, json>> {
      RETURN_IF_ERROR(admin(req).status());
      ASSIGN_OR_RETURN(auto list, ms->ListDebris(""));
      json out = json::array();
      for (const auto& m : list) {
        json r = json::parse(m.resources, nullptr, false);
        out.push_back(
            {{"migration_id", m.id},
             {"app_id", m.app_id},
             {"region", m.dest_region},
             {"status", MigrationStatusName(m.status())},
             {"debris", r.is_object() ? r.value("debris", json::array()) : json::array()}});
      }
      return Ok({{"debris", out}});
    });
  });
  Route("POST", R"(/v1/admin/migrations/([^/]+)/repair)", [sys, admin](const Req& req, Res& res) {
    Handle(res, [&]() -> Result<std::pair<int, json>> {
      RETURN_IF_ERROR(admin(req).status());
      RETURN_IF_ERROR(sys->store()->RepairMigration(req.matches[1], sys->clock()->NowMs()));
      ASSIGN_OR_RETURN(Migration m, sys->store()->GetMigration(req.matches[1]));
      return std::pair<int, json>{
          202, {{"migration_id", m.id}, {"status", MigrationStatusName(m.status())}}};
    });
  });
}

}  // namespace regionmove
