// Benchmark: how long writes pause during a move, online against offline, on the same data in
// one run, with writers that keep writing throughout (as the data API does: to the region that
// serves the app, refused while the app's writes are blocked; these writers retry after 1 ms
// instead of waiting at the guard's buffer, so every blocked moment shows).
//   1. an app of ~`mib` MiB in region A; `writers` threads insert rows without stopping;
//   2. an offline move A -> B; the replica is torn down;
//   3. an online move B -> A of the same data (plus what the writers added).
// The write-pause window of a move: from the first refused write to the first acknowledged one
// after the last refusal. Every acknowledged write is checked in the final region (lost = 0).
// Usage: regionmove_pause_bench [sqlite|postgres] [mib] [writers]
//   postgres: the clusters of scripts/pg-regions (REGIONMOVE_PG_DSN_A / _B to override).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/log.h"
#include "dataplane/engines.h"
#include "result_row.h"
#include "service/system.h"

using namespace regionmove;
using nlohmann::json;
namespace fs = std::filesystem;
using Steady = std::chrono::steady_clock;

namespace {

std::string Env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

double Seconds(Steady::time_point a, Steady::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// What the writers saw during one move.
struct Window {
  std::mutex mu;
  std::optional<Steady::time_point> first_refused, last_refused, first_ok_after;
  int64_t refused = 0;
  // The Retry-After a refused writer is told (MigrationService::RetryAfterSeconds, as the
  // HTTP guard answers it), at the first refusal.
  std::atomic<int64_t> first_retry_after{-1};

  void Refused(Steady::time_point t) {
    std::lock_guard<std::mutex> lock(mu);
    if (!first_refused) first_refused = t;
    last_refused = t;
    first_ok_after.reset();
    ++refused;
  }
  void Acked(Steady::time_point t) {
    std::lock_guard<std::mutex> lock(mu);
    if (last_refused && !first_ok_after && t > *last_refused) first_ok_after = t;
  }
  double seconds() {
    std::lock_guard<std::mutex> lock(mu);
    if (!first_refused || !first_ok_after) return -1;
    return Seconds(*first_refused, *first_ok_after);
  }
};

struct Outcome {
  double pause = -1, total = 0;
  int64_t refused = 0;
  int64_t first_retry_after = -1;
  std::string verified;
  std::string steps;  // the pause's steps and their seconds
};

}  // namespace

int main(int argc, char** argv) {
  const std::string engine = argc > 1 ? argv[1] : "sqlite";
  const int mib = argc > 2 ? std::atoi(argv[2]) : 1024;
  const int writers = argc > 3 ? std::atoi(argv[3]) : 4;
  if ((engine != "sqlite" && engine != "postgres") || mib <= 0 || writers <= 0) {
    std::fprintf(stderr, "usage: regionmove_pause_bench [sqlite|postgres] [mib] [writers]\n");
    return 2;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each line as it is printed
  SetLogLevel(LogLevel::kWarn);
  RegisterBuiltinEngines();
  std::string dir = (fs::temp_directory_path() / "regionmove-pause-bench").string();
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string toml = "[server]\ndata_dir = \"var\"\n[saga]\nworkers = 1\n";
  const char* dsns[] = {"REGIONMOVE_PG_DSN_A", "REGIONMOVE_PG_DSN_B"};
  const char* fallback[] = {"postgresql://postgres@127.0.0.1:54321/postgres",
                            "postgresql://postgres@127.0.0.1:54322/postgres"};
  const char* slugs[] = {"region-a", "region-b"};
  for (int i = 0; i < 2; ++i) {
    std::string db =
        engine == "sqlite"
            ? std::string("{ engine = \"sqlite\", dir = \"regions/") + slugs[i] + "/db\" }"
            : "{ engine = \"postgres\", dsn = \"" + Env(dsns[i], fallback[i]) + "\" }";
    toml += std::string("[[regions]]\nslug = \"") + slugs[i] + "\"\ndatabase = " + db +
            "\nblobs = { engine = \"fs\", dir = \"regions/" + slugs[i] + "/blobs\" }\n";
  }
  auto config = ParseConfig(toml, dir, "bench");
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.status().ToString().c_str());
    return 1;
  }
  Rng rng = Rng::FromEntropy();  // app ids unique: PostgreSQL clusters outlive a run
  auto sys = System::Open(*config, SystemClock::Default(), &rng);
  if (!sys.ok()) {
    std::fprintf(stderr, "%s\n", sys.status().ToString().c_str());
    return 1;
  }
  System& s = **sys;
  auto app = s.apps()->CreateApp("bench", "pause", "region-a", "");
  if (!app.ok()) {
    std::fprintf(stderr, "%s\n", app.status().ToString().c_str());
    return 1;
  }
  const std::string id = app->id;
  Database* a = s.plane()->Region("region-a")->db.get();
  (void)a->CreateTable(id, TableSpec{"events", {{"n", "integer"}, {"body", "text"}}});
  // Rows of ~1 KiB: `mib` MiB of them.
  const std::string body(1000, 'x');
  const int64_t rows = int64_t{mib} * 1024;
  auto load_start = Steady::now();
  for (int64_t done = 0; done < rows;) {
    json batch = json::array();
    for (int i = 0; i < 5000 && done < rows; ++i, ++done) {
      batch.push_back({{"id", "e" + std::to_string(10000000 + done)}, {"n", done}, {"body", body}});
    }
    if (auto r = a->InsertRows(id, "events", batch); !r.ok()) {
      std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
      return 1;
    }
  }
  auto size = a->SizeBytes(id);
  std::printf("data: %lld rows, %.0f MiB database (%s), loaded in %.0f s; %d writers\n",
              static_cast<long long>(rows), size.ok() ? *size / 1048576.0 : -1.0, engine.c_str(),
              Seconds(load_start, Steady::now()), writers);

