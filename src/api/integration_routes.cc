// SPEC §7 "Integration": the routing feed (GET /v1/routing, long-polled without a thread per
// waiting client) and the admin view of webhook deliveries.
#include <httplib.h>

#include <limits>
#include <map>
#include <mutex>

#include "api/http_api.h"
#include "api/http_util.h"
#include "api/views.h"
#include "common/clock.h"

namespace regionmove {

using nlohmann::json;
using Req = httplib::Request;
using Res = httplib::Response;

// The feed's version and body, shared by every client: the version is read from the store at
// most every fresh_ms_ (however many clients wait), the body rendered once per version.
class RoutingFeed {
 public:
  // PostgreSQL notifies every process of each change (Changed()), so its reads are a fallback
  // for a lost notification; SQLite hears only of this process's changes, so other processes'
  // (workers sharing the file) are found by reading often.
  explicit RoutingFeed(System* sys)
      : sys_(sys), fresh_ms_(sys->config().control_store_engine == "postgres" ? 1000 : 8) {}

  // The routing version, at most fresh_ms_ old (fresh when `exact`).
  Result<int64_t> Version(bool exact) {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t now = HttpServer::SteadyNowMs();
    if (exact || version_ == 0 || now - read_at_ >= fresh_ms_) {
      ASSIGN_OR_RETURN(version_, sys_->store()->RoutingVersion());
      read_at_ = now;
    }
    return version_;
  }

  // A change committed: forgets the version read last and asks the parked polls again.
  void Changed() {
    std::lock_guard<std::mutex> lock(mu_);
    read_at_ = 0;
    version_ = 0;
    if (server_) server_->WakeParked();
  }
  void Attach(HttpServer* server) {
    std::lock_guard<std::mutex> lock(mu_);
    server_ = server;
  }

  // The current table as the feed's JSON, with its version.
  Result<std::pair<int64_t, std::shared_ptr<const std::string>>> Body() {
    ASSIGN_OR_RETURN(int64_t v, Version(false));
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (body_ && body_version_ >= v) return std::make_pair(body_version_, body_);
    }
    std::lock_guard<std::mutex> render(render_mu_);  // one render at a time
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (body_ && body_version_ >= v) return std::make_pair(body_version_, body_);
    }
    ASSIGN_OR_RETURN(RoutingTable t, sys_->store()->GetRoutingTable());
    auto body = std::make_shared<const std::string>(Render(t).dump());
    std::lock_guard<std::mutex> lock(mu_);
    if (!body_ || t.version > body_version_) {
      body_ = body;
      body_version_ = t.version;
    }
    return std::make_pair(body_version_, body_);
  }

 private:
  json Render(const RoutingTable& t) {
    const Config& cfg = sys_->config();
    std::map<std::string, std::vector<const Route*>> hosts;
    for (const auto& r : t.routes) hosts[r.app_id].push_back(&r);
    json apps = json::array();
    for (const auto& a : t.apps) {
      json names = json::array();
      for (const Route* r : hosts[a.id]) {
        names.push_back(r->custom ? r->host : r->host + "." + cfg.apps_domain);
      }
      const RegionConfig* region = cfg.FindRegion(a.region);
      bool blocked = std::find(t.writes_blocked.begin(), t.writes_blocked.end(), a.id) !=
                     t.writes_blocked.end();
      json entry = {{"app_id", a.id},
                    {"hosts", names},
                    {"region", a.region},
                    {"upstream", region ? region->upstream : ""},
                    {"writes_blocked", blocked}};
      if (blocked) {
        int64_t retry = 5;
        if (auto m = sys_->store()->GetActiveMigration(a.id); m.ok() && m->has_value()) {
          retry = sys_->migrations()->RetryAfterSeconds(**m);
        }
        entry["retry_after_seconds"] = retry;
      }
      apps.push_back(std::move(entry));
    }
    return {{"version", t.version}, {"apps_domain", cfg.apps_domain}, {"apps", apps}};
  }

  System* sys_;
  const int64_t fresh_ms_;
  HttpServer* server_ = nullptr;  // whose parked polls Changed() wakes; null once it is gone
  std::mutex mu_, render_mu_;
  int64_t version_ = 0, read_at_ = 0;
  std::shared_ptr<const std::string> body_;
  int64_t body_version_ = 0;
};

