// A writer hammers the app data API over HTTP while a move, an abort and a fast reverse run.
// Every write answered 2xx must be present afterwards in the region that serves the app.
#include <atomic>
#include <functional>
#include <set>

#include "http/http_util.h"

namespace regionmove::testing {
namespace {

using nlohmann::json;
const std::string kAlice = "alice-token";

class ContinuousWriter : public HttpFixture {
 protected:
  void SetUp() override { StartServer(); }

  // The active migration's state, polled until `done(migration)` holds (at most 5 s).
  void WaitActive(const std::string& app, const std::function<bool(const json&)>& done,
                  const char* what) {
    for (int i = 0; i < 1000; ++i) {
      json m = Call("GET", "/v1/apps/" + app + "/migrations/active", kAlice).body["migration"];
      if (m.is_object() && done(m)) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    FAIL() << what;
  }
  void WaitBlocked(const std::string& app) {
    WaitActive(
        app, [](const json& m) { return m["writes_blocked"] == true; }, "writes never blocked");
  }

  // Writes rows and blobs (alternately) to the app until stopped, recording the answers.
  struct Writer {
    std::atomic<bool> stop{false};
    std::atomic<int> acked_count{0};
    std::vector<std::string> acked;
    std::atomic<int> blocked{0};
    int bad_retry_after = 0;
    std::vector<std::string> other;
    std::thread thread;
  };
  void StartWriter(Writer* w, const std::string& base) {
    w->thread = std::thread([this, w, base] {
      httplib::Client c("127.0.0.1", api_->port());
      httplib::Headers h = {{"Authorization", "Bearer " + kAlice}};
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(40);
      for (int i = 0; i < 20000 && !w->stop.load() && std::chrono::steady_clock::now() < deadline;
           ++i) {
        std::string id = "w" + std::to_string(100000 + i);
        auto r = i % 2 ? c.Put(base + "/blobs/" + id, h, id, "text/plain")
                       : c.Post(base + "/tables/w", h, json{{"id", id}}.dump(), "application/json");
        if (r && r->status == 201) {  // both answer 201
          w->acked.push_back(id);
          ++w->acked_count;
        } else if (r && r->status == 503) {
          ++w->blocked;
          std::string ra = r->get_header_value("Retry-After");
          json body = json::parse(r->body, nullptr, false);
          if (ra.empty() || std::stoi(ra) < 1 || !body.is_object() ||
              body.value("error", "") != "app_migrating") {
            ++w->bad_retry_after;
          }
        } else {
          w->other.push_back(r ? std::to_string(r->status) + " " + r->body
                               : httplib::to_string(r.error()));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    });
  }

  // Stops the writer and checks that every acknowledged write is in the region serving the
  // app, and nothing else.
  void StopAndCheck(Writer* w, const std::string& base) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // some writes after the end
    w->stop = true;
    w->thread.join();
    std::set<std::string> present;
    // Every id of a keyset-paged listing: rows by "id", blobs by "key".
    auto collect = [&](const std::string& path, const char* list, const char* key) {
      std::string after;
      while (true) {
        HttpReply page = Call("GET", path + "&after=" + after, kAlice);
        ASSERT_EQ(page.status, 200);
        for (const auto& item : page.body[list]) present.insert(item[key].get<std::string>());
        if (page.body["next_after"].is_null()) break;
        after = page.body["next_after"];
      }
    };
    collect(base + "/tables/w?limit=1000", "rows", "id");
    collect(base + "/blobs?prefix=w&limit=1000", "blobs", "key");
    int lost = 0;
    for (const auto& id : w->acked) lost += present.count(id) == 0;
    // A blob's content is its key: spot-check the last acknowledged ones.
    for (size_t i = w->acked.size() > 20 ? w->acked.size() - 20 : 0; i < w->acked.size(); ++i) {
      int n = std::stoi(w->acked[i].substr(1)) - 100000;
      if (n % 2) {
        EXPECT_EQ(Call("GET", base + "/blobs/" + w->acked[i], kAlice).raw, w->acked[i]);
      }
    }
    std::printf("continuous writer: acked=%zu blocked=%d lost=%d other=%zu present=%zu\n",
                w->acked.size(), w->blocked.load(), lost, w->other.size(), present.size());
    EXPECT_EQ(lost, 0);
    EXPECT_GT(w->acked.size(), 0u);
    EXPECT_EQ(w->bad_retry_after, 0);
    EXPECT_TRUE(w->other.empty()) << w->other.front();
    EXPECT_EQ(present.size(), w->acked.size());  // and nothing unacknowledged appeared
  }

  // Restarts the server with `server_toml` / `saga_toml`, makes an app, arms a delay of `ms` at
  // fault point `point` `times` times, starts a writer on the app and requests an online move to
  // eu-west-1. Returns the migration's id.
  std::string StartOnlineMoveUnderWrites(Writer* w, std::string* app,
                                         const std::string& server_toml,
                                         const std::string& saga_toml, const std::string& point,
                                         int ms, int times) {
    TearDown();
    StartServer("", server_toml, saga_toml);
    *app = AppWithTable();
    sys_->faults()->ArmDelay(point, ms, times);
    StartWriter(w, "/v1/apps/" + *app);
    HttpReply m = Json("POST", "/v1/apps/" + *app + "/move", kAlice,
                       {{"dest_region", "eu-west-1"}, {"strategy", "online"}});
    EXPECT_EQ(m.status, 202) << m.raw;
    return m.body.value("migration_id", "");
  }

  std::string AppWithTable() {
    std::string app = CreateApp(kAlice);
    std::string base = "/v1/apps/" + app;
    EXPECT_EQ(
        Json("POST", base + "/tables", kAlice, {{"name", "w"}, {"columns", json::array()}}).status,
        201);
    EXPECT_EQ(Call("PUT", base + "/blobs/seed", kAlice, "seed", "text/plain").status, 201);
    return app;
  }
};

TEST_F(ContinuousWriter, NothingAcknowledgedIsLost) {
  std::string app = AppWithTable();
  std::string base = "/v1/apps/" + app;
  // Each copy step lingers so the blocked window is wide enough to be hit many times.
  sys_->faults()->ArmDelay("copying_blobs.after_page", 600, 10);
  Writer w;
  StartWriter(&w, base);

  // 1. A move that completes.
  HttpReply m1 = Json("POST", base + "/move", kAlice, {{"dest_region", "eu-west-1"}});
  ASSERT_EQ(m1.status, 202);
  std::string id1 = m1.body["migration_id"];
  EXPECT_EQ(WaitDone(kAlice, app, id1)["status"], "completed");
  // 2. A move that is aborted while writes are blocked.
  HttpReply m2 = Json("POST", base + "/move", kAlice, {{"dest_region", "ap-southeast-1"}});
  ASSERT_EQ(m2.status, 202);
  std::string id2 = m2.body["migration_id"];
  WaitBlocked(app);
  EXPECT_EQ(Call("POST", base + "/migrations/" + id2 + "/abort", kAlice).status, 202);
  EXPECT_EQ(WaitDone(kAlice, app, id2)["status"], "aborted");
  // 3. A fast reverse of the first move.
  HttpReply rev = Call("POST", base + "/migrations/" + id1 + "/reverse", kAlice);
  ASSERT_EQ(rev.status, 202) << rev.raw;
  EXPECT_EQ(rev.body["path"], "fast");
  EXPECT_EQ(WaitDone(kAlice, app, rev.body["migration_id"])["status"], "completed");
  StopAndCheck(&w, base);
  EXPECT_GT(w.blocked.load(), 0);
  EXPECT_EQ(Call("GET", "/v1/apps/" + app, kAlice).body["region"], "us-east-1");
}

// An online move copies while the writer keeps writing (the syncing step lingers here, and
// the writer's writes go on being acknowledged through it), blocks only for the final
// catch-up, and loses nothing; its fast reverse works as an offline move's does; an online move
// aborted while syncing leaves the app where it was, writable throughout.
TEST_F(ContinuousWriter, OnlineMoveKeepsTakingWritesWhileItCopies) {
  std::string app = AppWithTable();
  std::string base = "/v1/apps/" + app;
  sys_->faults()->ArmDelay("syncing.after", 800, 1);  // writes land after the copy's point
  // The pause lasts at least 300 ms: writes arrive during it and are held, not refused.
  sys_->faults()->ArmDelay("unblocking_writes", 300, 1);
  Writer w;
  StartWriter(&w, base);

  HttpReply m1 =
      Json("POST", base + "/move", kAlice, {{"dest_region", "eu-west-1"}, {"strategy", "online"}});
  ASSERT_EQ(m1.status, 202) << m1.raw;
  std::string id1 = m1.body["migration_id"];
  WaitActive(
      app, [](const json& m) { return m["current_step"] == "syncing"; }, "never synced");
  const int acked_at_sync = w.acked_count;
  WaitBlocked(app);
  const int acked_while_syncing = w.acked_count - acked_at_sync;
  json done = WaitDone(kAlice, app, id1);
  EXPECT_EQ(done["status"], "completed");
  EXPECT_EQ(done["strategy"], "online");
  EXPECT_EQ(done["progress"]["step_count"], 12);
  // The lag gate let the pause start with at most max_block_seconds of catch-up predicted.
  ASSERT_TRUE(done["progress"]["predicted_block_seconds"].is_number()) << done["progress"];
  EXPECT_LE(done["progress"]["predicted_block_seconds"].get<double>(), 2.0);
  // The 800 ms after the copy alone take hundreds on a quiet machine, dozens on a loaded one.
  EXPECT_GT(acked_while_syncing, 10);
  EXPECT_EQ(Call("GET", "/v1/apps/" + app, kAlice).body["region"], "eu-west-1");
  // Checked whole at the copy's snapshot, then, under the pause, the rows the stream changed.
  ASSERT_OK_AND_ASSIGN(Migration moved, sys_->store()->GetMigration(id1));
  json res = json::parse(moved.resources);
  EXPECT_TRUE(res["verified_at_copy"]["rows"].is_number()) << res;
  EXPECT_EQ(res["verified"]["scope"], "changed_rows") << res;
  EXPECT_GT(res["verified"]["changed_keys"].get<int64_t>(), 10) << res;
  // The writer is past the pause (the write it held answered) before its answers are counted.
  for (int acked = w.acked_count, i = 0; w.acked_count < acked + 2 && i < 500; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(w.blocked.load(), 0);  // every write of the pause was held and then served
  EXPECT_GT(sys_->metrics()->Value("regionmove_guard_buffered_total", "outcome=\"served\""), 0);

  HttpReply rev = Call("POST", base + "/migrations/" + id1 + "/reverse", kAlice);
  ASSERT_EQ(rev.status, 202) << rev.raw;
  EXPECT_EQ(rev.body["path"], "fast");
  EXPECT_EQ(WaitDone(kAlice, app, rev.body["migration_id"])["status"], "completed");

  sys_->faults()->ArmDelay("syncing.after_copy", 1500, 1);
  HttpReply m2 = Json("POST", base + "/move", kAlice,
                      {{"dest_region", "ap-southeast-1"}, {"strategy", "online"}});
  ASSERT_EQ(m2.status, 202) << m2.raw;
  std::string id2 = m2.body["migration_id"];
  WaitActive(
      app, [](const json& m) { return m["current_step"] == "syncing"; }, "never synced");
  EXPECT_EQ(Call("POST", base + "/migrations/" + id2 + "/abort", kAlice).status, 202);
  json aborted = WaitDone(kAlice, app, id2);
  EXPECT_EQ(aborted["status"], "aborted");
  EXPECT_EQ(aborted["current_step"], "aborted");
  ASSERT_OK_AND_ASSIGN(Migration stopped, sys_->store()->GetMigration(id2));
  EXPECT_EQ(stopped.stopped_at, Step::kSyncing);
  StopAndCheck(&w, base);
  EXPECT_EQ(Call("GET", "/v1/apps/" + app, kAlice).body["region"], "us-east-1");
  // Nothing of the aborted sync is left in its destination.
  RegionPlane* ap = sys_->plane()->Region("ap-southeast-1");
  ASSERT_OK_AND_ASSIGN(bool there, ap->db->Exists(app));
  EXPECT_FALSE(there);
}

// A pause longer than server.buffer_writes_seconds: the held writes are answered 503 when their
// wait runs out, and nothing is lost.
TEST_F(ContinuousWriter, OnlinePauseLongerThanTheBufferIsAnswered503) {
  std::string app;
  Writer w;
  std::string id = StartOnlineMoveUnderWrites(&w, &app, "buffer_writes_seconds = 1\n", "",
                                              "unblocking_writes", 2500, 1);
  std::string base = "/v1/apps/" + app;
  EXPECT_EQ(WaitDone(kAlice, app, id)["status"], "completed");
  StopAndCheck(&w, base);
  EXPECT_GT(w.blocked.load(), 0);
  EXPECT_GT(sys_->metrics()->Value("regionmove_guard_buffered_total", "outcome=\"timed_out\""), 0);
}

// An online move whose pause outlasts saga.block_budget_seconds never flips late: the app goes
// back to its source (writes resume) and the move syncs again; the next pause fits and the move
// completes. Nothing acknowledged is lost, and no write is refused (held ones are served).
TEST_F(ContinuousWriter, OnlinePauseOverItsBudgetSyncsAgainAndNeverFlipsLate) {
  std::string app;
  Writer w;  // the first pause only is stretched past the budget
  std::string id = StartOnlineMoveUnderWrites(&w, &app, "", "block_budget_seconds = 1\n",
                                              "copying_runtime.before", 1500, 1);
  std::string base = "/v1/apps/" + app;
  EXPECT_EQ(WaitDone(kAlice, app, id)["status"], "completed");
  StopAndCheck(&w, base);
  EXPECT_EQ(w.blocked.load(), 0);
  json events = Call("GET", base + "/migrations/" + id + "/events", kAlice).body["events"];
  int over = 0, flips = 0, syncs = 0;
  for (const auto& e : events) {
    if (e["type"] == "block_budget_exceeded") {
      ++over;
      EXPECT_EQ(e["from"], "flipping_routing");
      EXPECT_EQ(e["to"], "syncing");
      EXPECT_EQ(flips, 0);  // before any flip
    }
    if (e["type"] == "transition" && e["from"] == "flipping_routing") ++flips;
    if (e["type"] == "transition" && e["from"] == "syncing") ++syncs;
  }
  EXPECT_EQ(over, 1);
  EXPECT_EQ(flips, 1);
  EXPECT_EQ(syncs, 2);
  EXPECT_EQ(Call("GET", "/v1/apps/" + app, kAlice).body["region"], "eu-west-1");
}

// Every pause over its budget: after the last one the move fails with the app in its source,
// writable, and nothing of it left in the destination.
TEST_F(ContinuousWriter, OnlinePausesOverBudgetEveryTimeFailTheMoveInItsSource) {
  std::string app;
  Writer w;
  std::string id = StartOnlineMoveUnderWrites(&w, &app, "", "block_budget_seconds = 1\n",
                                              "copying_runtime.before", 1200, 10);
  std::string base = "/v1/apps/" + app;
  json done = WaitDone(kAlice, app, id);
  EXPECT_EQ(done["status"], "failed");
  EXPECT_NE(done["last_error"].get<std::string>().find("budget"), std::string::npos) << done;
  StopAndCheck(&w, base);
  EXPECT_EQ(Call("GET", "/v1/apps/" + app, kAlice).body["region"], "us-east-1");
  ASSERT_OK_AND_ASSIGN(bool there, sys_->plane()->Region("eu-west-1")->db->Exists(app));
  EXPECT_FALSE(there);
  EXPECT_EQ(Json("POST", base + "/tables/w", kAlice, {{"id", "after"}}).status, 201);
}

}  // namespace
}  // namespace regionmove::testing