  // The writers: each inserts rows to the serving region, unless its writes are blocked.
  std::atomic<bool> stop{false};
  std::atomic<Window*> window{nullptr};
  std::mutex acked_mu;
  std::vector<std::string> acked;
  std::atomic<int64_t> errors{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      for (int64_t i = 0; !stop; ++i) {
        const std::string row_id = "w" + std::to_string(w) + "-" + std::to_string(i);
        Window* win = window.load();
        // As the data API writes: the serving region, Unavailable("app_migrating") if blocked.
        auto plane = s.apps()->ForWrite("bench", id);
        Status st =
            plane.ok()
                ? (*plane)->db->InsertRows(id, "events", {{"id", row_id}, {"n", -i}}).status()
                : plane.status();
        auto now = Steady::now();
        if (st.ok()) {
          if (win) win->Acked(now);
          std::lock_guard<std::mutex> lock(acked_mu);
          acked.push_back(row_id);
        } else if (st.reason() == "app_migrating") {
          if (win) win->Refused(now);
          if (win && win->first_retry_after.load() < 0) {
            if (auto m = s.store()->GetActiveMigration(id); m.ok() && m->has_value()) {
              win->first_retry_after = s.migrations()->RetryAfterSeconds(**m);
            }
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(1));  // as a client retrying
        } else {
          ++errors;
        }
      }
    });
  }

  auto move = [&](const std::string& to, const std::string& strategy) -> Outcome {
    Window win;
    window = &win;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // writers at full speed
    auto start = Steady::now();
    auto m = s.migrations()->Move("bench", id, to, strategy);
    if (!m.ok()) {
      std::fprintf(stderr, "move refused: %s\n", m.status().ToString().c_str());
      std::exit(1);
    }
    Migration done;
    while (true) {
      (void)s.engine()->Drain();
      auto cur = s.store()->GetMigration(m->id);
      if (cur.ok() && cur->terminal()) {
        done = *cur;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    Outcome out;
    out.total = Seconds(start, Steady::now());
    if (done.current_step != Step::kCompleted) {
      std::fprintf(stderr, "%s move failed: %s\n", strategy.c_str(), done.last_error.c_str());
      std::exit(1);
    }
    // The window closes at the first acknowledged write after the unblock.
    for (int i = 0; i < 2000 && win.seconds() < 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    window = nullptr;
    out.pause = win.seconds();
    out.refused = win.refused;
    out.first_retry_after = win.first_retry_after.load();
    if (auto events = s.store()->ListEvents(done.id); events.ok()) {
      bool paused = false;
      for (const auto& e : *events) {
        if (e.type != "transition") continue;
        paused = paused || e.from_step == Step::kBlockingWrites;
        if (!paused) continue;
        char buf[96];
        std::snprintf(buf, sizeof buf, " %s %.2f", std::string(StepName(e.from_step)).c_str(),
                      (e.ended_at_ms - e.started_at_ms) / 1000.0);
        out.steps += buf;
        if (e.from_step == Step::kUnblockingWrites) break;
      }
    }
    json res = json::parse(done.resources, nullptr, false);
    if (res.is_object() && res.contains("verified")) out.verified = res["verified"].dump();
    if (Status t = s.migrations()->Teardown("bench", done.id); !t.ok()) {
      std::fprintf(stderr, "teardown: %s\n", t.ToString().c_str());
      std::exit(1);
    }
    return out;
  };
  Outcome offline = move("region-b", "offline");
  Outcome online = move("region-a", "online");
  // Once more offline: the first move of a deployment estimates its pause (the refused writers'
  // Retry-After) at assumed rates, this one at the rates the first measured.
  Outcome offline_again = move("region-b", "offline");
  stop = true;
  for (auto& t : threads) t.join();

  // Nothing acknowledged is lost: every acknowledged row is in the region that serves the app.
  int64_t lost = 0;
  Database* serving = s.plane()->Region("region-b")->db.get();
  for (const auto& row_id : acked) lost += !serving->GetRow(id, "events", row_id).ok();
  std::printf("%-34s %10s %10s %8s\n", "write pause (first refusal -> first", "online", "offline",
              "ratio");
  std::printf("%-34s %9.3fs %9.3fs %7.3fx\n", "  ack after the unblock)", online.pause,
              offline.pause, offline.pause > 0 ? online.pause / offline.pause : 0.0);
  std::printf("%-34s %9.3fs %9.3fs\n", "whole move", online.total, offline.total);
  std::printf("%-34s %10lld %10lld\n", "writes refused during the move",
              static_cast<long long>(online.refused), static_cast<long long>(offline.refused));
  std::printf("online verification under the pause: %s\n", online.verified.c_str());
  std::printf("online pause by step (s):%s\n", online.steps.c_str());
  std::printf("offline pause by step (s):%s\n", offline.steps.c_str());
  std::printf("writes acknowledged: %zu, lost: %lld, other errors: %lld\n", acked.size(),
              static_cast<long long>(lost), static_cast<long long>(errors.load()));
  char work[128];
  std::snprintf(work, sizeof work, "write pause of an online move, %lld MiB %s, %d writers",
                static_cast<long long>(mib), engine.c_str(), writers);
  bench::PrintResultRow(bench::ResultRow{work,
                                         "build/regionmove_pause_bench " + engine + " " +
                                             std::to_string(mib) + " " + std::to_string(writers),
                                         online.pause, "s", "offline move, same data and writers",
                                         offline.pause, "<= 1 s, none lost",
                                         online.pause <= 1.0 && lost == 0});
  // Retry-After at the first refusal of an offline pause against how long it really lasted
  // (whole seconds: a pause under a second is told 1).
  std::printf(
      "Retry-After at an offline pause's first refusal: %lld s at assumed rates (the pause "
      "lasted %.2f s), %lld s at measured ones (the pause lasted %.2f s)\n",
      static_cast<long long>(offline.first_retry_after), offline.pause,
      static_cast<long long>(offline_again.first_retry_after), offline_again.pause);
  std::snprintf(
      work, sizeof work,
      "Retry-After at the first refusal of an offline pause (rates measured), %lld MiB %s",
      static_cast<long long>(mib), engine.c_str());
  const double told = static_cast<double>(offline_again.first_retry_after);
  const double lasted = std::max(offline_again.pause, 1.0);
  bench::PrintResultRow(bench::ResultRow{work,
                                         "build/regionmove_pause_bench " + engine + " " +
                                             std::to_string(mib) + " " + std::to_string(writers),
                                         told, "s", "the pause it answered (at least 1 s)", lasted,
                                         "within 2x of the pause",
                                         told > 0 && told <= 2 * lasted && 2 * told >= lasted});
  (void)serving->Drop(id);
  fs::remove_all(dir);
  return lost == 0 ? 0 : 1;
}
