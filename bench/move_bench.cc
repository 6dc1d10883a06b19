// Benchmark: one move of an app on the embedded engines, step by step, against the peers that
// do the same data work by hand on the same data in the same run:
//   database: `sqlite3 SRC ".backup DST"` (a consistent copy, no compression, no verification),
//             and the like-for-like pipeline: .backup, zstd, SHA-256 of the artifact, unzstd,
//             SHA-256 of both databases (`openssl dgst`)
//   blobs:    `cp -r` of the app's blob directory (no per-blob verification, no index), and
//             `cp -r` + `openssl dgst -sha256` of every file on both sides
// Prints times and ratios (regionmove / peer), then bench/run's rows.
// Usage: regionmove_bench [rows] [blob_mib]
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "common/hash.h"
#include "common/log.h"
#include "dataplane/engines.h"
#include "result_row.h"
#include "service/system.h"

using namespace regionmove;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

int64_t DirBytes(const std::string& dir) {
  int64_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) n += static_cast<int64_t>(e.file_size());
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  int rows = argc > 1 ? std::atoi(argv[1]) : 200000;
  int blob_mib = argc > 2 ? std::atoi(argv[2]) : 64;
  SetLogLevel(LogLevel::kWarn);
  RegisterBuiltinEngines();
  std::string dir = (fs::temp_directory_path() / "regionmove-bench").string();
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string toml = "[server]\ndata_dir = \"var\"\n[saga]\nworkers = 1\n";
  for (const char* slug : {"us-east-1", "eu-west-1"}) {
    toml += std::string("[[regions]]\nslug = \"") + slug +
            "\"\ndatabase = { engine = \"sqlite\", " + "dir = \"regions/" + slug +
            "/db\" }\nblobs = { engine = \"fs\", dir = \"regions/" + slug + "/blobs\" }\n";
  }
  auto config = ParseConfig(toml, dir, "bench");
  Rng rng(1);
  auto sys = System::Open(*config, SystemClock::Default(), &rng);
  if (!sys.ok()) {
    std::fprintf(stderr, "%s\n", sys.status().ToString().c_str());
    return 1;
  }
  System& s = **sys;
  auto app = s.apps()->CreateApp("bench", "bench", "us-east-1", "");
  std::string id = app->id;
  RegionPlane* us = s.plane()->Region("us-east-1");
  (void)us->db->CreateTable(id, TableSpec{"events",
                                          {{"kind", "text"},
                                           {"n", "integer"},
                                           {"amount", "real"},
                                           {"payload", "json"},
                                           {"at", "timestamp"}}});
  for (int done = 0; done < rows;) {
    json batch = json::array();
    for (int i = 0; i < 5000 && done < rows; ++i, ++done) {
      batch.push_back({{"id", "e" + std::to_string(1000000 + done)},
                       {"kind", done % 3 ? "view" : "purchase"},
                       {"n", done},
                       {"amount", done * 0.01},
                       {"payload", {{"user", done % 977}, {"tags", {"a", "b"}}}},
                       {"at", "2026-11-25T10:00:00Z"}});
    }
    if (auto r = us->db->InsertRows(id, "events", batch); !r.ok()) {
      std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
      return 1;
    }
  }
  int blob_count = blob_mib * 4;  // 256 KiB each
  for (int i = 0; i < blob_count; ++i) {
    std::string data(256 * 1024, '\0');
    for (size_t j = 0; j < data.size(); j += 8) data[j] = static_cast<char>(rng.Next());
    (void)us->blobs->Put(id, "blobs/" + std::to_string(i), data, "application/octet-stream");
  }
  std::string src_db = config->regions[0].database.dir + "/" + id + ".sqlite3";
  int64_t db_bytes = static_cast<int64_t>(fs::file_size(src_db));
  std::string src_blobs = config->regions[0].blobs.dir + "/" + id;

  // The data written above goes to disk before anything is timed: its write-back would
  // otherwise compete with whichever runs first (a 1 GiB blob set stalled the next minute).
  ::sync();
  // Peers first, on the same files (the source is not written to by anything else).
  double peer_db =
      bench::TimeCommand("sqlite3 '" + src_db + "' \".backup '" + dir + "/peer.sqlite3'\"");
  double peer_blobs = bench::TimeCommand("cp -r '" + src_blobs + "' '" + dir + "/peer-blobs'");
  const std::string p = dir + "/pipe";
  double pipeline_db = bench::TimeCommand(
      "sqlite3 '" + src_db + "' \".backup '" + p + ".sqlite3'\" && zstd -q '" + p +
      ".sqlite3' -o '" + p + ".zst' && openssl dgst -sha256 '" + p + ".zst' >/dev/null && " +
      "unzstd -q '" + p + ".zst' -o '" + p + "-restored.sqlite3' && openssl dgst -sha256 '" +
      src_db + "' '" + p + "-restored.sqlite3' >/dev/null");
  double pipeline_blobs =
      bench::TimeCommand("cp -r '" + src_blobs + "' '" + p + "-blobs' && find '" + src_blobs +
                         "' '" + p + "-blobs' -type f -exec openssl dgst -sha256 {} + >/dev/null");
  // For context (no target): the copy made durable, as the move's is (`cp -r` leaves it in the
  // page cache; `sync` of the copy's file system waits until it is on disk), after the other
  // peers' writes are on disk.
  ::sync();
  double durable_blobs = bench::TimeCommand("cp -r '" + src_blobs + "' '" + p +
                                            "-blobs-durable' && sync -f '" + p + "-blobs-durable'");
  // What the peers wrote goes to disk before the move is timed, as the source data did.
  ::sync();

  auto start = std::chrono::steady_clock::now();
  auto m = s.migrations()->Move("bench", id, "eu-west-1", "");
  while (true) {
    (void)s.engine()->Drain();
    auto cur = s.store()->GetMigration(m->id);
    if (cur->terminal()) break;
  }
  auto end = std::chrono::steady_clock::now();
  auto done = s.store()->GetMigration(m->id);
  if (done->current_step != Step::kCompleted) {
    std::fprintf(stderr, "move failed: %s\n", done->last_error.c_str());
    return 1;
  }
  std::map<std::string, double> step_secs;
  auto events = s.store()->ListEvents(m->id);
  if (!events.ok()) return 1;
  for (const auto& e : *events) {
    if (e.type == "transition") {
      step_secs[std::string(StepName(e.from_step))] = (e.ended_at_ms - e.started_at_ms) / 1000.0;
    }
  }
  double ours_db = step_secs["dumping_data"] + step_secs["restoring_data"];
  double ours_blobs = step_secs["copying_blobs"];
  json res = json::parse(done->resources);
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);

  std::printf("data: %d rows (%.1f MiB database), %d blobs (%.1f MiB)\n", rows,
              db_bytes / 1048576.0, blob_count, DirBytes(src_blobs) / 1048576.0);
  std::printf("dump artifact: %.1f MiB zstd of %.1f MiB\n",
              res["copy"].value("size_bytes", 0.0) / 1048576.0,
              res["copy"].value("raw_bytes", 0.0) / 1048576.0);
  std::printf("%-40s %10s %10s %8s\n", "work", "regionmove", "peer", "ratio");
  std::printf("%-40s %9.3fs %9.3fs %7.2fx\n", "database: dump+restore+verify vs .backup", ours_db,
              peer_db, ours_db / peer_db);
  std::printf("%-40s %9.3fs %9.3fs %7.2fx\n", "blobs: copy+verify vs cp -r", ours_blobs, peer_blobs,
              ours_blobs / peer_blobs);
  std::printf("%-40s %9.3fs %9.3fs %7.2fx\n", "blobs: copy+verify vs cp -r + sync", ours_blobs,
              durable_blobs, ours_blobs / durable_blobs);
  std::printf("%-40s %9.3fs\n", "  of which dumping_data", step_secs["dumping_data"]);
  std::printf("%-40s %9.3fs\n", "  of which restoring_data (with verify)",
              step_secs["restoring_data"]);
  std::printf("%-40s %9.3fs\n", "whole move (11 steps)", Seconds(start, end));
  std::printf("peak RSS of the regionmove process: %.1f MiB\n", ru.ru_maxrss / 1024.0);

  using bench::ResultRow;
  const std::string command =
      "build/regionmove_bench " + std::to_string(rows) + " " + std::to_string(blob_mib);
  char db_work[96], blob_work[96];
  std::snprintf(db_work, sizeof db_work, "database %.0f MiB: dump+restore+verify",
                db_bytes / 1048576.0);
  std::snprintf(blob_work, sizeof blob_work, "blobs %.0f MiB: copy+verify",
                DirBytes(src_blobs) / 1048576.0);
  bench::PrintResultRow(ResultRow{db_work, command, ours_db, "s",
                                  ".backup+zstd+sha256+unzstd+sha256", pipeline_db, "ratio <= 1.0",
                                  ours_db <= pipeline_db});
  bench::PrintResultRow(ResultRow{db_work, command, ours_db, "s", "sqlite3 .backup", peer_db,
                                  "ratio <= 3.0", ours_db <= 3 * peer_db});
  bench::PrintResultRow(ResultRow{blob_work, command, ours_blobs, "s",
                                  "cp -r + openssl dgst both sides", pipeline_blobs, "ratio <= 1.0",
                                  ours_blobs <= pipeline_blobs});
  bench::PrintResultRow(ResultRow{blob_work, command, ours_blobs, "s", "cp -r", peer_blobs,
                                  "ratio <= 1.5", ours_blobs <= 1.5 * peer_blobs});
  fs::remove_all(dir);
  return 0;
}
