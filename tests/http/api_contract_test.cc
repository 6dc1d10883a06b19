// Contract tests of the REST API (SPEC §7) over real HTTP on a free loopback port.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "http/http_util.h"

namespace regionmove::testing {
namespace {

using nlohmann::json;
const std::string kAlice = "alice-token", kBob = "bob-token", kAdmin = "admin-token";

class ApiContract : public HttpFixture {
 protected:
  void SetUp() override {
    StartServer(R"(
[[regions]]
slug = "eu-central-1"
status = "draining"
database = { engine = "sqlite", dir = "regions/eu-central-1/db" }
blobs = { engine = "fs", dir = "regions/eu-central-1/blobs" }
[[regions]]
slug = "sa-east-1"
max_apps = 1
database = { engine = "sqlite", dir = "regions/sa-east-1/db" }
blobs = { engine = "fs", dir = "regions/sa-east-1/blobs" }
)",
                "max_body_bytes = 4096\n");
  }
  std::string Move(const std::string& app, const std::string& dest, int want = 202) {
    HttpReply r = Json("POST", "/v1/apps/" + app + "/move", kAlice, {{"dest_region", dest}});
    EXPECT_EQ(r.status, want) << r.raw;
    return r.body.value("migration_id", "");
  }
};

TEST_F(ApiContract, PublicRoutes) {
  EXPECT_EQ(Call("GET", "/healthz", "").status, 200);
  HttpReply regions = Call("GET", "/v1/regions", "");
  ASSERT_EQ(regions.status, 200);
  ASSERT_EQ(regions.body["regions"].size(), 5u);
  for (const auto& r : regions.body["regions"]) {
    EXPECT_TRUE(r.contains("slug") && r.contains("name") && r.contains("status"));
    EXPECT_EQ(r["accepting_moves"], r["status"] == "available");
  }
  HttpReply metrics = Call("GET", "/metrics", "");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.raw.find("regionmove_http_requests_total"), std::string::npos);
  EXPECT_EQ(Call("GET", "/v1/nothing-here", "").body["error"], "not_found");
}

TEST_F(ApiContract, AuthAndInputErrors) {
  EXPECT_EQ(Call("GET", "/v1/apps", "").status, 401);
  EXPECT_EQ(Call("GET", "/v1/apps", "").body["error"], "unauthorized");
  EXPECT_EQ(Call("GET", "/v1/apps", "wrong").status, 401);
  HttpReply bad_json = Call("POST", "/v1/apps", kAlice, "{\"name\": ");
  EXPECT_EQ(bad_json.status, 400);
  EXPECT_EQ(bad_json.body["error"], "invalid_json");
  HttpReply missing = Json("POST", "/v1/apps", kAlice, {{"name", "x"}});
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(missing.body["error"], "invalid_request");
  EXPECT_NE(missing.body["message"].get<std::string>().find("region"), std::string::npos);
  HttpReply typed = Json("POST", "/v1/apps", kAlice, {{"name", 5}, {"region", "us-east-1"}});
  EXPECT_EQ(typed.status, 400);
  EXPECT_NE(typed.body["message"].get<std::string>().find("name"), std::string::npos);
  HttpReply deep =
      Call("POST", "/v1/apps", kAlice, std::string(1500, '[') + std::string(1500, ']'));
  EXPECT_EQ(deep.status, 400);
  EXPECT_EQ(deep.body["error"], "invalid_json");
  HttpReply big = Call("POST", "/v1/apps", kAlice, std::string(5000, ' '));
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(big.body["error"], "payload_too_large");
  EXPECT_EQ(Json("POST", "/v1/apps", kAlice, {{"name", "x"}, {"region", "mars-1"}}).body["error"],
            "invalid_region");
}

TEST_F(ApiContract, AppsAndOwnership) {
  HttpReply created = Json("POST", "/v1/apps", kAlice,
                           {{"name", "shop"}, {"region", "us-east-1"}, {"subdomain", "shop"}});
  ASSERT_EQ(created.status, 201) << created.raw;
  for (const char* k :
       {"app_id", "name", "owner", "subdomain", "region", "status", "created_at", "size_bytes"}) {
    EXPECT_TRUE(created.body.contains(k)) << k;
  }
  std::string app = created.body["app_id"];
  EXPECT_EQ(created.body["status"], "ready");
  HttpReply taken = Json("POST", "/v1/apps", kBob,
                         {{"name", "x"}, {"region", "us-east-1"}, {"subdomain", "shop"}});
  EXPECT_EQ(taken.status, 409);
  EXPECT_EQ(taken.body["error"], "subdomain_taken");
  EXPECT_EQ(Call("GET", "/v1/apps/" + app, kAlice).status, 200);
  EXPECT_EQ(Call("GET", "/v1/apps/" + app, kBob).status, 404);
  EXPECT_EQ(Call("GET", "/v1/apps/app_nonexistent00", kAlice).body["error"], "not_found");
  EXPECT_EQ(Call("GET", "/v1/apps", kBob).body["apps"].size(), 0u);
  EXPECT_EQ(Call("GET", "/v1/apps", kAlice).body["apps"].size(), 1u);
  EXPECT_EQ(Call("GET", "/v1/apps", kAdmin).body["apps"].size(), 1u);
  // Bob cannot touch Alice's app anywhere.
  EXPECT_EQ(Json("POST", "/v1/apps/" + app + "/move", kBob, {{"dest_region", "eu-west-1"}}).status,
            404);
  EXPECT_EQ(Call("GET", "/v1/apps/" + app + "/migrations", kBob).status, 404);
  EXPECT_EQ(Call("GET", "/v1/apps/" + app + "/tables", kBob).status, 404);
  EXPECT_EQ(Call("PUT", "/v1/apps/" + app + "/blobs/x", kBob, "x", "text/plain").status, 404);
}

