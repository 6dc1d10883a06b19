#pragma once
// One row of the table that bench/run prints: each benchmark program prints its rows as lines
// "RESULT {json}" after its own report, and bench/run gathers them.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

namespace regionmove::bench {

struct ResultRow {
  std::string work;     // what was measured, e.g. "database 100 MiB: dump+restore+verify"
  std::string command;  // how to run this benchmark alone
  double ours = 0;      // regionmove's figure, in `unit`
  std::string unit = "s";
  std::string peer;  // the peer's name; empty when there is none
  double peer_value = 0;
  std::string target;  // the figure it is held against, e.g. "ratio <= 1.0"
  bool met = false;
};

// Runs a peer's shell command and returns its wall-clock seconds; exits the benchmark when the
// command fails (a peer that did not do the work has no figure).
inline double TimeCommand(const std::string& cmd) {
  auto start = std::chrono::steady_clock::now();
  int rc = std::system(cmd.c_str());
  if (rc != 0) {
    std::fprintf(stderr, "peer command failed (%d): %s\n", rc, cmd.c_str());
    std::exit(1);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Prints `row` with this process's peak RSS (regionmove runs in the benchmark's process; the
// peers are child processes).
inline void PrintResultRow(const ResultRow& row) {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  nlohmann::json j = {
      {"work", row.work},
      {"command", row.command},
      {"ours", row.ours},
      {"unit", row.unit},
      {"peer", row.peer},
      {"peer_value", row.peer.empty() ? nlohmann::json() : nlohmann::json(row.peer_value)},
      {"ratio", row.peer.empty() || row.peer_value <= 0
                    ? nlohmann::json()
                    : nlohmann::json(row.ours / row.peer_value)},
      {"rss_mib", static_cast<double>(ru.ru_maxrss) / 1024.0},
      {"target", row.target},
      {"met", row.met}};
  std::printf("RESULT %s\n", j.dump().c_str());
  std::fflush(stdout);
}

}  // namespace regionmove::bench
