// SPEC §7 "Integration": the routing feed (GET /v1/routing, long-polled without a thread per
// waiting client), the event stream of the outbox (GET /v1/events, long-polled the same way)
// and the admin view of webhook deliveries.
#include <httplib.h>

#include <limits>
#include <map>
#include <mutex>
#include <set>

#include "api/http_api.h"
#include "api/http_util.h"
#include "api/views.h"
#include "common/clock.h"
#include "service/webhooks.h"

namespace regionmove {

using nlohmann::json;
using Req = httplib::Request;
using Res = httplib::Response;

// A counter of the store that many waiting clients ask for (the routing version, the outbox's
// end), read from the store at most every fresh_ms_ however many ask. PostgreSQL notifies every
// process of each change (Forget()), so its reads are a fallback for a lost notification;
// SQLite hears only of this process's changes, so other processes' (workers sharing the file)
// are found by reading often.
class StoreCounter {
 public:
  StoreCounter(std::function<Result<int64_t>()> read, int64_t fresh_ms)
      : read_(std::move(read)), fresh_ms_(fresh_ms) {}

  // The counter, at most fresh_ms_ old (fresh when `exact`).
  Result<int64_t> Get(bool exact) {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t now = HttpServer::SteadyNowMs();
    if (exact || !known_ || now - read_at_ >= fresh_ms_) {
      ASSIGN_OR_RETURN(value_, read_());
      read_at_ = now;
      known_ = true;
    }
    return value_;
  }
  // A change committed: the next Get reads the store.
  void Forget() {
    std::lock_guard<std::mutex> lock(mu_);
    known_ = false;
  }

 private:
  const std::function<Result<int64_t>()> read_;
  const int64_t fresh_ms_;
  std::mutex mu_;
  bool known_ = false;
  int64_t value_ = 0, read_at_ = 0;
};

namespace {
bool OnPostgres(System* sys) { return sys->config().control_store_engine == "postgres"; }
}  // namespace

// The routing feed's version and body, shared by every client: the body rendered once per
// version. Also the hub of the store's change notifications: it wakes every parked request of
// the server (routing polls and event polls alike) when a change commits.
class RoutingFeed {
 public:
  explicit RoutingFeed(System* sys)
      : sys_(sys),
        version_([sys] { return sys->store()->RoutingVersion(); }, OnPostgres(sys) ? 1000 : 8),
        outbox_end_([sys] { return sys->store()->OutboxEnd(); }, OnPostgres(sys) ? 1000 : 100) {}

  // The routing version, at most a few milliseconds old (fresh when `exact`).
  Result<int64_t> Version(bool exact) { return version_.Get(exact); }
  // The outbox's last sequence number, at most 100 ms old (a second on PostgreSQL, whose
  // notifications make it fresh at once).
  Result<int64_t> OutboxEnd(bool exact) { return outbox_end_.Get(exact); }

