#include "cli/demo.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "cli/progress.h"
#include "common/hash.h"
#include "common/log.h"
#include "service/system.h"

namespace regionmove {

namespace {

using nlohmann::json;

struct Demo {
  System* sys = nullptr;
  std::string user;                  // the owner of the demo app: the config's first user
  std::string first, second, third;  // regions: from, to, and the second move's destination
  std::string app;
  std::vector<std::string> summary;

  RegionPlane* Serving() { return sys->plane()->Region(sys->store()->GetApp(app)->region); }

  // Follows a migration to its end with the live progress display.
  Result<Migration> Follow(const std::string& id) {
    ProgressPrinter printer(stdout);
    auto start = std::chrono::steady_clock::now();
    while (true) {
      ASSIGN_OR_RETURN(Migration m, sys->store()->GetMigration(id));
      if (m.terminal()) {
        printer.Finish(m, sys->clock()->NowMs());
        double secs =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        char line[256];
        std::snprintf(line, sizeof(line), "%-7s %-14s -> %-14s %-5s %-9s %6.2fs", m.kind.c_str(),
                      m.source_region.c_str(), m.dest_region.c_str(),
                      m.reverse_path.empty() ? "" : m.reverse_path.c_str(),
                      std::string(MigrationStatusName(m.status())).c_str(), secs);
        summary.push_back(line);
        if (m.current_step != Step::kCompleted) {
          return Permanent("migration ended " + std::string(StepName(m.current_step)) + ": " +
                           m.last_error);
        }
        return m;
      }
      printer.Update(m, sys->clock()->NowMs());
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  void Where() {
    auto a = sys->store()->GetApp(app);
    auto routes = sys->store()->ListRoutes(app);
    std::printf("  %s now lives in %s (routing version %lld):", app.c_str(), a->region.c_str(),
                static_cast<long long>(a->routing_version));
    for (const auto& r : *routes) std::printf(" %s", r.host.c_str());
    std::printf("\n");
  }
};

Status Populate(Demo& d, int rows, int blob_mib) {
  RegionPlane* r = d.Serving();
  RETURN_IF_ERROR(r->db->CreateTable(d.app, TableSpec{"customers",
                                                      {{"name", "text"},
                                                       {"email", "text"},
                                                       {"vip", "boolean"},
                                                       {"balance", "real"},
                                                       {"joined", "timestamp"}}}));
  RETURN_IF_ERROR(r->db->CreateTable(
      d.app, TableSpec{"orders", {{"customer", "text"}, {"total", "real"}, {"items", "json"}}}));
  json customers = json::array(), orders = json::array();
  for (int i = 0; i < rows; ++i) {
    std::string id = "cust-" + std::to_string(i);
    customers.push_back({{"id", id},
                         {"name", "Customer " + std::to_string(i)},
                         {"email", "c" + std::to_string(i) + "@example.com"},
                         {"vip", i % 10 == 0},
                         {"balance", i * 3.25},
                         {"joined", "2026-0" + std::to_string(1 + i % 9) + "-15T12:00:00Z"}});
    orders.push_back({{"customer", id},
                      {"total", 10.0 + i % 90},
                      {"items", json::array({{{"sku", "SKU-" + std::to_string(i % 40)}}})}});
  }
  RETURN_IF_ERROR(r->db->InsertRows(d.app, "customers", customers).status());
  RETURN_IF_ERROR(r->db->InsertRows(d.app, "orders", orders).status());
  for (int i = 0; i < 30; ++i) {
    std::string data(static_cast<size_t>(4096 + i * 997), static_cast<char>('A' + i % 26));
    RETURN_IF_ERROR(
        r->blobs->Put(d.app, "images/product-" + std::to_string(i) + ".png", data, "image/png")
            .status());
  }
  Rng rng(42);
  for (int i = 0; i < 2; ++i) {
    std::string big(static_cast<size_t>(blob_mib) * 1024 * 1024, '\0');
    for (size_t j = 0; j < big.size(); j += 8) big[j] = static_cast<char>(rng.Next());
    RETURN_IF_ERROR(
        r->blobs->Put(d.app, "videos/intro-" + std::to_string(i) + ".mp4", big, "video/mp4")
            .status());
  }
  RETURN_IF_ERROR(r->runtime->PutFunction(
      d.app, {"checkout", 1, "index.handler", "node20", "export const handler = () => 'ok';"}));
  RETURN_IF_ERROR(r->runtime->PutEnv(d.app, {"STRIPE_KEY", "sk_test_demo", true}));
  RETURN_IF_ERROR(r->runtime->PutEnv(d.app, {"CURRENCY", "EUR", false}));
  RETURN_IF_ERROR(r->runtime->PutCron(d.app, {"nightly-report", "0 2 * * *", "checkout"}));
  return d.sys->apps()->PutDomain(d.user, d.app, "shop-" + d.app.substr(4) + ".example.com");
}

Status Run(Demo& d, int rows, int blob_mib) {
  MigrationService* ms = d.sys->migrations();
  const char* first = d.first.c_str();
  const char* second = d.second.c_str();
  const char* third = d.third.c_str();
  std::printf(
      "\n1. Creating an app in %s with %d customers, %d orders, 32 blobs "
      "(2 x %d MiB) and a runtime\n",
      first, rows, rows, blob_mib);
  ASSIGN_OR_RETURN(App app, d.sys->apps()->CreateApp(d.user, "demo-shop", d.first, ""));
  d.app = app.id;
  RETURN_IF_ERROR(Populate(d, rows, blob_mib));
  d.Where();

  std::printf(
      "\n2. Moving it to %s (writes pause from blocking_writes to "
      "unblocking_writes)\n",
      second);
  // A client keeps writing through the guarded write path while the app moves.
  std::atomic<bool> writing{true};
  std::vector<std::string> accepted;
  int refused = 0;
  std::thread writer([&] {
    for (int i = 0; writing.load(); ++i) {
      std::string id = "live-" + std::to_string(i);
      auto plane = d.sys->apps()->ForWrite(d.user, d.app);
      Status s =
          plane.ok()
              ? (*plane)->db->InsertRows(d.app, "orders", {{"id", id}, {"total", 1.0}}).status()
              : plane.status();
      if (s.ok()) {
        accepted.push_back(id);
      } else if (s.reason() == "app_migrating") {
        ++refused;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  ASSIGN_OR_RETURN(Migration move, ms->Move(d.user, d.app, d.second, ""));
  std::printf("  migration %s queued\n", move.id.c_str());
  auto followed = d.Follow(move.id);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  writing = false;
  writer.join();
  ASSIGN_OR_RETURN(Migration moved, std::move(followed));
  int found = 0;
  for (const auto& id : accepted) found += d.Serving()->db->GetRow(d.app, "orders", id).ok();
  std::printf(
      "  a client writing meanwhile: %zu writes accepted, %d refused while paused "
      "(the API answers those 503 app_migrating); %d of the %zu accepted are in %s\n",
      accepted.size(), refused, found, accepted.size(), second);
  if (found != static_cast<int>(accepted.size())) return Corruption("acknowledged writes lost");
  json res = json::parse(moved.resources);
  std::printf("  verified %s rows in %s tables, copied %s blobs; source replica: %s\n",
              res["verified"]["rows"].dump().c_str(), res["verified"]["tables"].dump().c_str(),
              res["blobs_copied"].dump().c_str(), moved.source_replica_state.c_str());
  d.Where();

  std::printf("\n3. Writing to the app in its new region\n");
  RETURN_IF_ERROR(
      d.Serving()
          ->db
          ->InsertRows(d.app, "orders",
                       {{"id", "order-after-move"}, {"customer", "cust-1"}, {"total", 99.5}})
          .status());
  RETURN_IF_ERROR(ms->PumpReplicas(/*wait=*/true));
  ASSIGN_OR_RETURN(auto replicated, d.sys->plane()->Region(d.first)->db->GetRow(
                                        d.app, "orders", "order-after-move"));
  std::printf("  wrote order-after-move in %s; the replica in %s has it too (total %s)\n", second,
              first, replicated["total"].dump().c_str());
  ASSIGN_OR_RETURN(auto replicas, ms->ListReplicas(d.user));
  for (const auto& r : replicas) {
    if (r.migration.app_id != d.app) continue;
    std::printf("  replica of %s in %s: %s, lag %lld bytes, %s/month\n",
                r.migration.id.substr(0, 8).c_str(), r.migration.source_region.c_str(),
                HumanBytes(r.size_bytes).c_str(), static_cast<long long>(r.lag_bytes),
                HumanUsd(r.estimated_monthly_cost_usd).c_str());
  }

  std::printf("\n4. Reversing the move (fast path: through the retained replica, no dump)\n");
  ASSIGN_OR_RETURN(Migration rev, ms->Reverse(d.user, d.app, move.id));
  std::printf("  reverse %s takes the %s path\n", rev.id.c_str(), rev.reverse_path.c_str());
  RETURN_IF_ERROR(d.Follow(rev.id).status());
  d.Where();

  std::printf("\n5. Moving it again, to %s\n", third);
  ASSIGN_OR_RETURN(Migration again, ms->Move(d.user, d.app, d.third, ""));
  std::printf("  migration %s queued\n", again.id.c_str());
  RETURN_IF_ERROR(d.Follow(again.id).status());
  d.Where();

  std::printf("\n6. Tearing down the retained replica in %s\n", first);
  RETURN_IF_ERROR(ms->Teardown(d.user, again.id));
  ASSIGN_OR_RETURN(Migration torn, d.sys->store()->GetMigration(again.id));
  ASSIGN_OR_RETURN(bool left, d.sys->plane()->Region(d.first)->db->Exists(d.app));
  std::printf("  replica state: %s; database left in %s: %s\n", torn.source_replica_state.c_str(),
              first, left ? "yes" : "no");

  std::printf("\nSummary for %s\n", d.app.c_str());
  for (const auto& line : d.summary) std::printf("  %s\n", line.c_str());
  std::printf("\nNext: `regionmove serve` for the REST API, `make test` for the test suite.\n");
  return Status::Ok();
}

}  // namespace

int RunDemo(const std::string& config_path, int rows, int blob_mib) {
  SetLogLevel(LogLevel::kWarn);
  auto config = LoadConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "regionmove: %s\n", config.status().message().c_str());
    return 2;
  }
  Rng rng = Rng::FromEntropy();
  auto sys = System::Open(*config, SystemClock::Default(), &rng);
  if (!sys.ok()) {
    std::fprintf(stderr, "regionmove: %s\n", sys.status().ToString().c_str());
    return 1;
  }
  Demo d;
  d.sys = sys->get();
  // Any config with two regions that accept moves will do; a third, if there is one, is the
  // second move's destination (with two, the app moves there again).
  std::vector<std::string> regions;
  for (const auto& r : config->regions) {
    if (r.status == "available") regions.push_back(r.slug);
  }
  if (regions.size() < 2) {
    std::fprintf(stderr, "regionmove demo: needs two available regions; %s has %zu\n",
                 config->source.c_str(), regions.size());
    return 2;
  }
  d.first = regions[0];
  d.second = regions[1];
  d.third = regions.size() > 2 ? regions[2] : regions[1];
  for (const auto& u : config->users) {  // the first user who is not an admin, else the first
    if (d.user.empty() || !u.admin) d.user = u.name;
    if (!u.admin) break;
  }
  if (d.user.empty()) {
    std::fprintf(stderr, "regionmove demo: %s has no [[users]] to own the demo app\n",
                 config->source.c_str());
    return 2;
  }
  std::string names;
  for (const auto& r : regions) names += (names.empty() ? "" : ", ") + r;
  std::printf("regionmove demo: regions %s; the app's owner is %s; data under %s\n", names.c_str(),
              d.user.c_str(), config->data_dir.c_str());
  (*sys)->Start();
  Status s = Run(d, rows, blob_mib);
  (*sys)->Stop();
  if (!s.ok()) {
    std::fprintf(stderr, "\ndemo failed: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace regionmove