namespace {

std::string Etag(int64_t v) { return "\"" + std::to_string(v) + "\""; }

// A whole HTTP/1.1 response, for a parked request (written by the connection layer).
std::string RawResponse(int status, const char* reason, int64_t version, const std::string& body) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason +
                    "\r\nETag: " + Etag(version) + "\r\nCache-Control: no-cache\r\n";
  if (status != 304) {
    out +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  return out + "\r\n" + (status == 304 ? "" : body);
}

std::string RawUnavailable(const Status& s) {
  std::string body = ErrorJson(s).dump();
  return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: "
         "1\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace

void HttpApi::DetachFeed() {
  if (feed_) feed_->Attach(nullptr);
}

void HttpApi::RegisterIntegration() {
  System* sys = sys_;
  HttpServer* server = server_.get();
  feed_ = std::make_shared<RoutingFeed>(sys);
  std::shared_ptr<RoutingFeed> feed = feed_;
  // Parked polls are asked again the moment a change commits, not at their next tick. (The
  // listener keeps the feed alive; ~HttpApi detaches the server from it.)
  feed->Attach(server);
  sys->store()->SetRoutingListener([feed] { feed->Changed(); });

  // Admins, and users the config gives role = "edge".
  auto edge = [sys](const Req& req) -> Status {
    ASSIGN_OR_RETURN(http::Caller c, http::Authenticate(sys->tokens(), req));
    if (c.user.admin) return Status::Ok();
    for (const auto& u : sys->config().users) {
      if (u.name == c.user.name && u.role == "edge") return Status::Ok();
    }
    return http::Forbidden("the routing feed needs an admin token or a user with role \"edge\"");
  };

  Route("GET", "/v1/routing", [feed, server, edge](const Req& req, Res& res) {
    Status s = edge(req);
    if (s.ok()) s = http::CheckRequestText(req);
    auto since = http::Int64Param(req, "since", -1, std::numeric_limits<int64_t>::max());
    auto wait = http::IntParam(req, "wait", 0, 60);
    if (s.ok() && !since.ok()) s = since.status();
    if (s.ok() && !wait.ok()) s = wait.status();
    if (s.ok() && *wait > 0 && *since < 0) s = InvalidArgument("wait needs since=VERSION");
    if (!s.ok()) return http::ReplyError(res, s);
    auto version = feed->Version(true);
    if (!version.ok()) return http::ReplyError(res, version.status());
    auto not_modified = [&](int64_t v) {
      res.status = 304;
      res.set_header("ETag", Etag(v));
      res.set_header("Cache-Control", "no-cache");
    };
    if (*since >= 0 && *version <= *since) {
      // HEAD is answered at once (a parked answer would carry a body).
      if (*wait == 0 || req.method == "HEAD") return not_modified(*version);
      int64_t after = *since;
      ParkedRequest p;
      p.deadline_ms = HttpServer::SteadyNowMs() + *wait * 1000;
      p.answer = [feed, after](bool timed_out) -> std::optional<std::string> {
        auto v = feed->Version(false);
        if (!v.ok()) return RawUnavailable(v.status());
        if (*v <= after) {
          if (!timed_out) return std::nullopt;
          return RawResponse(304, "Not Modified", *v, "");
        }
        auto body = feed->Body();
        if (!body.ok()) return RawUnavailable(body.status());
        return RawResponse(200, "OK", body->first, *body->second);
      };
      if (server->Park(std::move(p))) return;
      res.set_header("Retry-After", "1");
      return http::ReplyError(
          res, Status(StatusCode::kUnavailable, "too many clients wait for routing changes; retry",
                      "too_many_waiting"));
    }
    if (req.get_header_value("If-None-Match") == Etag(*version)) return not_modified(*version);
    auto body = feed->Body();
    if (!body.ok()) return http::ReplyError(res, body.status());
    res.status = 200;
    res.set_header("ETag", Etag(body->first));
    res.set_header("Cache-Control", "no-cache");
    res.set_content(*body->second, "application/json");
  });

  Route("GET", "/v1/admin/webhooks/deliveries", [sys](const Req& req, Res& res) {
    if (auto c = http::RequireAdmin(sys->tokens(), req); !c.ok()) {
      return http::ReplyError(res, c.status());
    }
    std::string status = req.get_param_value("status");
    if (!status.empty() && status != kDeliveryPending && status != kDeliveryDelivered &&
        status != kDeliveryFailed) {
      return http::ReplyError(
          res, InvalidArgument("status must be pending, delivered or failed", "invalid_request"));
    }
    auto limit = http::IntParam(req, "limit", 100, 1000);
    if (!limit.ok()) return http::ReplyError(res, limit.status());
    auto list = sys->store()->ListWebhookDeliveries(status, *limit);
    if (!list.ok()) return http::ReplyError(res, list.status());
    json out = json::array();
    for (const auto& d : *list) {
      out.push_back({{"webhook", d.webhook},
                     {"event_id", d.event.id},
                     {"type", d.event.type},
                     {"app_id", d.event.app_id},
                     {"migration_id", d.event.migration_id},
                     {"created_at", FormatTimeMs(d.event.created_at_ms)},
                     {"status", d.status},
                     {"attempts", d.attempts},
                     {"next_attempt_at", d.status == kDeliveryPending
                                             ? json(FormatTimeMs(d.next_attempt_at_ms))
                                             : json(nullptr)},
                     {"last_code", d.last_code},
                     {"last_error", d.last_error},
                     {"updated_at", FormatTimeMs(d.updated_at_ms)}});
    }
    http::Reply(res, 200, {{"deliveries", out}});
  });
}

}  // namespace regionmove