  // A change committed: forgets the counters read last and asks the parked requests again.
  void Changed() {
    version_.Forget();
    outbox_end_.Forget();
    std::lock_guard<std::mutex> lock(mu_);
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
  StoreCounter version_, outbox_end_;
  HttpServer* server_ = nullptr;  // whose parked polls Changed() wakes; null once it is gone
  std::mutex mu_, render_mu_;
  std::shared_ptr<const std::string> body_;
  int64_t body_version_ = 0;
};

namespace {

std::string Etag(int64_t v) { return "\"" + std::to_string(v) + "\""; }

// A whole HTTP/1.1 response, for a parked request (written by the connection layer);
// `headers` are whole lines, each ending in CRLF.
std::string RawResponse(int status, const char* reason, const std::string& headers,
                        const std::string& body) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n" + headers;
  if (status != 304) {
    out +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  return out + "\r\n" + (status == 304 ? "" : body);
}

std::string FeedHeaders(int64_t version) {
  return "ETag: " + Etag(version) + "\r\nCache-Control: no-cache\r\n";
}

// One page of GET /v1/events: the outbox entries after `after` that `owner` may see (all when
// it is empty: an admin), of app `app` only when it is given; `next` is where the next page
// starts (past entries the caller may not see, too).
struct EventsPage {
  json events = json::array();
  int64_t next = 0;
};

Result<EventsPage> ReadEvents(System* sys, const std::string& owner, const std::string& app,
                              int64_t after) {
  constexpr int kPage = 100;
  ASSIGN_OR_RETURN(auto entries, sys->store()->ListOutbox(after, kPage));
  EventsPage page;
  page.next = after;
  std::set<std::string> visible;
  if (app.empty() && !owner.empty() && !entries.empty()) {
    ASSIGN_OR_RETURN(auto apps, sys->store()->ListApps(owner));
    for (const auto& a : apps) visible.insert(a.id);
  }
  for (const auto& e : entries) {
    page.next = e.seq;
    bool shown = !app.empty() ? e.app_id == app : owner.empty() || visible.count(e.app_id) > 0;
    if (!shown) continue;
    json j = WebhookDispatcher::Payload(e);
    j["seq"] = e.seq;
    page.events.push_back(std::move(j));
  }
  return page;
}

json EventsJson(const EventsPage& page) { return {{"events", page.events}, {"next", page.next}}; }

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
  sys->store()->SetChangeListener([feed] { feed->Changed(); });

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
          return RawResponse(304, "Not Modified", FeedHeaders(*v), "");
        }
        auto body = feed->Body();
        if (!body.ok()) return RawUnavailable(body.status());
        return RawResponse(200, "OK", FeedHeaders(body->first), *body->second);
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

  // The change stream of the dashboard (and of any client): what the outbox says, as the
  // caller may see it, long-polled like the routing feed (parked, no thread per client).
  Route("GET", "/v1/events", [sys, feed, server](const Req& req, Res& res) {
    auto caller = http::Authenticate(sys->tokens(), req);
    if (!caller.ok()) return http::ReplyError(res, caller.status());
    const std::string owner = caller->owner();
    auto after = http::Int64Param(req, "after", -1, std::numeric_limits<int64_t>::max());
    auto wait = http::IntParam(req, "wait", 0, 60);
    Status s = !after.ok() ? after.status() : !wait.ok() ? wait.status() : Status::Ok();
    const std::string app = req.get_param_value("app");
    if (s.ok() && !app.empty()) s = sys->migrations()->OwnedApp(owner, app).status();
    if (!s.ok()) return http::ReplyError(res, s);
    res.set_header("Cache-Control", "no-store");
    if (*after < 0) {  // where the stream is now: a client starts from here
      auto end = feed->OutboxEnd(true);
      if (!end.ok()) return http::ReplyError(res, end.status());
      return http::Reply(res, 200, {{"events", json::array()}, {"next", *end}});
    }
    auto page = ReadEvents(sys, owner, app, *after);
    if (!page.ok()) return http::ReplyError(res, page.status());
    if (!page->events.empty() || *wait == 0 || req.method == "HEAD") {
      return http::Reply(res, 200, EventsJson(*page));
    }
    ParkedRequest p;
    p.deadline_ms = HttpServer::SteadyNowMs() + *wait * 1000;
    // This process's changes wake it at once; other processes' (SQLite) are looked for 4 times
    // a second: a dashboard needs no more.
    p.recheck_ms = 250;
    p.answer = [sys, feed, owner, app,
                cursor = page->next](bool timed_out) mutable -> std::optional<std::string> {
      auto end = feed->OutboxEnd(false);
      if (!end.ok()) return RawUnavailable(end.status());
      EventsPage next;
      next.next = cursor;
      if (*end > cursor) {
        auto read = ReadEvents(sys, owner, app, cursor);
        if (!read.ok()) return RawUnavailable(read.status());
        next = std::move(read).value();
        cursor = next.next;
      }
      if (next.events.empty() && !timed_out) return std::nullopt;
      return RawResponse(200, "OK", "Cache-Control: no-store\r\n", EventsJson(next).dump());
    };
    if (server->Park(std::move(p))) return;
    res.set_header("Retry-After", "1");
    return http::ReplyError(
        res, Status(StatusCode::kUnavailable, "too many clients wait for changes; retry",
                    "too_many_waiting"));
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
