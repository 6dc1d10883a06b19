// Benchmark: the control plane under many tiny moves, on each control-store engine in one run.
// N apps of one small table each move from us-east-1 to eu-west-1 with `workers` saga threads
// and caps high enough not to admit-queue. Prints moves per second with all moves requested at
// once, and the latency of a transition (from one step's recorded end to the next's: wake-up,
// claim, run, compare-and-set write) p50 and p99, measured in waves of `workers` moves so that
// no migration waits for a free worker.
// The PostgreSQL store is the first cluster of scripts/pg-regions (skipped when unreachable).
// Usage: regionmove_control_bench [moves] [workers]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/pg.h"
#include "dataplane/engines.h"
#include "result_row.h"
#include "service/system.h"

using namespace regionmove;
namespace fs = std::filesystem;

namespace {

struct Figures {
  double seconds = 0;
  double cpu_seconds = 0;  // of this process (not of a PostgreSQL server), moves only
  int completed = 0;
  std::vector<int64_t> transition_ms;
  // Per step of the plan: its total time, from its start (the previous step's recorded end) to
  // its own recorded end: the claim, the step's work and the transition's write.
  std::map<std::string, int64_t> step_ms;
  std::map<std::string, int> step_count;
  std::vector<std::string> step_order;
};

double CpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return sec(u.ru_utime) + sec(u.ru_stime);
}

double Percentile(std::vector<int64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return static_cast<double>(v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))]);
}

// Each run's directory, removed when all runs are done: a file system without a journal (ext4
// here) skips inodes deleted in the last 30 s one by one when it makes a file, so deleting one
// run's thousand files just before the next would charge the next for it.
std::vector<std::string> run_dirs;

