#include "api/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "common/log.h"

namespace regionmove {

namespace {

using SteadyClock = std::chrono::steady_clock;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             SteadyClock::now().time_since_epoch())
      .count();
}

// Waits up to timeout_ms for `events` on fd; false on timeout, error or hang-up without data.
bool PollFor(int fd, short events, int64_t timeout_ms) {
  if (timeout_ms <= 0) return false;
  pollfd p{fd, events, 0};
  for (;;) {
    int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(timeout_ms, 1 << 30)));
    if (r < 0 && errno == EINTR) continue;
    return r > 0 && (p.revents & (events | POLLHUP)) != 0;
  }
}

void AddressOf(const sockaddr_storage& ss, std::string& ip, int& port) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof(buf));
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof(buf));
    port = ntohs(a->sin6_port);
  }
  ip = buf;
}

// One client connection as httplib reads it: buffered reads under a deadline for the headers
// and an idle timeout for the body, writes under a timeout.
class ConnStream final : public httplib::Stream {
 public:
  ConnStream(int fd, const HttpLimits& limits) : fd_(fd), limits_(limits) {}

  // Waits for the first byte of the next request (or one already buffered).
  bool WaitForRequest() { return off_ < len_ || PollFor(fd_, POLLIN, limits_.idle_timeout_ms); }
  void StartHeaders() { headers_deadline_ms_ = NowMs() + limits_.header_timeout_ms; }
  void StartBody() { headers_deadline_ms_ = 0; }

  bool is_readable() const override { return off_ < len_ || WaitReadable(); }
  bool is_writable() const override { return PollFor(fd_, POLLOUT, limits_.write_timeout_ms); }

