// regionmove's copy of one PostgreSQL database between two clusters, as a move runs it
// (dumping_data: pg_dump of the schema sections; restoring_data: recreate, pre-data, parallel
// binary COPY, sequences, post-data; then the verification of both sides), timed.
// bench/pg_copy_bench.py runs it beside pg_dump | psql, pg_dump -Fd -j2 + pg_restore -j2 and
// pgcopydb clone on the same clusters and prints the ratios.
//   regionmove_pg_bench SRC_DSN DST_DSN DATABASE STAGING_DIR
#include <chrono>
#include <cstdio>
#include <future>

#include "common/log.h"
#include "dataplane/engines.h"

using namespace regionmove;

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s SRC_DSN DST_DSN DATABASE STAGING_DIR\n", argv[0]);
    return 2;
  }
  SetLogLevel(LogLevel::kWarn);
  RegisterBuiltinEngines();
  Config config;
  config.data_dir = argv[4];
  for (auto [slug, dsn] : {std::pair{"src-1", argv[1]}, std::pair{"dst-1", argv[2]}}) {
    RegionConfig r;
    r.slug = slug;
    r.database =
        EngineConfig{.engine = "postgres", .dir = std::string(argv[4]) + "/" + slug, .dsn = dsn};
    config.regions.push_back(r);
  }
  Rng rng{1};
  auto engine = (*FindDatabaseEngine("postgres"))(EngineEnv{&config, &rng, nullptr});
  if (!engine.ok()) return std::fprintf(stderr, "%s\n", engine.status().ToString().c_str()), 1;
  auto src = (*engine)->OpenDatabase(config.regions[0]);
  auto dst = (*engine)->OpenDatabase(config.regions[1]);
  const std::string db = argv[3];
  // As blocking_writes does before the copy (not timed: it is another step).
  Status fenced = (*src)->Fence(db);
  if (!fenced.ok()) return std::fprintf(stderr, "%s\n", fenced.ToString().c_str()), 1;
  auto t0 = std::chrono::steady_clock::now();
  auto state = (*src)->ExportCopy(db, std::string(argv[4]) + "/bench", nullptr);
  if (!state.ok()) return std::fprintf(stderr, "%s\n", state.status().ToString().c_str()), 1;
  Status s = (*dst)->ImportCopy(db, "src-1", *state, nullptr);
  if (!s.ok()) return std::fprintf(stderr, "%s\n", s.ToString().c_str()), 1;
  auto t1 = std::chrono::steady_clock::now();
  auto theirs = std::async(std::launch::async, [&] { return (*src)->Digest(db); });
  auto ours = (*dst)->Digest(db);
  auto other = theirs.get();
  if (!ours.ok() || !other.ok() || *ours != *other) {
    std::fprintf(stderr, "verification failed\n");
    return 1;
  }
  auto t2 = std::chrono::steady_clock::now();
  (void)(*src)->Unfence(db);
  auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  std::printf("{\"copy_s\": %.3f, \"verify_s\": %.3f, \"tables\": %zu}\n", secs(t0, t1),
              secs(t1, t2), ours->size());
  return 0;
}
