#include "common/subprocess.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

extern char** environ;

namespace regionmove {

namespace {

// Reads a pipe to its end into `out`, keeping at most `limit` bytes (the last ones).
void Drain(int fd, std::string* out, size_t limit) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > 2 * limit) out->erase(0, out->size() - limit);
  }
  if (out->size() > limit) out->erase(0, out->size() - limit);
}

}  // namespace

Result<std::string> RunProgram(const std::vector<std::string>& argv,
                               const std::string& stdout_path) {
  if (argv.empty()) return InvalidArgument("no program to run");
  int err_pipe[2], out_pipe[2] = {-1, -1};
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return Permanent("pipe: " + std::string(strerror(errno)));
  int out_fd = -1;
  if (stdout_path.empty()) {
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
      ::close(err_pipe[0]);
      ::close(err_pipe[1]);
      return Permanent("pipe: " + std::string(strerror(errno)));
    }
    out_fd = out_pipe[1];
  } else {
    out_fd = ::open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out_fd < 0) {
      ::close(err_pipe[0]);
      ::close(err_pipe[1]);
      return Permanent("open " + stdout_path + ": " + strerror(errno));
    }
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, argv[0].c_str(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(err_pipe[1]);
  ::close(out_fd);
  if (rc != 0) {
    ::close(err_pipe[0]);
    if (out_pipe[0] >= 0) ::close(out_pipe[0]);
    return Permanent("cannot run " + argv[0] + ": " + strerror(rc));
  }
  std::string out, err;
  std::thread err_reader([&] { Drain(err_pipe[0], &err, 4096); });
  if (out_pipe[0] >= 0) Drain(out_pipe[0], &out, size_t{1} << 30);
  err_reader.join();
  ::close(err_pipe[0]);
  if (out_pipe[0] >= 0) ::close(out_pipe[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    std::string how = WIFEXITED(status)
                          ? "exited with " + std::to_string(WEXITSTATUS(status))
                          : "was killed by signal " + std::to_string(WTERMSIG(status));
    return Permanent(argv[0] + " " + how + (err.empty() ? "" : ": " + err));
  }
  return out;
}

}  // namespace regionmove