  ssize_t read(char* ptr, size_t size) override {
    if (off_ >= len_) {
      if (!WaitReadable()) return -1;
      ssize_t n;
      do {
        n = ::recv(fd_, buf_, sizeof(buf_), 0);
      } while (n < 0 && errno == EINTR);
      if (n <= 0) return n < 0 ? -1 : 0;
      off_ = 0;
      len_ = static_cast<size_t>(n);
    }
    size_t n = std::min(size, len_ - off_);
    std::memcpy(ptr, buf_ + off_, n);
    off_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (discard_) return static_cast<ssize_t>(size);  // parked: the answer comes later
    size_t done = 0;
    while (done < size) {
      ssize_t n = ::send(fd_, ptr + done, size - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (!PollFor(fd_, POLLOUT, limits_.write_timeout_ms)) return -1;
        continue;
      }
      if (n <= 0) return -1;
      done += static_cast<size_t>(n);
    }
    return static_cast<ssize_t>(done);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (getpeername(fd_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) AddressOf(ss, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) AddressOf(ss, ip, port);
  }
  socket_t socket() const override { return fd_; }

  bool has_buffered() const { return off_ < len_; }
  void Discard() { discard_ = true; }
  bool discarding() const { return discard_; }

 private:
  bool WaitReadable() const {
    int64_t timeout = headers_deadline_ms_ > 0 ? headers_deadline_ms_ - NowMs()
                                               : int64_t{limits_.read_timeout_ms};
    return PollFor(fd_, POLLIN, timeout);
  }

  int fd_;
  const HttpLimits& limits_;
  int64_t headers_deadline_ms_ = 0;  // 0 once the headers are in
  bool discard_ = false;
  char buf_[16 * 1024];
  size_t off_ = 0, len_ = 0;
};

// A connection held in memory: reads from `in`, appends answers to `out`.
class MemoryStream final : public httplib::Stream {
 public:
  MemoryStream(std::string_view in, std::string* out) : in_(in), out_(out) {}
  bool is_readable() const override { return pos_ < in_.size(); }
  bool is_writable() const override { return true; }
  ssize_t read(char* ptr, size_t size) override {
    size_t n = std::min(size, in_.size() - pos_);
    std::memcpy(ptr, in_.data() + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    out_->append(ptr, size);
    return static_cast<ssize_t>(size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 1;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 2;
  }
  socket_t socket() const override { return -1; }

 private:
  std::string_view in_;
  size_t pos_ = 0;
  std::string* out_;
};

// The connection whose request this thread is handling (for HttpServer::Park).
thread_local ConnStream* tl_conn = nullptr;
thread_local std::optional<ParkedRequest>* tl_park = nullptr;

constexpr int64_t kQueuedMs = 1000;  // the longest a new connection waits for a thread

std::string ListenError(const std::string& host, int port, int err) {
  std::string addr = host + ":" + std::to_string(port);
  switch (err) {
    case EADDRINUSE:
      return "address " + addr + " is in use (is another server running there?)";
    case EADDRNOTAVAIL:
      return "address " + addr + " is not an address of this machine";
    case EACCES:
      return "no permission to listen on " + addr + " (ports below 1024 need privileges)";
    default:
      return "cannot listen on " + addr + ": " + std::strerror(err);
  }
}

}  // namespace

HttpServer::HttpServer(HttpLimits limits) : limits_(limits) {
  // httplib takes an invalid listening socket to mean "shutting down" and then stops every
  // streamed response (a blob GET) before its first byte. This layer owns the sockets and ends
  // connections itself, so httplib's is never invalid (and never a real descriptor).
  svr_sock_ = -2;
  // Only for the Keep-Alive header httplib writes; this layer enforces both.
  set_keep_alive_max_count(static_cast<size_t>(limits_.keep_alive_max_requests));
  set_keep_alive_timeout(std::max(1, limits_.idle_timeout_ms / 1000));
}

HttpServer::~HttpServer() { Shutdown(); }

int64_t HttpServer::SteadyNowMs() { return NowMs(); }

Status HttpServer::Listen(const std::string& host, int port) {
  if (listen_fd_ >= 0) return Conflict("already listening");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &found);
      rc != 0) {
    return Unavailable("cannot listen on " + host + ":" + service + ": " + gai_strerror(rc));
  }
  int err = 0;
  int fd = -1;
  for (addrinfo* a = found; a && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    // SO_REUSEADDR lets a restart bind over TIME_WAIT; without SO_REUSEPORT a live listener
    // on the same address still makes bind fail, as it must.
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 1024) != 0) {
      err = errno;
      ::close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  if (fd < 0) return Unavailable(ListenError(host, port, err));
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  std::string ip;
  AddressOf(ss, ip, port_);
  if (::pipe2(wake_pipe_, O_CLOEXEC) != 0) {
    ::close(fd);
    return Unavailable(std::string("pipe: ") + std::strerror(errno));
  }
  if (::pipe2(park_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
    ::close(fd);
    return Unavailable(std::string("pipe: ") + std::strerror(errno));
  }
  listen_fd_ = fd;
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  park_thread_ = std::thread([this] { ParkLoop(); });
  return Status::Ok();
}

void HttpServer::AcceptLoop() {
  pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
  while (!stopping_) {
    bool queued;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // A connection queued longer than this for a thread is told to come back later.
      const int64_t too_old = NowMs() - kQueuedMs;
      while (!queued_.empty() && queued_.front().second < too_old) {
        RefuseBusy(queued_.front().first);
        queued_.pop_front();
      }
      queued = !queued_.empty();
    }
    int r = ::poll(fds, 2, queued ? 50 : -1);
    if (r < 0 && errno != EINTR) break;
    if (stopping_) break;
    if (r <= 0 || !(fds[0].revents & POLLIN)) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      // EMFILE and friends: back off a little instead of spinning.
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (active_ >= limits_.max_connections) {
        // Every thread is busy: a burst waits a moment for one (a parked request or a finished
        // connection frees it) rather than being refused at once.
        if (static_cast<int>(queued_.size()) < limits_.max_connections + limits_.max_parked) {
          queued_.emplace_back(fd, NowMs());
        } else {
          RefuseBusy(fd);
        }
        continue;
      }
      StartLocked(fd);
    }
  }
}

