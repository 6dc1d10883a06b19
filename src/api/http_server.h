#pragma once

#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

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
  int max_parked = 1024;  // requests waiting without a thread (Park); more are refused
};

// A request a handler answers later, without holding a thread meanwhile (long polls).
struct ParkedRequest {
  int64_t deadline_ms = 0;  // steady clock (SteadyNowMs)
  // How often it is asked besides WakeParked(): what it waits for may change where no wake-up
  // comes from (another process's commit on an SQLite store).
  int64_t recheck_ms = 10;
  // Asked on the server's parking thread whenever it may be ready (WakeParked(), and every
  // recheck_ms): the whole HTTP/1.1 response to send, or nullopt to go on waiting. At the
  // deadline it is asked with timed_out = true and must answer.
  std::function<std::optional<std::string>(bool timed_out)> answer;
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
  int parked_requests() const { return parked_count_.load(); }

  // From inside a handler: parks the request being handled. The handler then returns without
  // answering (whatever it puts in the response is dropped) and its thread goes back to serving
  // nothing: the connection sleeps on the parking thread until `req.answer` answers, then
  // resumes on a thread of its own. False when it cannot be parked (max_parked reached, not
  // served on a socket, or the client already sent more): the handler answers itself.
  bool Park(ParkedRequest req);
  // Asks every parked request for its answer now.
  void WakeParked();
  static int64_t SteadyNowMs();

  // Runs the requests in `input` (one connection's bytes, as a client would send them) through
  // routing and returns every byte the server would answer. No socket: for fuzzing and tests.
  std::string ServeBytes(std::string_view input);

 private:
  void AcceptLoop();
  // Serves requests on `fd` until it closes; `first` is written first (a parked answer).
  void ServeConnection(int fd, std::string first = "");
  void ParkLoop();
  struct Parked {
    int fd;
    ParkedRequest req;
    int64_t next_ask_ms = 0;  // steady clock: when it is asked again unless woken before
  };
  void RefuseBusy(int fd);
  // Starts serving `fd` on a thread of its own. REQUIRES: mu_ held.
  void StartLocked(int fd);

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
  int active_ = 0;     // connections with a thread (bounded by max_connections)
  std::deque<std::pair<int, int64_t>> queued_;  // accepted, waiting for a thread (fd, since)
  std::vector<Parked> parked_;                  // guarded by mu_
  std::atomic<int> parked_count_{0};
  int park_pipe_[2] = {-1, -1};
  std::thread park_thread_;
  std::mutex wait_mu_;
  std::condition_variable stopped_cv_;
  bool stopped_ = false;
};

}  // namespace regionmove