TEST_F(ApiContract, MoveErrors) {
  std::string app = CreateApp(kAlice);
  auto move = [&](const json& body) {
    return Json("POST", "/v1/apps/" + app + "/move", kAlice, body);
  };
  EXPECT_EQ(move({}).body["error"], "invalid_request");
  EXPECT_EQ(move({{"dest_region", "mars-1"}}).body["error"], "invalid_region");
  EXPECT_EQ(move({{"dest_region", "mars-1"}}).status, 400);
  HttpReply strategy = move({{"dest_region", "eu-west-1"}, {"strategy", "sideways"}});
  EXPECT_EQ(strategy.status, 400);
  EXPECT_EQ(strategy.body["error"], "invalid_strategy");
  struct Case {
    std::string dest, code;
  } cases[] = {{"us-east-1", "same_region"}, {"eu-central-1", "region_not_accepting"}};
  for (const auto& c : cases) {
    HttpReply r = move({{"dest_region", c.dest}});
    EXPECT_EQ(r.status, 409) << r.raw;
    EXPECT_EQ(r.body["error"], "ineligible");
    EXPECT_EQ(r.body["reason_code"], c.code);
    EXPECT_TRUE(r.body.contains("reason"));
  }
  CreateApp(kBob, "sa-east-1");  // sa-east-1 is now full
  HttpReply full = move({{"dest_region", "sa-east-1"}});
  EXPECT_EQ(full.body["reason_code"], "insufficient_capacity") << full.raw;
  EXPECT_EQ(Json("POST", "/v1/apps/app_nonexistent00/move", kAlice, {{"dest_region", "eu-west-1"}})
                .status,
            404);
  HttpReply plan = move({{"dest_region", "eu-west-1"}, {"dry_run", true}});
  EXPECT_EQ(plan.status, 200);
  EXPECT_EQ(plan.body["eligible"], true);
  EXPECT_TRUE(plan.body.contains("estimated_duration_seconds"));
  EXPECT_TRUE(plan.body.contains("estimated_write_block_seconds"));
  // Checks are named for the answer that lets the move go; a failed one carries the reason_code
  // a move would be refused with. Durations are in seconds, rounded to a tenth.
  std::vector<std::string> names;
  for (const auto& c : plan.body["checks"]) {
    names.push_back(c["name"]);
    EXPECT_TRUE(c["reason_code"].is_null()) << c;
  }
  EXPECT_EQ(names,
            (std::vector<std::string>{"dest_differs_from_source", "dest_accepts_moves",
                                      "no_migration_in_flight", "engines_compatible",
                                      "dest_has_prerequisites", "app_ready", "dest_has_capacity"}));
  const double duration = plan.body["estimated_duration_seconds"];
  EXPECT_DOUBLE_EQ(duration, std::round(duration * 10) / 10);
  EXPECT_EQ(plan.body["strategy"], "offline");
  EXPECT_EQ(plan.body["steps"], 11);
  EXPECT_EQ(plan.body["recommended_strategy"], "offline");  // a small app: a short pause
  // Online, writes pause only for the catch-up, never longer than the copy's window (for an app
  // this small both are the fixed cost, rounded to a tenth).
  HttpReply online =
      move({{"dest_region", "eu-west-1"}, {"dry_run", true}, {"strategy", "online"}});
  EXPECT_EQ(online.body["strategy"], "online");
  EXPECT_EQ(online.body["steps"], 12);
  EXPECT_LE(online.body["estimated_write_block_seconds"].get<double>(),
            plan.body["estimated_write_block_seconds"].get<double>());
  HttpReply same = move({{"dest_region", "us-east-1"}, {"dry_run", true}});
  EXPECT_EQ(same.status, 200);
  EXPECT_EQ(same.body["eligible"], false);
  bool flagged = false;
  for (const auto& c : same.body["checks"]) {
    if (c["name"] == "dest_differs_from_source") {
      flagged = c["ok"] == false && c["reason_code"] == "same_region";
    }
  }
  EXPECT_TRUE(flagged) << same.raw;
  EXPECT_EQ(Call("GET", "/v1/apps/" + app + "/migrations", kAlice).body["migrations"].size(), 0u);
}

