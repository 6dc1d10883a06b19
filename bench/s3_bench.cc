// Benchmark: blob copies between fs and S3 regions (the local S3 server of scripts/s3-local),
// each move's copying_blobs step against a peer that moves the same objects with curl, 4 at a
// time, without verifying anything:
//   fs -> S3:  `curl -T` (PUT) of every file of the source directory
//   S3 -> S3:  `curl -X PUT -H x-amz-copy-source` (the server's own copy) of every object
//   S3 -> fs:  `curl -o` (GET) of every object
// Two apps: many blobs of 1 KiB to 8 MiB (log-uniform, random bytes), and one large blob, whose
// rows show the process's peak RSS does not grow with a blob's size.
// Usage: regionmove_s3_bench [blobs] [large_mib]   (default 500 blobs, a 512 MiB blob)
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>

#include "common/log.h"
#include "dataplane/engines.h"
#include "dataplane/s3/s3_client.h"
#include "dataplane/s3/s3_objects.h"
#include "result_row.h"
#include "service/system.h"

using namespace regionmove;
using nlohmann::json;

namespace {

const char* Endpoint() {
  const char* e = std::getenv("REGIONMOVE_S3_ENDPOINT");
  return e ? e : "http://127.0.0.1:4569";
}

// Moves `app` to `dest`, tears the replica down, and returns the copying_blobs step's seconds.
double Move(System& s, const std::string& app, const std::string& dest, json* resources) {
  auto m = s.migrations()->Move("bench", app, dest, "");
  if (!m.ok()) {
    std::fprintf(stderr, "move: %s\n", m.status().ToString().c_str());
    std::exit(1);
  }
  while (true) {
    (void)s.engine()->Drain();
    if (s.store()->GetMigration(m->id)->terminal()) break;
  }
  auto done = s.store()->GetMigration(m->id);
  if (done->current_step != Step::kCompleted) {
    std::fprintf(stderr, "move failed: %s\n", done->last_error.c_str());
    std::exit(1);
  }
  *resources = json::parse(done->resources);
  (void)s.migrations()->Teardown("bench", m->id);
  double secs = 0;
  auto events = s.store()->ListEvents(m->id);
  for (const auto& e : *events) {
    if (e.type == "transition" && e.from_step == Step::kCopyingBlobs) {
      secs = (e.ended_at_ms - e.started_at_ms) / 1000.0;
    }
  }
  return secs;
}

// The keys under `prefix` in `bucket` (unsigned listing: s3rver answers it).
std::vector<std::string> Keys(const std::string& bucket, const std::string& prefix) {
  EngineConfig c;
  c.endpoint = Endpoint();
  c.bucket = bucket;
  c.access_key_id = c.secret_access_key = "S3RVER";
  auto client = s3::Client::Make(c);
  std::vector<std::string> keys;
  std::string after;
  while (true) {
    s3::Request req{"GET", "", {{"list-type", "2"}, {"prefix", prefix}}, {}, {}};
    if (!after.empty()) req.query["start-after"] = after;
    auto res = (*client)->Send(req);
    auto page = s3::XmlValues(res->body, "Key");
    if (page.empty()) return keys;
    keys.insert(keys.end(), page.begin(), page.end());
    after = page.back();
  }
}

std::string WriteList(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path);
  for (const auto& l : lines) out << l << "\n";
  return path;
}

}  // namespace

