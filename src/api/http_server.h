#pragma once

#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "common/result.h"

namespace regionmove {

// How much a client may take of the server. Defaults suit a public API on a small machine.
struct HttpLimits {
  int max_connections = 256;      // open connections; the next ones are answered 503 and closed
  int header_timeout_ms = 10000;  // the request line and headers must arrive within this
  int idle_timeout_ms = 5000;     // a kept-alive connection with no new request is closed
  int read_timeout_ms = 30000;    // a body that sends nothing for this long ends the request
  int write_timeout_ms = 30000;   // a client that reads nothing for this long is dropped
  int keep_alive_max_requests = 1000;
};

// httplib's routing (handlers, pre-routing, logger, error and exception handlers) on a
// connection layer of our own. httplib 0.11 reads headers with a per-read timeout only (a
// client sending one byte a second holds a thread forever), queues connections without bound,
// and binds with SO_REUSEPORT (a second server on the same port silently shares its traffic).
// This layer owns the socket: a deadline for the request headers, an idle timeout between
// requests, a bound on connections (one thread each, so a slow client never starves a fast
// one), TCP_NODELAY, and a bind that fails when the address is in use.
//
// Thread-safe: Listen() once, then Stop() from any thread.
class HttpServer : public httplib::Server {
 public:
  explicit HttpServer(HttpLimits limits = {});
  ~HttpServer() override;

  // Binds host:port (port 0 picks a free one) and serves on a background thread.
  // Unavailable with a clear message when the address is in use or not local.
  Status Listen(const std::string& host, int port);
  int port() const { return port_; }
  // Stops accepting, ends open connections and waits for their threads.
  void Shutdown();
  // Blocks until Shutdown() runs elsewhere.
  void Wait();

  int open_connections() const { return open_.load(); }

  // Runs the requests in `input` (one connection's bytes, as a client would send them) through
  // routing and returns every byte the server would answer. No socket: for fuzzing and tests.
  std::string ServeBytes(std::string_view input);

 private:
  void AcceptLoop();
  void ServeConnection(int fd);
  void RefuseBusy(int fd);

  HttpLimits limits_;
  int listen_fd_ = -1;
  int wake_pipe_[2] = {-1, -1};
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> open_{0};
  std::thread accept_thread_;
  std::mutex mu_;
  std::condition_variable all_closed_;
  std::set<int> fds_;  // open connections, to end them on Shutdown
  std::mutex wait_mu_;
  std::condition_variable stopped_cv_;
  bool stopped_ = false;
};

}  // namespace regionmove
