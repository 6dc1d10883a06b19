// A writer hammers the app data API over HTTP while a move, an abort and a fast reverse run.
// Every write answered 2xx must be present afterwards in the region that serves the app.
#include <atomic>
#include <set>

#include "http/http_util.h"

namespace regionmove::testing {
namespace {

using nlohmann::json;
const std::string kAlice = "alice-token";

class ContinuousWriter : public HttpFixture {
 protected:
  void SetUp() override { StartServer(); }

  void WaitBlocked(const std::string& app) {
    for (int i = 0; i < 500; ++i) {
      json m = Call("GET", "/v1/apps/" + app + "/migrations/active", kAlice).body["migration"];
      if (m.is_object() && m["writes_blocked"] == true) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    FAIL() << "writes never blocked";
  }
};

TEST_F(ContinuousWriter, NothingAcknowledgedIsLost) {
  std::string app = CreateApp(kAlice);
  std::string base = "/v1/apps/" + app;
  ASSERT_EQ(
      Json("POST", base + "/tables", kAlice, {{"name", "w"}, {"columns", json::array()}}).status,
      201);
  ASSERT_EQ(Call("PUT", base + "/blobs/seed", kAlice, "seed", "text/plain").status, 201);
  // Each copy step lingers so the blocked window is wide enough to be hit many times.
  sys_->faults()->ArmDelay("copying_blobs.after_page", 600, 10);

  std::atomic<bool> stop{false};
  std::vector<std::string> acked;
  int blocked = 0, bad_retry_after = 0;
  std::vector<std::string> other;
  std::thread writer([&] {
    httplib::Client c("127.0.0.1", api_->port());
    httplib::Headers h = {{"Authorization", "Bearer " + kAlice}};
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(40);
    for (int i = 0; i < 20000 && !stop.load() && std::chrono::steady_clock::now() < deadline; ++i) {
      // Rows and blobs alternate: both must survive.
      std::string id = "w" + std::to_string(100000 + i);
      auto r = i % 2 ? c.Put(base + "/blobs/" + id, h, id, "text/plain")
                     : c.Post(base + "/tables/w", h, json{{"id", id}}.dump(), "application/json");
      if (r && r->status == 201) {  // both answer 201
        acked.push_back(id);
      } else if (r && r->status == 503) {
        ++blocked;
        std::string ra = r->get_header_value("Retry-After");
        json body = json::parse(r->body, nullptr, false);
        if (ra.empty() || std::stoi(ra) < 1 || !body.is_object() ||
            body.value("error", "") != "app_migrating") {
          ++bad_retry_after;
        }
      } else {
        other.push_back(r ? std::to_string(r->status) + " " + r->body
                          : httplib::to_string(r.error()));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });

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
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // some writes after the end
  stop = true;
  writer.join();

  EXPECT_EQ(Call("GET", "/v1/apps/" + app, kAlice).body["region"], "us-east-1");
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
  for (const auto& id : acked) lost += present.count(id) == 0;
  // A blob's content is its key: spot-check the last acknowledged ones.
  for (size_t i = acked.size() > 20 ? acked.size() - 20 : 0; i < acked.size(); ++i) {
    int n = std::stoi(acked[i].substr(1)) - 100000;
    if (n % 2) {
      EXPECT_EQ(Call("GET", base + "/blobs/" + acked[i], kAlice).raw, acked[i]);
    }
  }
  std::printf("continuous writer: acked=%zu blocked=%d lost=%d other=%zu present=%zu\n",
              acked.size(), blocked, lost, other.size(), present.size());
  EXPECT_EQ(lost, 0);
  EXPECT_GT(acked.size(), 0u);
  EXPECT_GT(blocked, 0);
  EXPECT_EQ(bad_retry_after, 0);
  EXPECT_TRUE(other.empty()) << other.front();
  EXPECT_EQ(present.size(), acked.size());  // and nothing unacknowledged appeared
}

}  // namespace
}  // namespace regionmove::testing