int main(int argc, char** argv) {
  int count = argc > 1 ? std::atoi(argv[1]) : 500;
  int64_t large_mib = argc > 2 ? std::atoll(argv[2]) : 512;
  SetLogLevel(LogLevel::kWarn);
  RegisterBuiltinEngines();
  std::string dir = "/var/tmp/regionmove-s3-bench";
  (void)std::system(("rm -rf " + dir + " && mkdir -p " + dir).c_str());
  const std::string bucket = "rm-bench-" + std::to_string(std::time(nullptr));
  std::string toml =
      "[server]\ndata_dir = \"var\"\n[saga]\nworkers = 1\n"
      "[[users]]\nname = \"bench\"\ntoken = \"bench-token\"\n"
      "[[regions]]\nslug = \"us-east-1\"\n"
      "database = { engine = \"sqlite\", dir = \"regions/us-east-1/db\" }\n"
      "blobs = { engine = \"fs\", dir = \"regions/us-east-1/blobs\" }\n";
  for (const char* slug : {"bucket-east-1", "bucket-west-1"}) {
    toml += std::string("[[regions]]\nslug = \"") + slug +
            "\"\ndatabase = { engine = \"sqlite\", dir = \"regions/" + slug +
            "/db\" }\nblobs = { engine = \"s3\", endpoint = \"" + Endpoint() + "\", bucket = \"" +
            bucket + "\", prefix = \"" + slug +
            "\", access_key_id = \"S3RVER\", secret_access_key = \"S3RVER\" }\n";
  }
  auto config = ParseConfig(toml, dir, "bench");
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.status().ToString().c_str());
    return 1;
  }
  Rng rng(7);
  auto sys = System::Open(*config, SystemClock::Default(), &rng);
  if (!sys.ok()) {
    std::fprintf(stderr, "%s (is scripts/s3-local running?)\n", sys.status().ToString().c_str());
    return 1;
  }
  System& s = **sys;
  RegionPlane* us = s.plane()->Region("us-east-1");
  const std::string command =
      "build/regionmove_s3_bench " + std::to_string(count) + " " + std::to_string(large_mib);

  // The large blob first: the peak RSS printed with its rows is what moving it took.
  auto large = s.apps()->CreateApp("bench", "large", "us-east-1", "");
  {
    auto w = us->blobs->StartStage(large->id, "large.bin", "application/octet-stream", "");
    std::string buf(1 << 20, '\0');
    for (int64_t i = 0; i < large_mib; ++i) {
      for (size_t j = 0; j < buf.size(); j += 8) {
        uint64_t v = rng.Next();
        std::memcpy(&buf[j], &v, 8);
      }
      (void)(*w)->Write(buf.data(), buf.size());
    }
    (void)us->blobs->Publish(large->id, {*(*w)->Finish()});
  }
  json res;
  const std::string large_dir = config->regions[0].blobs.dir + "/" + large->id;
  double peer_large_up = bench::TimeCommand("find '" + large_dir +
                                            "' -type f | xargs -I{} curl -sf "
                                            "-o /dev/null -X PUT -T {} " +
                                            Endpoint() + "/" + bucket + "/peer-large");
  double large_up = Move(s, large->id, "bucket-east-1", &res);
  std::vector<std::string> large_key = Keys(bucket, "bucket-east-1/" + large->id + "/");
  double peer_large_down = bench::TimeCommand("curl -sf -o '" + dir + "/peer-large' " + Endpoint() +
                                              "/" + bucket + "/" + large_key.at(0));
  double large_down = Move(s, large->id, "us-east-1", &res);
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const bool flat = ru.ru_maxrss < 200 * 1024;
  std::printf(
      "one %lld MiB blob: fs -> S3 %.3f s (curl -T %.3f s), S3 -> fs %.3f s (curl %.3f s), "
      "peak RSS %.0f MiB\n",
      static_cast<long long>(large_mib), large_up, peer_large_up, large_down, peer_large_down,
      ru.ru_maxrss / 1024.0);
  for (auto [what, ours, peer_name, peer] :
       {std::tuple<std::string, double, std::string, double>{"fs -> S3", large_up, "curl PUT",
                                                             peer_large_up},
        {"S3 -> fs", large_down, "curl GET", peer_large_down}}) {
    char work[128];
    std::snprintf(work, sizeof work, "one %lld MiB blob: %s (peak RSS < 200 MiB: %s)",
                  static_cast<long long>(large_mib), what.c_str(), flat ? "yes" : "NO");
    bench::PrintResultRow(bench::ResultRow{work, command, ours, "s", peer_name, peer,
                                           "ratio <= 1.5, RSS flat", flat && ours <= 1.5 * peer});
  }

  // Many blobs, 1 KiB to 8 MiB.
  auto app = s.apps()->CreateApp("bench", "many", "us-east-1", "");
  int64_t total = 0;
  {
    std::string buf;
    for (int i = 0; i < count; ++i) {
      size_t size = static_cast<size_t>(1024.0 * std::pow(8192.0, double(i % count) / (count - 1)));
      buf.resize(size);
      for (size_t j = 0; j < size; j += 8) {
        uint64_t v = rng.Next();
        std::memcpy(&buf[j], &v, std::min<size_t>(8, size - j));
      }
      (void)us->blobs->Put(app->id, "f/" + std::to_string(i), buf, "application/octet-stream");
      total += static_cast<int64_t>(size);
    }
  }
  const std::string src_dir = config->regions[0].blobs.dir + "/" + app->id;
  std::printf("%d blobs, %.1f MiB\n", count, total / 1048576.0);

  // Each peer runs on the same objects just before the move (which tears its source down).
  double peer_up = bench::TimeCommand("cd '" + src_dir +
                                      "' && find . -type f | xargs -P 4 -I{} curl -sf "
                                      "-o /dev/null -X PUT -T {} " +
                                      Endpoint() + "/" + bucket + "/peer-up/{}");
  double up = Move(s, app->id, "bucket-east-1", &res);
  std::string east = WriteList(dir + "/east.txt", Keys(bucket, "bucket-east-1/" + app->id + "/"));
  double peer_across = bench::TimeCommand(
      "xargs -P 4 -I{} curl -sf -o /dev/null -X PUT -H "
      "'x-amz-copy-source: /" +
      bucket + "/{}' " + Endpoint() + "/" + bucket + "/peer-across/{} < '" + east + "'");
  double across = Move(s, app->id, "bucket-west-1", &res);
  int server_side = res.value("blobs_copied_server_side", 0);
  std::string west = WriteList(dir + "/west.txt", Keys(bucket, "bucket-west-1/" + app->id + "/"));
  (void)std::system(("mkdir -p " + dir + "/peer-down").c_str());
  double peer_down = bench::TimeCommand("xargs -P 4 -I{} sh -c 'curl -sf -o \"" + dir +
                                        "/peer-down/$(basename {})\" " + Endpoint() + "/" + bucket +
                                        "/{}' < '" + west + "'");
  double down = Move(s, app->id, "us-east-1", &res);
  std::printf("%-36s %9s %9s %7s\n", "", "regionmove", "curl x4", "ratio");
  std::printf("%-36s %9.3fs %9.3fs %7.2fx\n", "fs -> S3 (copy+verify)", up, peer_up, up / peer_up);
  std::printf("%-36s %9.3fs %9.3fs %7.2fx  (%d of %d server-side)\n", "S3 -> S3 (same endpoint)",
              across, peer_across, across / peer_across, server_side, count);
  std::printf("%-36s %9.3fs %9.3fs %7.2fx\n", "S3 -> fs (copy+verify)", down, peer_down,
              down / peer_down);
  char many[96];
  std::snprintf(many, sizeof many, "%d blobs %.0f MiB", count, total / 1048576.0);
  for (auto [what, ours, peer_name, peer] :
       {std::tuple<std::string, double, std::string, double>{std::string(many) + ": fs -> S3", up,
                                                             "curl PUT x4", peer_up},
        {std::string(many) + ": S3 -> S3", across, "curl CopyObject x4", peer_across},
        {std::string(many) + ": S3 -> fs", down, "curl GET x4", peer_down}}) {
    bench::PrintResultRow(bench::ResultRow{what, command, ours, "s", peer_name, peer,
                                           "ratio <= 1.5", ours <= 1.5 * peer});
  }
  // What the peers wrote, and the bench's directory.
  EngineConfig peers;
  peers.endpoint = Endpoint();
  peers.bucket = bucket;
  peers.access_key_id = peers.secret_access_key = "S3RVER";
  if (auto objects = S3Objects::Open(peers, &rng); objects.ok()) {
    for (const char* d : {"peer-up", "peer-across"}) (void)(*objects)->RemoveDir(d);
    (void)(*objects)->Remove("peer-large");
  }
  (void)std::system(("rm -rf " + dir).c_str());
  return 0;
}