void HttpServer::StartLocked(int fd) {
  fds_.insert(fd);
  active_++;
  open_++;
  std::thread([this, fd] { ServeConnection(fd); }).detach();
}

void HttpServer::RefuseBusy(int fd) {
  static const std::string kBody =
      R"({"error":"unavailable","message":"the server has too many open connections; retry"})";
  std::string reply =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
      "Retry-After: 1\r\nConnection: close\r\nContent-Length: " +
      std::to_string(kBody.size()) + "\r\n\r\n" + kBody;
  int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  (void)!::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
  ::shutdown(fd, SHUT_WR);
  ::close(fd);
}

void HttpServer::ServeConnection(int fd, std::string first) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  std::optional<ParkedRequest> park;
  try {
    ConnStream strm(fd, limits_);
    bool ok = first.empty() || strm.write(first.data(), first.size()) >= 0;
    for (int left = limits_.keep_alive_max_requests; ok && left > 0 && !stopping_; --left) {
      if (!strm.WaitForRequest()) break;
      strm.StartHeaders();
      bool closed = false, parsed = false;
      tl_conn = &strm;
      tl_park = &park;
      ok = process_request(strm, left == 1 || stopping_, closed, [&](httplib::Request&) {
        parsed = true;
        strm.StartBody();
      });
      tl_conn = nullptr;
      tl_park = nullptr;
      if (park) break;  // the parking thread has the connection now
      // A request whose line or headers did not parse leaves the stream out of step: close.
      if (!ok || closed || !parsed) break;
    }
  } catch (const std::exception& e) {
    Log(LogLevel::kError, "http_connection", {{"error", e.what()}});
  } catch (...) {
    Log(LogLevel::kError, "http_connection", {{"error", "unknown exception"}});
  }
  tl_conn = nullptr;
  tl_park = nullptr;
  std::lock_guard<std::mutex> lock(mu_);
  active_--;
  if (!queued_.empty() && !stopping_ && active_ < limits_.max_connections) {
    StartLocked(queued_.front().first);
    queued_.pop_front();
  }
  if (park && !stopping_) {
    parked_.push_back(Parked{fd, std::move(*park)});
    (void)!::write(park_pipe_[1], "p", 1);
  } else {
    if (park) parked_count_--;
    ::shutdown(fd, SHUT_RDWR);
    fds_.erase(fd);
    ::close(fd);
  }
  if (--open_ == 0) all_closed_.notify_all();
}

bool HttpServer::Park(ParkedRequest req) {
  if (!tl_conn || !tl_park || tl_conn->has_buffered() || stopping_) return false;
  if (parked_count_.fetch_add(1) >= limits_.max_parked) {  // counted from here until answered
    parked_count_--;
    return false;
  }
  tl_conn->Discard();
  *tl_park = std::move(req);
  return true;
}

void HttpServer::WakeParked() {
  if (park_pipe_[1] >= 0) (void)!::write(park_pipe_[1], "w", 1);
}

