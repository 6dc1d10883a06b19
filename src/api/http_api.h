#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "api/http_server.h"
#include "api/write_buffer.h"
#include "common/metrics.h"
#include "common/result.h"
#include "service/system.h"

namespace regionmove {

class RoutingFeed;

// The HTTP face of a System: the REST API of SPEC §7 (with the migration guard of §6),
// /healthz, /metrics, and any extra handlers (MCP) mounted by the caller. Thread-safe once
// listening; handlers run on the server's thread pool.
class HttpApi {
 public:
  // Routes every request; `metrics` may be shared with the saga engine.
  static Result<std::unique_ptr<HttpApi>> Make(System* system, Metrics* metrics);
  ~HttpApi();

  // Binds host:port (port 0 picks a free one) and serves on a background thread.
  Status Start(const std::string& host, int port);
  int port() const { return port_; }
  // Stops accepting and joins the server thread.
  void Stop();
  // Blocks until Stop() is called from elsewhere (signal handler thread).
  void Wait();

  HttpServer* server() { return server_.get(); }

  // For a write to `app` that `blocker` pauses: when the move is online, waits (bounded in time
  // by server.buffer_writes_seconds and in number by the write buffer) for the pause to end.
  // True when it ended and the write may go on; false when it is to be answered 503.
  bool AwaitUnblock(const std::string& app, const Migration& blocker);
  // Answers with a 5xx other than 503 so far: each one is a bug of ours, never the client's.
  int64_t internal_errors() const { return internal_errors_.load(); }

 private:
  HttpApi(System* system, Metrics* metrics);
  void Register();
  void RegisterDataRoutes();
  void RegisterMcp();
  void RegisterIntegration();
  void RegisterUi();
  void DetachFeed();
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;
  // A handler that reads the body itself, as it arrives (blob uploads).
  using StreamHandler = std::function<void(const httplib::Request&, httplib::Response&,
                                           const httplib::ContentReader&)>;
  // Registers a route. GET routes also answer HEAD. Routes that may come without a body
  // (POST/PUT/PATCH/DELETE): httplib refuses such a request when it has neither Content-Length
  // nor Transfer-Encoding (as `curl -X POST` sends it), so the pre-routing handler dispatches
  // those itself, as with an empty body. Every route is recorded for the Allow header of 405.
  // `stream`, when given, serves the requests IsBlobUpload() names instead of `handler`, with
  // the body unread, unless their Content-Length is at most kHeldBlobBytes (those are read
  // into memory, so that the guard's write buffer can replay them after a pause).
  static constexpr int64_t kHeldBlobBytes = 1 << 20;
  void Route(const std::string& method, const std::string& pattern, Handler handler,
             StreamHandler stream = nullptr);
  // The methods served at `path` ("GET, HEAD, POST"); empty when no route matches it.
  std::string AllowedMethods(const std::string& path) const;
  // Runs the matching Route() for a request without body headers; false when none matches.
  bool DispatchBodyless(const httplib::Request& req, httplib::Response& res);

  System* sys_;
  Metrics* metrics_;
  std::unique_ptr<HttpServer> server_;
  struct BodylessRoute {
    std::string method;
    std::regex pattern;
    Handler handler;
  };
  std::vector<BodylessRoute> routes_;  // every route; GET ones are never dispatched bodyless
  struct McpSessions;
  std::shared_ptr<McpSessions> mcp_;
  std::unique_ptr<WriteBuffer> buffer_;
  std::shared_ptr<RoutingFeed> feed_;
  int port_ = 0;
  std::atomic<int64_t> internal_errors_{0};
  bool unguarded_ = false;  // REGIONMOVE_BENCH_UNGUARDED=1: the guard is skipped (benchmarks)
};

}  // namespace regionmove