// The dry run estimates both strategies; once a move has completed, at the rate it measured.
TEST_F(ApiContract, DryRunEstimatesFromMeasuredRates) {
  std::string app = CreateApp(kAlice);
  auto plan = [&] {
    return Json("POST", "/v1/apps/" + app + "/move", kAlice,
                {{"dest_region", "eu-west-1"}, {"dry_run", true}})
        .body;
  };
  json before = plan();
  ASSERT_TRUE(before["strategies"].is_object()) << before;
  for (const char* s : {"offline", "online"}) {
    EXPECT_EQ(before["strategies"][s]["rates"].get<std::string>().rfind("assumed", 0), 0u)
        << before;
  }
  EXPECT_EQ(before["strategies"]["offline"]["copy_bytes_per_second"], 80.0 * 1024 * 1024);
  EXPECT_EQ(before["estimated_write_block_seconds"],
            before["strategies"]["offline"]["estimated_write_block_seconds"]);

  HttpReply m = Json("POST", "/v1/apps/" + app + "/move", kAlice, {{"dest_region", "eu-west-1"}});
  ASSERT_EQ(m.status, 202) << m.raw;
  ASSERT_EQ(WaitDone(kAlice, app, m.body["migration_id"])["status"], "completed");
  ASSERT_EQ(
      Call("DELETE", "/v1/source-replicas/" + m.body["migration_id"].get<std::string>(), kAlice)
          .status,
      200);
  json after = Json("POST", "/v1/apps/" + app + "/move", kAlice,
                    {{"dest_region", "us-east-1"}, {"dry_run", true}})
                   .body;
  EXPECT_EQ(after["strategies"]["offline"]["rates"], "measured by the last 1 offline move(s)")
      << after;
  EXPECT_NE(after["strategies"]["offline"]["copy_bytes_per_second"], 80.0 * 1024 * 1024);
  EXPECT_EQ(after["strategies"]["online"]["rates"].get<std::string>().rfind("assumed", 0), 0u);
}