void HttpServer::ParkLoop() {
  std::vector<pollfd> fds;
  std::vector<Parked> mine;  // the parked requests this thread holds
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& p : parked_) mine.push_back(std::move(p));
      parked_.clear();
    }
    if (stopping_) break;
    int64_t now = NowMs();
    int64_t timeout = -1;  // until the next request is due to be asked
    for (const auto& p : mine) {
      int64_t due = std::max<int64_t>(0, std::min(p.next_ask_ms, p.req.deadline_ms) - now);
      timeout = timeout < 0 ? due : std::min(timeout, due);
    }
    fds.assign(1, pollfd{park_pipe_[0], POLLIN, 0});
    for (const auto& p : mine) fds.push_back(pollfd{p.fd, POLLIN, 0});
    int r = ::poll(fds.data(), fds.size(), static_cast<int>(timeout));
    if (r < 0 && errno != EINTR) break;
    bool woken = false;  // WakeParked(): ask every one
    if (fds[0].revents & POLLIN) {
      woken = true;
      char buf[256];
      while (::read(park_pipe_[0], buf, sizeof(buf)) > 0) {
      }
    }
    now = NowMs();
    std::vector<Parked> waiting;
    std::vector<std::pair<int, std::string>> answered;  // each connection and what is left to send
    for (size_t i = 0; i < mine.size(); ++i) {
      Parked& p = mine[i];
      // A parked client sends nothing: readable means it hung up (or broke the protocol).
      bool gone = (fds[i + 1].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
      bool timed_out = now >= p.req.deadline_ms;
      if (!gone && !woken && !timed_out && now < p.next_ask_ms) {
        waiting.push_back(std::move(p));
        continue;
      }
      std::optional<std::string> answer;
      if (!gone) {
        try {
          answer = p.req.answer(timed_out);
        } catch (...) {
          gone = true;
        }
      }
      if (!gone && !answer) {
        p.next_ask_ms = now + std::max<int64_t>(1, p.req.recheck_ms);
        waiting.push_back(std::move(p));
        continue;
      }
      parked_count_--;  // answered (or gone): no longer waiting, before its client hears
      if (!gone) {
        // The answer goes out from this thread at once (it is small and the socket's buffer is
        // empty); what does not fit is sent by the connection's thread. A wake-up of many polls
        // then costs one send each before any of them waits for a thread to start.
        std::string& a = *answer;
        ssize_t sent = ::send(p.fd, a.data(), a.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) gone = true;
        if (sent > 0) a.erase(0, static_cast<size_t>(sent));
      }
      std::lock_guard<std::mutex> lock(mu_);
      if (gone || stopping_) {
        fds_.erase(p.fd);
        ::close(p.fd);
        continue;
      }
      active_++;
      open_++;
      answered.emplace_back(p.fd, std::move(*answer));
    }
    // Then a thread per answered connection, for whatever its client sends next.
    for (auto& [fd, rest] : answered) {
      std::thread([this, fd = fd, rest = std::move(rest)]() mutable {
        ServeConnection(fd, std::move(rest));
      }).detach();
    }
    mine = std::move(waiting);
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& p : parked_) mine.push_back(std::move(p));
  parked_.clear();
  for (const auto& p : mine) {
    fds_.erase(p.fd);
    ::close(p.fd);
  }
  parked_count_ = 0;
}

std::string HttpServer::ServeBytes(std::string_view input) {
  std::string out;
  MemoryStream strm(input, &out);
  for (int left = 100; left > 0 && strm.is_readable(); --left) {
    bool closed = false, parsed = false;
    bool ok = process_request(strm, left == 1, closed, [&](httplib::Request&) { parsed = true; });
    if (!ok || closed || !parsed) break;
  }
  return out;
}

void HttpServer::Shutdown() {
  if (listen_fd_ < 0) return;
  stopping_ = true;
  (void)!::write(wake_pipe_[1], "x", 1);
  if (accept_thread_.joinable()) accept_thread_.join();
  WakeParked();
  if (park_thread_.joinable()) park_thread_.join();
  {
    std::unique_lock<std::mutex> lock(mu_);
    for (const auto& q : queued_) ::close(q.first);
    queued_.clear();
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);  // wakes their reads and writes
    all_closed_.wait(lock, [&] { return open_ == 0; });
  }
  ::close(listen_fd_);
  ::close(wake_pipe_[0]);
  ::close(wake_pipe_[1]);
  ::close(park_pipe_[0]);
  ::close(park_pipe_[1]);
  park_pipe_[0] = park_pipe_[1] = -1;
  listen_fd_ = -1;
  std::lock_guard<std::mutex> lock(wait_mu_);
  stopped_ = true;
  stopped_cv_.notify_all();
}

void HttpServer::Wait() {
  std::unique_lock<std::mutex> lock(wait_mu_);
  stopped_cv_.wait(lock, [&] { return stopped_; });
}

}  // namespace regionmove