// `moves` moves in waves of `wave` (all at once when wave == moves), with the concurrency caps
// lifted (256) or the default ones (16, 4 per region: one region pair here, so 4 at a time).
Result<Figures> Run(const std::string& engine, int moves, int workers, int wave,
                    bool default_caps = false) {
  std::string dir = (fs::temp_directory_path() /
                     ("regionmove-control-bench-" + engine + "-" + std::to_string(run_dirs.size())))
                        .string();
  fs::remove_all(dir);
  run_dirs.push_back(dir);
  fs::create_directories(dir);
  std::string toml =
      "[server]\ndata_dir = \"var\"\n[saga]\nworkers = " + std::to_string(workers) + "\n" +
      (default_caps ? "" : "max_concurrent = 256\nmax_concurrent_per_region = 256\n");
  if (engine == "postgres") {
    const char* dsn = "postgresql://postgres@127.0.0.1:54321/postgres";
    ASSIGN_OR_RETURN(std::string admin, pg::Conninfo(dsn, "postgres"));
    ASSIGN_OR_RETURN(auto c, pg::Conn::Open(admin, "bench"));
    RETURN_IF_ERROR(
        c->Exec("DROP DATABASE IF EXISTS regionmove_bench_control WITH (FORCE)").status());
    toml +=
        "[control_store]\nengine = \"postgres\"\ndsn = "
        "\"postgresql://postgres@127.0.0.1:54321/regionmove_bench_control\"\n";
    ::setenv("REGIONMOVE_SECRET_KEY", std::string(64, '7').c_str(), 1);
  }
  for (const char* slug : {"us-east-1", "eu-west-1"}) {
    toml += std::string("[[regions]]\nslug = \"") + slug +
            "\"\ndatabase = { engine = \"sqlite\", dir = \"regions/" + slug +
            "/db\" }\nblobs = { engine = \"fs\", dir = \"regions/" + slug + "/blobs\" }\n";
  }
  ASSIGN_OR_RETURN(Config config, ParseConfig(toml, dir, "bench"));
  Rng rng(1);
  ASSIGN_OR_RETURN(auto sys, System::Open(config, SystemClock::Default(), &rng));
  std::vector<std::string> apps;
  for (int i = 0; i < moves; ++i) {
    ASSIGN_OR_RETURN(App app, sys->apps()->CreateApp("bench", "shop", "us-east-1", ""));
    RegionPlane* us = sys->plane()->Region("us-east-1");
    RETURN_IF_ERROR(us->db->CreateTable(app.id, TableSpec{"orders", {{"total", "real"}}}));
    RETURN_IF_ERROR(
        us->db->InsertRows(app.id, "orders", nlohmann::json::array({{{"id", "o1"}, {"total", 1}}}))
            .status());
    apps.push_back(app.id);
  }
  sys->Start();
  const double cpu_start = CpuSeconds();
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + std::chrono::minutes(5);
  std::vector<std::string> ids;
  for (int first = 0; first < moves; first += wave) {
    size_t from = ids.size();
    for (int i = first; i < std::min(moves, first + wave); ++i) {
      ASSIGN_OR_RETURN(Migration m, sys->migrations()->Move("bench", apps[i], "eu-west-1", ""));
      ids.push_back(m.id);
    }
    for (size_t done = from; done < ids.size();) {
      if (std::chrono::steady_clock::now() > deadline) return Unavailable("moves did not finish");
      ASSIGN_OR_RETURN(Migration m, sys->store()->GetMigration(ids[done]));
      if (m.terminal()) {
        ++done;
      } else {
        SystemClock::Default()->SleepMs(2);
      }
    }
  }
  Figures f;
  f.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  f.cpu_seconds = CpuSeconds() - cpu_start;
  sys->Stop();
  for (const auto& id : ids) {
    ASSIGN_OR_RETURN(Migration m, sys->store()->GetMigration(id));
    if (m.current_step == Step::kCompleted) ++f.completed;
    ASSIGN_OR_RETURN(auto events, sys->store()->ListEvents(id));
    int64_t prev = -1;
    for (const auto& e : events) {
      if (e.type != "transition") continue;
      if (prev >= 0) f.transition_ms.push_back(e.ended_at_ms - prev);
      f.step_ms[std::string(StepName(e.step))] += e.ended_at_ms - e.started_at_ms;
      if (f.step_count[std::string(StepName(e.step))]++ == 0) {
        f.step_order.emplace_back(StepName(e.step));
      }
      prev = e.ended_at_ms;
    }
  }
  sys.reset();
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  int moves = argc > 1 ? std::atoi(argv[1]) : 200;
  int workers = argc > 2 ? std::atoi(argv[2]) : 4;
  SetLogLevel(LogLevel::kError);
  RegisterBuiltinEngines();
  std::printf(
      "%d tiny moves at once (caps lifted, then the default caps), then %d in waves of %d (no "
      "queueing); %d workers, one process\n",
      moves, moves / 5, workers, workers);
  std::printf("%-10s %9s %12s %10s %16s %16s %12s\n", "store", "moves/s", "default caps",
              "completed", "transition p50", "transition p99", "cpu/move");
  struct Row {
    std::string work;
    double value;
    std::string unit, target;
    double bound;
  };
  std::vector<Row> rows;
  for (const char* engine : {"sqlite", "postgres"}) {
    auto all = Run(engine, moves, workers, moves);
    auto capped = all.ok() ? Run(engine, moves, workers, moves, true) : all;
    auto waves = capped.ok() ? Run(engine, moves / 5, workers, workers) : capped;
    if (!waves.ok()) {
      std::printf("%-10s skipped: %s\n", engine, waves.status().ToString().c_str());
      continue;
    }
    std::printf("%-10s %9.1f %12.1f %10d %14.0fms %14.0fms %10.1fms\n", engine,
                all->completed / all->seconds, capped->completed / capped->seconds,
                all->completed + capped->completed + waves->completed,
                Percentile(waves->transition_ms, 0.5), Percentile(waves->transition_ms, 0.99),
                1000 * all->cpu_seconds / std::max(1, all->completed));
    std::printf("  mean per step in the waves (from the previous step's end: claim and step)\n");
    for (const auto& step : waves->step_order) {
      const double ms = static_cast<double>(waves->step_ms[step]);
      const double n = waves->step_count[step];
      std::printf("  %-30s %7.1fms\n", step.c_str(), ms / n);
    }
    rows.push_back({std::string("tiny moves at once, caps lifted, ") + engine + " control store",
                    all->completed / all->seconds, "moves/s", ">= 200 moves/s", 200});
    rows.push_back({std::string("tiny moves at once, default caps, ") + engine + " control store",
                    capped->completed / capped->seconds, "moves/s", ">= 100 moves/s", 100});
    rows.push_back({std::string("transition p99, ") + engine + " control store",
                    Percentile(waves->transition_ms, 0.99), "ms", "< 20 ms", -20});
  }
  for (const auto& dir : run_dirs) fs::remove_all(dir);
  const std::string command =
      "build/regionmove_control_bench " + std::to_string(moves) + " " + std::to_string(workers);
  for (const auto& r : rows) {
    // No peer: the figure is held against its target alone (a negative bound is an upper one).
    const bool met = r.bound >= 0 ? r.value >= r.bound : r.value < -r.bound;
    bench::PrintResultRow(bench::ResultRow{r.work, command, r.value, r.unit, "", 0, r.target, met});
  }
  return 0;
}