TEST_F(ApiContract, ConcurrentMovesOneWins) {
  for (int round = 0; round < 5; ++round) {
    std::string app = CreateApp(kAlice);
    std::vector<int> codes(6);
    std::vector<std::string> reasons(6);
    std::vector<std::thread> threads;
    for (int i = 0; i < 6; ++i) {
      threads.emplace_back([&, i] {
        HttpReply r = Json("POST", "/v1/apps/" + app + "/move", kAlice,
                           {{"dest_region", i % 2 ? "eu-west-1" : "ap-southeast-1"}});
        codes[i] = r.status;
        reasons[i] = r.body.is_object() ? r.body.value("reason_code", "") : "";
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(std::count(codes.begin(), codes.end(), 202), 1);
    EXPECT_EQ(std::count(codes.begin(), codes.end(), 409), 5);
    for (int i = 0; i < 6; ++i) {
      if (codes[i] == 409) {
        EXPECT_EQ(reasons[i], "migration_in_flight");
      }
    }
  }
}

TEST_F(ApiContract, MigrationLifecycle) {
  std::string app = CreateApp(kAlice);
  std::string id = Move(app, "eu-west-1");
  json done = WaitDone(kAlice, app, id);
  EXPECT_EQ(done["status"], "completed");
  for (const char* k :
       {"migration_id",    "app_id",       "kind",           "reverse_of", "strategy",
        "source_region",   "dest_region",  "current_step",   "status",     "source_replica_state",
        "retry_count",     "last_error",   "writes_blocked", "abortable",  "reversible",
        "step_started_at", "initiated_at", "completed_at",   "progress",   "resources"}) {
    EXPECT_TRUE(done.contains(k)) << k;
  }
  EXPECT_EQ(done["progress"]["step_count"], 11);
  // Writes were paused from blocking_writes to unblocking_writes: less than the whole move.
  ASSERT_TRUE(done["writes_paused_seconds"].is_number()) << done;
  const double paused = done["writes_paused_seconds"];
  EXPECT_GT(paused, 0);
  EXPECT_LE(paused, static_cast<double>(ParseTimeMs(done["completed_at"]) -
                                        ParseTimeMs(done["initiated_at"])) /
                        1000.0);
  EXPECT_TRUE(done["writes_blocked_since"].is_null());
  EXPECT_EQ(done["reversible"], true);
  EXPECT_EQ(done["source_replica_state"], "replicating");
  HttpReply events = Call("GET", "/v1/apps/" + app + "/migrations/" + id + "/events", kAlice);
  ASSERT_EQ(events.status, 200);
  EXPECT_GE(events.body["events"].size(), 10u);
  EXPECT_EQ(Call("GET", "/v1/apps/" + app + "/migrations/active", kAlice).body["migration"],
            nullptr);
  EXPECT_EQ(Call("GET", "/v1/apps/" + app + "/migrations/nope", kAlice).status, 404);
  EXPECT_EQ(Call("GET", "/v1/apps/" + app + "/migrations/nope/events", kAlice).status, 404);
  HttpReply abort = Call("POST", "/v1/apps/" + app + "/migrations/" + id + "/abort", kAlice);
  EXPECT_EQ(abort.status, 409);
  EXPECT_EQ(abort.body["error"], "not_active");

  // Reverse: fast while replicating. A second reverse sent while the first is in flight, or
  // after it, says so.
  sys_->faults()->ArmDelay("unblocking_writes", 1000, 1);
  HttpReply rev = Call("POST", "/v1/apps/" + app + "/migrations/" + id + "/reverse", kAlice);
  ASSERT_EQ(rev.status, 202) << rev.raw;
  EXPECT_EQ(rev.body["path"], "fast");
  EXPECT_EQ(rev.body["reverse_of"], id);
  std::string rid = rev.body["migration_id"];
  HttpReply twice_rev = Call("POST", "/v1/apps/" + app + "/migrations/" + id + "/reverse", kAlice);
  EXPECT_EQ(twice_rev.status, 409);
  EXPECT_EQ(twice_rev.body["message"],
            "a reverse of migration " + id + " is already in flight: " + rid);
  EXPECT_EQ(WaitDone(kAlice, app, rid)["status"], "completed");
  HttpReply again = Call("POST", "/v1/apps/" + app + "/migrations/" + id + "/reverse", kAlice);
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(again.body["error"], "not_reversible");
  EXPECT_EQ(again.body["message"], "migration " + id + " was already reversed by " + rid);
  HttpReply list = Call("GET", "/v1/apps/" + app + "/migrations", kAlice);
  ASSERT_EQ(list.body["migrations"].size(), 2u);
  EXPECT_EQ(list.body["migrations"][0]["migration_id"], rid);  // newest first

  // Replicas: list, teardown, teardown again.
  HttpReply replicas = Call("GET", "/v1/source-replicas", kAlice);
  ASSERT_EQ(replicas.body["source_replicas"].size(), 1u);
  json r = replicas.body["source_replicas"][0];
  for (const char* k : {"migration_id", "app_id", "source_region", "dest_region", "completed_at",
                        "state", "size_bytes", "lag_bytes", "estimated_monthly_cost_usd"}) {
    EXPECT_TRUE(r.contains(k)) << k;
  }
  EXPECT_EQ(Call("GET", "/v1/source-replicas", kBob).body["source_replicas"].size(), 0u);
  EXPECT_EQ(Call("DELETE", "/v1/source-replicas/" + rid, kBob).status, 404);
  HttpReply torn = Call("DELETE", "/v1/source-replicas/" + rid, kAlice);
  EXPECT_EQ(torn.status, 200);
  EXPECT_EQ(torn.body["status"], "torn_down");
  HttpReply twice = Call("DELETE", "/v1/source-replicas/" + rid, kAlice);
  EXPECT_EQ(twice.status, 409);
  EXPECT_EQ(twice.body["error"], "not_replicating");
  EXPECT_EQ(Call("DELETE", "/v1/source-replicas/nope", kAlice).status, 404);
  HttpReply slow = Call("POST", "/v1/apps/" + app + "/migrations/" + rid + "/reverse", kAlice);
  EXPECT_EQ(slow.body["path"], "slow");
}

TEST_F(ApiContract, AbortBeforeAndAfterCutover) {
  std::string app = CreateApp(kAlice);
  sys_->faults()->ArmDelay("copying_blobs.after_page", 1500);
  Call("PUT", "/v1/apps/" + app + "/blobs/a", kAlice, "data", "text/plain");
  std::string id = Move(app, "eu-west-1");
  // Wait until it is copying (abortable, writes blocked).
  for (int i = 0; i < 200; ++i) {
    json m = Call("GET", "/v1/apps/" + app + "/migrations/active", kAlice).body["migration"];
    if (m.is_object() && m["current_step"] == "copying_blobs") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  HttpReply abort = Call("POST", "/v1/apps/" + app + "/migrations/" + id + "/abort", kAlice);
  ASSERT_EQ(abort.status, 202) << abort.raw;
  EXPECT_EQ(abort.body["status"], "aborting");
  EXPECT_EQ(WaitDone(kAlice, app, id)["status"], "aborted");
  EXPECT_EQ(Call("GET", "/v1/apps/" + app, kAlice).body["region"], "us-east-1");
  HttpReply not_done = Call("POST", "/v1/apps/" + app + "/migrations/" + id + "/reverse", kAlice);
  EXPECT_EQ(not_done.status, 409);
  EXPECT_EQ(not_done.body["error"], "not_reversible");

  sys_->faults()->ArmDelay("unblocking_writes", 1500);
  std::string id2 = Move(app, "eu-west-1");
  for (int i = 0; i < 300; ++i) {
    json m = Call("GET", "/v1/apps/" + app + "/migrations/" + id2, kAlice).body;
    if (m["current_step"] == "unblocking_writes") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  HttpReply late = Call("POST", "/v1/apps/" + app + "/migrations/" + id2 + "/abort", kAlice);
  EXPECT_EQ(late.status, 409);
  EXPECT_EQ(late.body["error"], "cutover_passed");
  EXPECT_NE(late.body["message"].get<std::string>().find("reverse"), std::string::npos);
  HttpReply busy = Call("POST", "/v1/apps/" + app + "/migrations/" + id2 + "/reverse", kAlice);
  EXPECT_EQ(busy.body["error"], "not_reversible");
  EXPECT_EQ(WaitDone(kAlice, app, id2)["status"], "completed");
}

TEST_F(ApiContract, AdminRoutes) {
  for (const char* path : {"/v1/admin/migrations/summary", "/v1/admin/region-state"}) {
    EXPECT_EQ(Call("GET", path, "").status, 401);
    EXPECT_EQ(Call("GET", path, kAlice).status, 403);
    EXPECT_EQ(Call("GET", path, kAlice).body["error"], "forbidden");
  }
  std::string app = CreateApp(kAlice);
  sys_->faults()->ArmDelay("copying_blobs.after_page", 1000);
  Call("PUT", "/v1/apps/" + app + "/blobs/a", kAlice, "data", "text/plain");
  std::string id = Move(app, "eu-west-1");
  HttpReply summary = Call("GET", "/v1/admin/migrations/summary", kAdmin);
  ASSERT_EQ(summary.status, 200);
  ASSERT_EQ(summary.body["by_region_pair"].size(), 1u);
  EXPECT_EQ(summary.body["by_region_pair"][0]["source_region"], "us-east-1");
  EXPECT_EQ(summary.body["by_step"][0]["count"], 1);
  EXPECT_TRUE(summary.body["by_step"][0].contains("oldest_started_at"));
  WaitDone(kAlice, app, id);
  HttpReply state = Call("GET", "/v1/admin/region-state", kAdmin);
  ASSERT_EQ(state.status, 200);
  bool eu = false;
  for (const auto& r : state.body["regions"]) {
    if (r["slug"] == "eu-west-1") eu = r["apps"] == 1 && r["bytes"] > 0;
  }
  EXPECT_TRUE(eu) << state.raw;
  EXPECT_TRUE(state.body["unknown_regions"].empty());
  EXPECT_EQ(Call("GET", "/v1/admin/migrations/summary", kAdmin).body["active_source_replicas"], 1);
  // Repair: 404, 409, then a real one.
  EXPECT_EQ(Call("POST", "/v1/admin/migrations/nope/repair", kAdmin).status, 404);
  EXPECT_EQ(Call("POST", "/v1/admin/migrations/" + id + "/repair", kAdmin).status, 409);
  EXPECT_EQ(Call("POST", "/v1/admin/migrations/" + id + "/repair", kAlice).status, 403);
  sys_->faults()->Arm("unblocking_writes", Permanent("stuck"), 100);
  std::string id2 = Move(app, "ap-southeast-1");
  json failed = WaitDone(kAlice, app, id2);
  EXPECT_EQ(failed["status"], "failed");
  EXPECT_EQ(failed["needs_repair"], true);
  HttpReply not_ready =
      Json("POST", "/v1/apps/" + app + "/move", kAlice, {{"dest_region", "us-east-1"}});
  EXPECT_EQ(not_ready.status, 409);
  EXPECT_EQ(not_ready.body["reason_code"], "app_not_ready");
  sys_->faults()->DisarmAll();
  HttpReply repair = Call("POST", "/v1/admin/migrations/" + id2 + "/repair", kAdmin);
  EXPECT_EQ(repair.status, 202) << repair.raw;
  EXPECT_EQ(WaitDone(kAlice, app, id2)["status"], "completed");
}

TEST_F(ApiContract, DataApi) {
  std::string app = CreateApp(kAlice, "us-east-1", "shop");
  std::string base = "/v1/apps/" + app;
  HttpReply t = Json("POST", base + "/tables", kAlice,
                     {{"name", "orders"},
                      {"columns",
                       {{{"name", "total"}, {"type", "real"}},
                        {{"name", "paid"}, {"type", "boolean"}},
                        {{"name", "note"}, {"type", "text"}}}}});
  ASSERT_EQ(t.status, 201) << t.raw;
  EXPECT_EQ(Json("POST", base + "/tables", kAlice, {{"name", "1x"}, {"columns", json::array()}})
                .body["error"],
            "invalid_name");
  EXPECT_EQ(Json("POST", base + "/tables", kAlice,
                 {{"name", "t2"}, {"columns", {{{"name", "a"}, {"type", "float"}}}}})
                .status,
            400);
  json rows = json::array();
  for (int i = 0; i < 25; ++i) {
    char id[8];
    std::snprintf(id, sizeof(id), "o%02d", i);
    rows.push_back({{"id", id}, {"total", i * 1.5}, {"paid", i % 2 == 0}});
  }
  HttpReply ins = Json("POST", base + "/tables/orders", kAlice, rows);
  ASSERT_EQ(ins.status, 201);
  EXPECT_EQ(ins.body["rows"].size(), 25u);
  HttpReply one = Json("POST", base + "/tables/orders", kAlice, {{"total", 9.0}});
  EXPECT_EQ(one.status, 201);
  EXPECT_FALSE(one.body["rows"][0]["id"].get<std::string>().empty());
  EXPECT_EQ(Json("POST", base + "/tables/orders", kAlice, {{"total", "x"}}).status, 400);
  // Keyset paging by id (the generated id is hex, so it sorts before "o00").
  HttpReply p1 = Call("GET", base + "/tables/orders?limit=10", kAlice);
  ASSERT_EQ(p1.body["rows"].size(), 10u);
  EXPECT_EQ(p1.body["next_after"], "o08");
  HttpReply p3 = Call("GET", base + "/tables/orders?limit=10&after=o19", kAlice);
  EXPECT_EQ(p3.body["rows"].size(), 5u);
  EXPECT_EQ(p3.body["next_after"], nullptr);
  EXPECT_EQ(Call("GET", base + "/tables/orders?limit=1001", kAlice).status, 400);
  EXPECT_EQ(Call("GET", base + "/tables/orders?limit=abc", kAlice).status, 400);
  HttpReply tables = Call("GET", base + "/tables", kAlice);
  EXPECT_EQ(tables.body["tables"][0]["row_count"], 26);
  // Row by id.
  EXPECT_EQ(Call("GET", base + "/tables/orders/o03", kAlice).body["total"], 4.5);
  HttpReply patched = Json("PATCH", base + "/tables/orders/o03", kAlice, {{"note", "gift"}});
  EXPECT_EQ(patched.body["note"], "gift");
  EXPECT_EQ(Call("DELETE", base + "/tables/orders/o03", kAlice).status, 204);
  EXPECT_EQ(Call("GET", base + "/tables/orders/o03", kAlice).status, 404);
  EXPECT_EQ(Call("GET", base + "/tables/nope", kAlice).status, 404);
  // Blobs.
  std::string png(3000, '\x89');
  HttpReply put = Call("PUT", base + "/blobs/img/logo.png", kAlice, png, "image/png");
  ASSERT_EQ(put.status, 201);
  EXPECT_EQ(put.body["size"], 3000);
  EXPECT_EQ(put.body["sha256"], Sha256Hex(png));
  HttpReply get = Call("GET", base + "/blobs/img/logo.png", kAlice);
  EXPECT_EQ(get.raw, png);
  EXPECT_EQ(get.Header("Content-Type"), "image/png");
  Call("PUT", base + "/blobs/img/b.png", kAlice, "b", "image/png");
  Call("PUT", base + "/blobs/doc/c.txt", kAlice, "c", "text/plain");
  HttpReply blobs = Call("GET", base + "/blobs?prefix=img/&limit=1", kAlice);
  ASSERT_EQ(blobs.body["blobs"].size(), 1u);
  EXPECT_EQ(blobs.body["blobs"][0]["key"], "img/b.png");
  EXPECT_EQ(blobs.body["next_after"], "img/b.png");
  EXPECT_EQ(Call("PUT", base + "/blobs/a/../b", kAlice, "x", "text/plain").status, 400);
  EXPECT_EQ(Call("PUT", base + "/blobs/", kAlice, "x", "text/plain").body["error"], "invalid_key");
  EXPECT_EQ(Call("PUT", base + "/blobs/a/%2E%2E/b", kAlice, "x", "text/plain").body["error"],
            "invalid_key");
  EXPECT_EQ(Call("DELETE", base + "/blobs/doc/c.txt", kAlice).status, 204);
  EXPECT_EQ(Call("GET", base + "/blobs/doc/c.txt", kAlice).status, 404);
  // Runtime.
  EXPECT_EQ(Json("PUT", base + "/functions/checkout", kAlice,
                 {{"entrypoint", "index.handler"}, {"runtime", "node20"}, {"code", "x"}})
                .status,
            201);
  HttpReply v2 = Json("PUT", base + "/functions/checkout", kAlice,
                      {{"entrypoint", "index.handler"}, {"runtime", "node20"}, {"code", "y"}});
  EXPECT_EQ(v2.body["version"], 2);
  EXPECT_EQ(Call("GET", base + "/functions/checkout", kAlice).body["code"], "y");
  EXPECT_EQ(Json("PUT", base + "/functions/x", kAlice, {{"runtime", "node20"}}).status, 400);
  EXPECT_EQ(
      Json("PUT", base + "/env/STRIPE_KEY", kAlice, {{"value", "sk"}, {"secret", true}}).status,
      201);
  EXPECT_EQ(Call("GET", base + "/env/STRIPE_KEY", kAlice).body["value"], "********");
  EXPECT_EQ(Json("PUT", base + "/env/1-BAD", kAlice, {{"value", "x"}}).body["error"],
            "invalid_name");
  EXPECT_EQ(Json("PUT", base + "/cron/nightly", kAlice,
                 {{"schedule", "0 3 * * *"}, {"function", "checkout"}})
                .status,
            201);
  EXPECT_EQ(Json("PUT", base + "/cron/bad", kAlice,
                 {{"schedule", "61 * * * *"}, {"function", "checkout"}})
                .status,
            400);
  EXPECT_EQ(
      Json("PUT", base + "/cron/orphan", kAlice, {{"schedule", "* * * * *"}, {"function", "nope"}})
          .status,
      400);
  EXPECT_EQ(Call("PUT", base + "/domains/shop.example.com", kAlice).status, 201);
  std::string other = CreateApp(kBob);
  HttpReply dup = Call("PUT", "/v1/apps/" + other + "/domains/shop.example.com", kBob);
  EXPECT_EQ(dup.status, 409);
  EXPECT_EQ(dup.body["error"], "domain_taken");
  EXPECT_EQ(Call("GET", base + "/functions", kAlice).body["functions"].size(), 1u);
  EXPECT_EQ(Call("GET", base + "/env", kAlice).body["env"].size(), 1u);
  EXPECT_EQ(Call("GET", base + "/cron", kAlice).body["cron"].size(), 1u);
  EXPECT_EQ(Call("GET", base + "/domains", kAlice).body["domains"].size(), 1u);
  // The app's own hosts reach it.
  HttpReply by_sub =
      Call("GET", "/tables/orders/o04", kAlice, "", "", {{"Host", "shop.apps.localhost"}});
  EXPECT_EQ(by_sub.status, 200) << by_sub.raw;
  HttpReply by_domain =
      Call("GET", "/blobs/img/b.png", kAlice, "", "", {{"Host", "shop.example.com:8080"}});
  EXPECT_EQ(by_domain.raw, "b");
  EXPECT_EQ(Call("GET", "/tables", kAlice, "", "", {{"Host", "nobody.example.com"}}).status, 404);
  EXPECT_EQ(Call("DELETE", base + "/domains/shop.example.com", kAlice).status, 204);
  EXPECT_EQ(Call("GET", "/tables", kAlice, "", "", {{"Host", "shop.example.com"}}).status, 404);
}

TEST_F(ApiContract, GuardAnswers503BeforeAuthAndReadsKeepWorking) {
  std::string app = CreateApp(kAlice);
  std::string base = "/v1/apps/" + app;
  Json("POST", base + "/tables", kAlice, {{"name", "t"}, {"columns", json::array()}});
  Json("POST", base + "/tables/t", kAlice, {{"id", "r1"}});
  Call("PUT", base + "/blobs/a", kAlice, "data", "text/plain");
  sys_->faults()->ArmDelay("copying_blobs.after_page", 1500);
  std::string id = Move(app, "eu-west-1");
  for (int i = 0; i < 200; ++i) {
    json m = Call("GET", base + "/migrations/active", kAlice).body["migration"];
    if (m.is_object() && m["writes_blocked"] == true) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  HttpReply w = Json("POST", base + "/tables/t", kAlice, {{"id", "r2"}});
  EXPECT_EQ(w.status, 503);
  EXPECT_EQ(w.body["error"], "app_migrating");
  EXPECT_EQ(w.body["migration_id"], id);
  EXPECT_TRUE(w.body.contains("step"));
  int retry = std::stoi(w.Header("Retry-After").empty() ? "0" : w.Header("Retry-After"));
  EXPECT_GE(retry, 1);
  // Before authentication and body parsing.
  EXPECT_EQ(Call("POST", base + "/tables/t", "", "{not json").status, 503);
  EXPECT_EQ(Call("PUT", base + "/blobs/b", "", "x", "text/plain").status, 503);
  EXPECT_EQ(Call("DELETE", base + "/env/X", "bad").status, 503);
  // Reads keep working.
  EXPECT_EQ(Call("GET", base + "/tables/t/r1", kAlice).status, 200);
  EXPECT_EQ(Call("GET", base + "/blobs/a", kAlice).raw, "data");
  EXPECT_EQ(WaitDone(kAlice, app, id)["status"], "completed");
  EXPECT_EQ(Json("POST", base + "/tables/t", kAlice, {{"id", "r2"}}).status, 201);
  HttpReply metrics = Call("GET", "/metrics", "");
  EXPECT_NE(metrics.raw.find("regionmove_guard_rejections_total"), std::string::npos);
  EXPECT_NE(metrics.raw.find("regionmove_step_duration_seconds_bucket"), std::string::npos);
}

class DefaultLimits : public HttpFixture {
 protected:
  void SetUp() override { StartServer(); }
};

// curl --data-binary sends application/x-www-form-urlencoded unless told otherwise; a blob
// body is still taken raw, whatever its size (up to max_body_bytes).
TEST_F(DefaultLimits, FormEncodedBlobBodiesAreRaw) {
  std::string app = CreateApp(kAlice);
  std::string form(200000, 'z');
  HttpReply put = Call("PUT", "/v1/apps/" + app + "/blobs/form.bin", kAlice, form,
                       "application/x-www-form-urlencoded");
  EXPECT_EQ(put.status, 201) << put.raw.substr(0, 200);
  HttpReply got = Call("GET", "/v1/apps/" + app + "/blobs/form.bin", kAlice);
  EXPECT_EQ(got.raw.size(), form.size());
  EXPECT_EQ(Sha256Hex(got.raw), Sha256Hex(form));
}

// What `curl -X POST` sends: no Content-Length, no body.
std::string RawRequest(int port, const std::string& head) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return "";
  std::string req = head + "Host: 127.0.0.1\r\nConnection: close\r\n\r\n";
  (void)!::write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

TEST_F(ApiContract, BodylessPostsAndDeletesWork) {
  std::string app = CreateApp(kAlice);
  Call("PUT", "/v1/apps/" + app + "/blobs/x", kAlice, "x", "text/plain");
  std::string id = Move(app, "eu-west-1");
  WaitDone(kAlice, app, id);
  std::string rev =
      RawRequest(api_->port(), "POST /v1/apps/" + app + "/migrations/" + id +
                                   "/reverse HTTP/1.1\r\nAuthorization: Bearer " + kAlice + "\r\n");
  EXPECT_EQ(rev.rfind("HTTP/1.1 202", 0), 0u) << rev;
  EXPECT_NE(rev.find("\"path\":\"fast\""), std::string::npos) << rev;
  std::string abort =
      RawRequest(api_->port(), "POST /v1/apps/" + app + "/migrations/" + id +
                                   "/abort HTTP/1.1\r\nAuthorization: Bearer " + kAlice + "\r\n");
  EXPECT_EQ(abort.rfind("HTTP/1.1 409", 0), 0u) << abort;
  std::string unauth = RawRequest(api_->port(), "POST /v1/apps/" + app + "/move HTTP/1.1\r\n");
  EXPECT_EQ(unauth.rfind("HTTP/1.1 401", 0), 0u) << unauth;
}

// Blob bodies have their own limit (server.max_blob_bytes), apart from JSON bodies
// (max_body_bytes, 4096 here); they stream in sized or chunked, and out whole or by Range.
class BlobLimits : public HttpFixture {
 protected:
  void SetUp() override { StartServer("", "max_body_bytes = 4096\nmax_blob_bytes = 3000000\n"); }
};

TEST_F(BlobLimits, BlobBodiesStreamUpToTheirOwnLimit) {
  std::string app = CreateApp(kAlice);
  const std::string base = "/v1/apps/" + app + "/blobs/";
  Rng rng(9);
  std::string data(2500000, '\0');
  for (auto& c : data) c = static_cast<char>(rng.Next());
  HttpReply put = Call("PUT", base + "big.bin", kAlice, data, "application/x-big");
  ASSERT_EQ(put.status, 201) << put.raw.substr(0, 300);
  EXPECT_EQ(put.body["sha256"], Sha256Hex(data));
  // Chunked (no Content-Length): the limit holds while it streams.
  httplib::Client c("127.0.0.1", api_->port());
  httplib::Headers auth = {{"Authorization", "Bearer " + kAlice}};
  auto chunked = [&](size_t total) {
    size_t sent = 0;
    return c.Put(
        base + "chunked.bin", auth,
        [&, total](size_t, httplib::DataSink& sink) {
          size_t n = std::min<size_t>(65536, total - sent);
          sink.write(data.data() + (sent % 1000000), n);
          sent += n;
          if (sent == total) sink.done();
          return true;
        },
        "application/octet-stream");
  };
  auto ok = chunked(1000000);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 201) << ok->body;
  EXPECT_EQ(Call("GET", base + "chunked.bin", kAlice).raw.size(), 1000000u);
  // Refused from the header, before any of the body is read.
  std::string over =
      RawRequest(api_->port(), "PUT " + base + "over.bin HTTP/1.1\r\nAuthorization: Bearer " +
                                   kAlice + "\r\nContent-Length: 3000001\r\n");
  EXPECT_EQ(over.rfind("HTTP/1.1 413", 0), 0u) << over;
  EXPECT_NE(over.find("payload_too_large"), std::string::npos) << over;
  auto chunked_over = chunked(3500000);
  if (chunked_over) {
    EXPECT_EQ(chunked_over->status, 413);  // or the connection was cut
  }
  EXPECT_EQ(Call("GET", base + "chunked.bin", kAlice).raw.size(), 1000000u);  // unchanged
  EXPECT_EQ(Call("GET", base + "over.bin", kAlice).status, 404);
  // Nothing of the refused uploads shows.
  HttpReply list = Call("GET", "/v1/apps/" + app + "/blobs", kAlice);
  EXPECT_EQ(list.body["blobs"].size(), 2u) << list.raw;
  // JSON bodies keep their own limit.
  EXPECT_EQ(Call("POST", "/v1/apps", kAlice, std::string(5000, ' ')).status, 413);

  // Whole, then by Range: one, a suffix, several, and one past the end.
  HttpReply whole = Call("GET", base + "big.bin", kAlice);
  EXPECT_EQ(whole.status, 200);
  EXPECT_TRUE(whole.raw == data);
  EXPECT_EQ(whole.Header("Content-Type"), "application/x-big");
  EXPECT_EQ(whole.Header("Accept-Ranges"), "bytes");
  HttpReply part =
      Call("GET", base + "big.bin", kAlice, "", "", {{"Range", "bytes=1000000-1000099"}});
  EXPECT_EQ(part.status, 206);
  EXPECT_TRUE(part.raw == data.substr(1000000, 100));
  EXPECT_EQ(part.Header("Content-Range"), "bytes 1000000-1000099/2500000");
  HttpReply tail = Call("GET", base + "big.bin", kAlice, "", "", {{"Range", "bytes=-10"}});
  EXPECT_EQ(tail.status, 206);
  EXPECT_TRUE(tail.raw == data.substr(data.size() - 10));
  HttpReply two =
      Call("GET", base + "big.bin", kAlice, "", "", {{"Range", "bytes=0-4,2000000-2000004"}});
  EXPECT_EQ(two.status, 206);
  EXPECT_NE(two.raw.find(data.substr(2000000, 5)), std::string::npos);
  HttpReply past = Call("GET", base + "big.bin", kAlice, "", "", {{"Range", "bytes=2500000-"}});
  EXPECT_EQ(past.status, 416);
  EXPECT_EQ(past.Header("Content-Range"), "bytes */2500000");
}

}  // namespace
}  // namespace regionmove::testing
