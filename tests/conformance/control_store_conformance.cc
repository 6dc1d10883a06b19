// The conformance suite of the ControlStore port: every engine must pass all of it.
#include "conformance/control_store_conformance.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/hash.h"

namespace regionmove::testing {

void ControlStoreConformance::SetUp() {
  auto s = GetParam().open(dir_.path());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  store_ = std::move(s).value();
}

std::unique_ptr<ControlStore> ControlStoreConformance::OpenAnother() {
  auto s = GetParam().open(dir_.path());
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

namespace {

App MakeApp(const std::string& id, const std::string& owner = "alice",
            const std::string& region = "us-east-1") {
  App a;
  a.id = id;
  a.name = "shop " + id;
  a.owner = owner;
  a.subdomain = id + ".apps.test";
  a.region = region;
  a.created_at_ms = 1000;
  return a;
}

Migration MakeMigration(const std::string& id, const std::string& app_id,
                        const std::string& src = "us-east-1", const std::string& dst = "eu-west-1",
                        int64_t at = 1000) {
  Migration m;
  m.id = id;
  m.app_id = app_id;
  m.owner = "alice";
  m.source_region = src;
  m.dest_region = dst;
  m.initiated_at_ms = at;
  return m;
}

TEST_P(ControlStoreConformance, AppsAndRoutes) {
  ASSERT_OK(store_->CreateApp(MakeApp("app_aaaaaaaaaaaa")));
  ASSERT_OK(store_->CreateApp(MakeApp("app_bbbbbbbbbbbb", "bob")));
  ASSERT_OK_AND_ASSIGN(App a, store_->GetApp("app_aaaaaaaaaaaa"));
  EXPECT_EQ(a.owner, "alice");
  EXPECT_EQ(a.region, "us-east-1");
  EXPECT_EQ(a.status, kAppReady);
  EXPECT_EQ(store_->GetApp("app_cccccccccccc").status().code(), StatusCode::kNotFound);

  App dup = MakeApp("app_cccccccccccc");
  dup.subdomain = "app_aaaaaaaaaaaa.apps.test";
  Status s = store_->CreateApp(dup);
  EXPECT_EQ(s.reason(), "subdomain_taken") << s.ToString();
  EXPECT_EQ(store_->GetApp("app_cccccccccccc").status().code(), StatusCode::kNotFound);

  ASSERT_OK_AND_ASSIGN(auto alice_apps, store_->ListApps("alice"));
  ASSERT_EQ(alice_apps.size(), 1u);
  ASSERT_OK_AND_ASSIGN(auto all, store_->ListApps(""));
  EXPECT_EQ(all.size(), 2u);

  ASSERT_OK(store_->AddRoute(Route{"shop.example.com", "app_aaaaaaaaaaaa", "", true}));
  ASSERT_OK(store_->AddRoute(Route{"shop.example.com", "app_aaaaaaaaaaaa", "", true}));
  EXPECT_EQ(store_->AddRoute(Route{"shop.example.com", "app_bbbbbbbbbbbb", "", true}).reason(),
            "domain_taken");
  ASSERT_OK_AND_ASSIGN(Route r, store_->ResolveHost("shop.example.com"));
  EXPECT_EQ(r.app_id, "app_aaaaaaaaaaaa");
  EXPECT_EQ(r.region, "us-east-1");
  ASSERT_OK_AND_ASSIGN(auto routes, store_->ListRoutes("app_aaaaaaaaaaaa"));
  EXPECT_EQ(routes.size(), 2u);
  ASSERT_OK(store_->RemoveRoute("shop.example.com"));
  EXPECT_EQ(store_->ResolveHost("shop.example.com").status().code(), StatusCode::kNotFound);
  // The subdomain route is not a custom domain and cannot be removed as one.
  EXPECT_EQ(store_->RemoveRoute("app_aaaaaaaaaaaa.apps.test").code(), StatusCode::kNotFound);
}

TEST_P(ControlStoreConformance, MigrationRoundTripsEveryField) {
  ASSERT_OK(store_->CreateApp(MakeApp("app_aaaaaaaaaaaa")));
  Migration m = MakeMigration("m1", "app_aaaaaaaaaaaa");
  m.kind = "reverse";
  m.reverse_of = "m0";
  m.reverse_path = "fast";
  m.resources = R"({"dest_db":"x"})";
  ASSERT_OK(store_->CreateMigration(m));
  ASSERT_OK_AND_ASSIGN(Migration got, store_->GetMigration("m1"));
  EXPECT_EQ(got.kind, "reverse");
  EXPECT_EQ(got.reverse_of, "m0");
  // A fast path needs a replicating forward replica when the row is written; m0 has none.
  EXPECT_EQ(got.reverse_path, "slow");
  EXPECT_EQ(got.current_step, Step::kRequested);
  EXPECT_EQ(got.resources, R"({"dest_db":"x"})");
  EXPECT_EQ(got.source_replica_state, kReplicaNone);
  ASSERT_OK_AND_ASSIGN(App a, store_->GetApp("app_aaaaaaaaaaaa"));
  EXPECT_EQ(a.status, kAppMigrating);
  EXPECT_EQ(store_->CreateMigration(MakeMigration("m2", "app_nonexistent1")).code(),
            StatusCode::kNotFound);
}

TEST_P(ControlStoreConformance, OneActiveMigrationPerApp) {
  ASSERT_OK(store_->CreateApp(MakeApp("app_aaaaaaaaaaaa")));
  ASSERT_OK(store_->CreateMigration(MakeMigration("m1", "app_aaaaaaaaaaaa")));
  Status s = store_->CreateMigration(MakeMigration("m2", "app_aaaaaaaaaaaa"));
  EXPECT_EQ(s.reason(), "migration_in_flight") << s.ToString();
  ASSERT_OK_AND_ASSIGN(auto active, store_->GetActiveMigration("app_aaaaaaaaaaaa"));
  ASSERT_TRUE(active.has_value());
  EXPECT_EQ(active->id, "m1");

  // Once m1 is terminal a new one may start.
  ASSERT_OK_AND_ASSIGN(auto claimed, store_->ClaimNext("w", 2000, 1000));
  ASSERT_TRUE(claimed.has_value());
  Migration done = *claimed;
  done.current_step = Step::kAborted;
  ASSERT_OK(store_->UpdateMigration(done, claimed->epoch, {}));
  ASSERT_OK(store_->CreateMigration(
      MakeMigration("m2", "app_aaaaaaaaaaaa", "us-east-1", "eu-west-1", 3000)));
  ASSERT_OK_AND_ASSIGN(auto list, store_->ListMigrations("app_aaaaaaaaaaaa"));
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, "m2");  // newest first
}

// Two handles (as two processes) racing to start a move of one app: exactly one wins.
TEST_P(ControlStoreConformance, ConcurrentCreatesOneWins) {
  ASSERT_OK(store_->CreateApp(MakeApp("app_aaaaaaaaaaaa")));
  auto other = OpenAnother();
  ASSERT_NE(other, nullptr);
  for (int round = 0; round < 5; ++round) {
    std::atomic<int> wins{0}, conflicts{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i) {
      threads.emplace_back([&, i] {
        ControlStore* s = (i % 2) ? other.get() : store_.get();
        Migration m = MakeMigration("r" + std::to_string(round) + "-" + std::to_string(i),
                                    "app_aaaaaaaaaaaa");
        Status st = s->CreateMigration(m);
        if (st.ok()) {
          wins++;
        } else if (st.reason() == "migration_in_flight") {
          conflicts++;
        } else {
          ADD_FAILURE() << st.ToString();
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(wins.load(), 1);
    EXPECT_EQ(conflicts.load(), 7);
    ASSERT_OK_AND_ASSIGN(auto active, store_->GetActiveMigration("app_aaaaaaaaaaaa"));
    ASSERT_TRUE(active.has_value());
    ASSERT_OK_AND_ASSIGN(auto c, store_->ClaimNext("w", 10'000 + round, 10));
    ASSERT_TRUE(c.has_value());
    Migration end = *c;
    end.current_step = Step::kAborted;
    ASSERT_OK(store_->UpdateMigration(end, c->epoch, {}));
  }
}

TEST_P(ControlStoreConformance, ClaimLeaseExpiryAndFencing) {
  ASSERT_OK(store_->CreateApp(MakeApp("app_aaaaaaaaaaaa")));
  ASSERT_OK(store_->CreateMigration(MakeMigration("m1", "app_aaaaaaaaaaaa")));
  ASSERT_OK_AND_ASSIGN(auto first, store_->ClaimNext("w1", 1000, 500));
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->lease_owner, "w1");
  EXPECT_EQ(first->lease_expires_at_ms, 1500);
  // Leased: nobody else gets it before expiry.
  ASSERT_OK_AND_ASSIGN(auto none, store_->ClaimNext("w2", 1499, 500));
  EXPECT_FALSE(none.has_value());
  // Heartbeat extends it.
  ASSERT_OK(store_->Heartbeat("m1", first->epoch, 2000));
  ASSERT_OK_AND_ASSIGN(auto still_none, store_->ClaimNext("w2", 1600, 500));
  EXPECT_FALSE(still_none.has_value());
  // Expired: w2 takes over with a new epoch.
  ASSERT_OK_AND_ASSIGN(auto second, store_->ClaimNext("w2", 2000, 500));
  ASSERT_TRUE(second.has_value());
  EXPECT_GT(second->epoch, first->epoch);
  // w1 is fenced out of every write.
  Migration stale = *first;
  stale.current_step = Step::kReservingDest;
  EXPECT_EQ(store_->UpdateMigration(stale, first->epoch, {}).reason(), "fenced");
  EXPECT_EQ(store_->Heartbeat("m1", first->epoch, 9999).reason(), "fenced");
  EXPECT_EQ(store_->TryAdmit("m1", first->epoch, 10, 10).status().reason(), "fenced");
  ASSERT_OK_AND_ASSIGN(Migration now, store_->GetMigration("m1"));
  EXPECT_EQ(now.current_step, Step::kRequested);
  // w2 may write.
  Migration next = *second;
  next.current_step = Step::kReservingDest;
  next.lease_owner.clear();
  ASSERT_OK(store_->UpdateMigration(next, second->epoch, {}));
  // Released and due: claimable again at once.
  ASSERT_OK_AND_ASSIGN(auto third, store_->ClaimNext("w3", 2001, 500));
  ASSERT_TRUE(third.has_value());
  EXPECT_EQ(third->current_step, Step::kReservingDest);
}

// Epochs double as the data plane's fencing tokens: every claim's is higher than any before,
// across migrations.
TEST_P(ControlStoreConformance, EpochsIncreaseAcrossMigrations) {
  ASSERT_OK(store_->CreateApp(MakeApp("app_aaaaaaaaaaaa")));
  ASSERT_OK(store_->CreateApp(MakeApp("app_bbbbbbbbbbbb", "bob")));
  ASSERT_OK(store_->CreateMigration(MakeMigration("m1", "app_aaaaaaaaaaaa")));
  ASSERT_OK(store_->CreateMigration(MakeMigration("m2", "app_bbbbbbbbbbbb")));
  int64_t last = 0;
  for (int i = 0; i < 6; ++i) {
    ASSERT_OK_AND_ASSIGN(auto c, store_->ClaimNext("w" + std::to_string(i), 1000 + i * 1000, 500));
    ASSERT_TRUE(c.has_value());
    EXPECT_GT(c->epoch, last);
    last = c->epoch;
  }
}

TEST_P(ControlStoreConformance, ClaimRespectsNextAttempt) {
  ASSERT_OK(store_->CreateApp(MakeApp("app_aaaaaaaaaaaa")));
  Migration m = MakeMigration("m1", "app_aaaaaaaaaaaa");
  m.next_attempt_at_ms = 5000;
  ASSERT_OK(store_->CreateMigration(m));
  ASSERT_OK_AND_ASSIGN(auto early, store_->ClaimNext("w", 4999, 100));
  EXPECT_FALSE(early.has_value());
  ASSERT_OK_AND_ASSIGN(auto due, store_->ClaimNext("w", 5000, 100));
  EXPECT_TRUE(due.has_value());
}

TEST_P(ControlStoreConformance, UpdateNeverOverwritesTheAbortFlag) {
  ASSERT_OK(store_->CreateApp(MakeApp("app_aaaaaaaaaaaa")));
  ASSERT_OK(store_->CreateMigration(MakeMigration("m1", "app_aaaaaaaaaaaa")));
  ASSERT_OK_AND_ASSIGN(auto c, store_->ClaimNext("w", 1000, 500));
  ASSERT_OK(store_->RequestAbort("m1", 1100));
  Migration w = *c;  // the worker's copy still has abort_requested = false
  w.current_step = Step::kReservingDest;
  w.next_attempt_at_ms = 60'000;  // a retry's backoff, scheduled without seeing the abort
  ASSERT_OK(store_->UpdateMigration(w, c->epoch, {}));
  ASSERT_OK_AND_ASSIGN(Migration got, store_->GetMigration("m1"));
  EXPECT_TRUE(got.abort_requested);
  EXPECT_LE(got.next_attempt_at_ms, 1100);  // the abort's wake-up time stands
  ASSERT_OK_AND_ASSIGN(auto events, store_->ListEvents("m1"));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, "abort_requested");
}

TEST_P(ControlStoreConformance, AbortRules) {
  ASSERT_OK(store_->CreateApp(MakeApp("app_aaaaaaaaaaaa")));
  EXPECT_EQ(store_->RequestAbort("nope", 1).code(), StatusCode::kNotFound);
  ASSERT_OK(store_->CreateMigration(MakeMigration("m1", "app_aaaaaaaaaaaa")));
  ASSERT_OK_AND_ASSIGN(auto c, store_->ClaimNext("w", 1000, 500));
  // Flip committed: abort refused with cutover_passed.
  Migration flipped = *c;
  flipped.current_step = Step::kSettingUpReverseReplication;
  flipped.cutover_committed = true;
  ASSERT_OK(store_->CommitFlip(flipped, c->epoch, {}));
  Status s = store_->RequestAbort("m1", 1200);
  EXPECT_EQ(s.reason(), "cutover_passed");
  EXPECT_NE(s.message().find("reverse"), std::string::npos);
  ASSERT_OK_AND_ASSIGN(App a, store_->GetApp("app_aaaaaaaaaaaa"));
  EXPECT_EQ(a.region, "eu-west-1");
  EXPECT_EQ(a.routing_version, 2);
  ASSERT_OK_AND_ASSIGN(Route r, store_->ResolveHost("app_aaaaaaaaaaaa.apps.test"));
  EXPECT_EQ(r.region, "eu-west-1");
  // Terminal: not_active.
  flipped.current_step = Step::kCompleted;
  ASSERT_OK(store_->UpdateMigration(flipped, c->epoch, {}));
  EXPECT_EQ(store_->RequestAbort("m1", 1300).reason(), "not_active");
  ASSERT_OK_AND_ASSIGN(App done, store_->GetApp("app_aaaaaaaaaaaa"));
  EXPECT_EQ(done.status, kAppReady);
}

TEST_P(ControlStoreConformance, AbortBeforeFlipWins) {
  ASSERT_OK(store_->CreateApp(MakeApp("app_aaaaaaaaaaaa")));
  ASSERT_OK(store_->CreateMigration(MakeMigration("m1", "app_aaaaaaaaaaaa")));
  ASSERT_OK_AND_ASSIGN(auto c, store_->ClaimNext("w", 1000, 500));
  ASSERT_OK(store_->RequestAbort("m1", 1100));
  ASSERT_OK(store_->RequestAbort("m1", 1150));  // idempotent
  Migration flipped = *c;
  flipped.current_step = Step::kSettingUpReverseReplication;
  flipped.cutover_committed = true;
  EXPECT_EQ(store_->CommitFlip(flipped, c->epoch, {}).reason(), "abort_won");
  ASSERT_OK_AND_ASSIGN(App a, store_->GetApp("app_aaaaaaaaaaaa"));
  EXPECT_EQ(a.region, "us-east-1");
  EXPECT_EQ(a.routing_version, 1);
  ASSERT_OK_AND_ASSIGN(Migration m, store_->GetMigration("m1"));
  EXPECT_FALSE(m.cutover_committed);
  EXPECT_EQ(m.current_step, Step::kRequested);
}

// Abort and flip from two handles at once, many times: exactly one of them wins each time.
TEST_P(ControlStoreConformance, AbortAndFlipRaceHasOneWinner) {
  auto other = OpenAnother();
  ASSERT_NE(other, nullptr);
  for (int i = 0; i < 20; ++i) {
    std::string app =
        "app_aaaaaaaaaa" + std::string(1, 'a' + i / 10) + std::string(1, 'a' + i % 10);
    ASSERT_OK(store_->CreateApp(MakeApp(app)));
    std::string id = "race-" + std::to_string(i);
    ASSERT_OK(store_->CreateMigration(MakeMigration(id, app)));
    ASSERT_OK_AND_ASSIGN(auto c, store_->ClaimNext("w", 1000 + i, 100000));
    ASSERT_EQ(c->id, id);
    Status flip, abort;
    std::thread a([&] {
      Migration f = *c;
      f.current_step = Step::kSettingUpReverseReplication;
      f.cutover_committed = true;
      flip = store_->CommitFlip(f, c->epoch, {});
    });
    std::thread b([&] { abort = other->RequestAbort(id, 2000); });
    a.join();
    b.join();
    EXPECT_NE(flip.ok(), abort.ok()) << flip.ToString() << " / " << abort.ToString();
    ASSERT_OK_AND_ASSIGN(App got, store_->GetApp(app));
    ASSERT_OK_AND_ASSIGN(Migration m, store_->GetMigration(id));
    if (flip.ok()) {
      EXPECT_EQ(abort.reason(), "cutover_passed");
      EXPECT_EQ(got.region, "eu-west-1");
      EXPECT_FALSE(m.abort_requested);
    } else {
      EXPECT_EQ(flip.reason(), "abort_won");
      EXPECT_EQ(got.region, "us-east-1");
      EXPECT_TRUE(m.abort_requested);
    }
    Migration end = m;
    end.current_step = flip.ok() ? Step::kCompleted : Step::kAborted;
    ASSERT_OK(store_->UpdateMigration(end, c->epoch, {}));
  }
}

TEST_P(ControlStoreConformance, AdmissionCaps) {
  // Global cap 3, per-region cap 2.
  const char* regions[][2] = {{"us-east-1", "eu-west-1"},
                              {"us-east-1", "ap-southeast-1"},
                              {"us-east-1", "eu-west-1"},  // third touching us-east-1: waits
                              {"eu-central-1", "sa-east-1"},
                              {"ca-central-1", "me-south-1"}};  // over the global cap
  std::vector<bool> expect = {true, true, false, true, false};
  for (int i = 0; i < 5; ++i) {
    std::string app = "app_aaaaaaaaaaa" + std::string(1, 'a' + i);
    ASSERT_OK(store_->CreateApp(MakeApp(app)));
    ASSERT_OK(store_->CreateMigration(
        MakeMigration("m" + std::to_string(i), app, regions[i][0], regions[i][1], 1000 + i)));
  }
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK_AND_ASSIGN(auto c, store_->ClaimNext("w", 5000, 10));
    ASSERT_TRUE(c.has_value());
    ASSERT_OK_AND_ASSIGN(bool admitted, store_->TryAdmit(c->id, c->epoch, 3, 2));
    EXPECT_EQ(admitted, expect[std::stoi(c->id.substr(1))]) << c->id;
    Migration rel = *c;
    rel.admitted = admitted;
    rel.lease_owner.clear();
    rel.next_attempt_at_ms = 99999;  // out of the way of the next claim
    ASSERT_OK(store_->UpdateMigration(rel, c->epoch, {}));
  }
  // m0 finishes at 40000 (claims go in next-attempt then initiation order). Its slot is free:
  // m2, queued on its region, is woken then, ahead of its next attempt (99999), and fits now;
  // m4, queued for the global cap and younger, is not.
  ASSERT_OK_AND_ASSIGN(auto c0, store_->ClaimNext("w", 100000, 10));
  ASSERT_TRUE(c0.has_value());
  ASSERT_EQ(c0->id, "m0");
  Migration done = *c0;
  done.lease_owner.clear();
  done.current_step = Step::kCompleted;
  done.updated_at_ms = 40000;
  ASSERT_OK(store_->UpdateMigration(done, c0->epoch, {}));
  ASSERT_OK_AND_ASSIGN(auto c2, store_->ClaimNext("w", 50000, 10));
  ASSERT_TRUE(c2.has_value());
  ASSERT_EQ(c2->id, "m2");
  ASSERT_OK_AND_ASSIGN(bool admitted2, store_->TryAdmit(c2->id, c2->epoch, 3, 2));
  EXPECT_TRUE(admitted2);
  ASSERT_OK_AND_ASSIGN(auto none, store_->ClaimNext("w", 50000, 10));
  EXPECT_FALSE(none.has_value()) << none->id;
}

// Workers of two processes admit at the same moment: the caps hold (no write skew between the
// count and the mark).
TEST_P(ControlStoreConformance, ConcurrentAdmissionsNeverOvershootTheCaps) {
  auto other = OpenAnother();
  ASSERT_NE(other, nullptr);
  constexpr int kMoves = 12;
  std::vector<Migration> claimed;
  for (int i = 0; i < kMoves; ++i) {
    std::string app =
        "app_" + std::string(11 - std::to_string(i).size(), 'a') + "x" + std::to_string(i);
    ASSERT_OK(store_->CreateApp(MakeApp(app)));
    // Half move us-east-1 -> eu-west-1, half between two other regions each.
    bool east = i % 2 == 0;
    ASSERT_OK(store_->CreateMigration(
        MakeMigration("m" + std::to_string(i), app, east ? "us-east-1" : "r" + std::to_string(i),
                      east ? "eu-west-1" : "s" + std::to_string(i), 1000 + i)));
  }
  for (int i = 0; i < kMoves; ++i) {
    ASSERT_OK_AND_ASSIGN(auto c, store_->ClaimNext("w", 5000, 60'000));
    ASSERT_TRUE(c.has_value());
    claimed.push_back(*c);
  }
  // Global cap 5, per-region cap 2: at most 2 of the us-east-1 moves, at most 5 in all.
  std::atomic<int> admitted{0}, east{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kMoves; ++i) {
    threads.emplace_back([&, i] {
      ControlStore* s = (i % 2) ? other.get() : store_.get();
      auto a = s->TryAdmit(claimed[i].id, claimed[i].epoch, 5, 2);
      ASSERT_TRUE(a.ok()) << a.status().ToString();
      if (*a) {
        admitted++;
        if (claimed[i].source_region == "us-east-1") east++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(admitted.load(), 5);
  EXPECT_LE(east.load(), 2);
  int marked = 0;
  for (const auto& m : claimed) {
    ASSERT_OK_AND_ASSIGN(Migration now, store_->GetMigration(m.id));
    marked += now.admitted ? 1 : 0;
  }
  EXPECT_EQ(marked, 5);
}

// Workers of two processes claim at the same moment: each migration goes to one of them, each
// with its own epoch.
TEST_P(ControlStoreConformance, ConcurrentClaimsHandEachMigrationToOneWorker) {
  auto other = OpenAnother();
  ASSERT_NE(other, nullptr);
  constexpr int kMoves = 16;
  for (int i = 0; i < kMoves; ++i) {
    std::string app =
        "app_" + std::string(11 - std::to_string(i).size(), 'a') + "x" + std::to_string(i);
    ASSERT_OK(store_->CreateApp(MakeApp(app)));
    ASSERT_OK(store_->CreateMigration(
        MakeMigration("m" + std::to_string(i), app, "us-east-1", "eu-west-1", 1000 + i)));
  }
  std::mutex mu;
  std::map<std::string, int> claims;
  std::set<int64_t> epochs;
  std::vector<std::thread> threads;
  for (int w = 0; w < 6; ++w) {
    threads.emplace_back([&, w] {
      ControlStore* s = (w % 2) ? other.get() : store_.get();
      while (true) {
        auto c = s->ClaimNext("w" + std::to_string(w), 5000, 60'000);
        ASSERT_TRUE(c.ok()) << c.status().ToString();
        if (!c->has_value()) return;
        std::lock_guard<std::mutex> lock(mu);
        claims[(*c)->id]++;
        epochs.insert((*c)->epoch);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(claims.size(), static_cast<size_t>(kMoves));
  for (const auto& [id, n] : claims) EXPECT_EQ(n, 1) << id;
  EXPECT_EQ(epochs.size(), static_cast<size_t>(kMoves));
}

TEST_P(ControlStoreConformance, EventsAreOrderedAndComplete) {
  ASSERT_OK(store_->CreateApp(MakeApp("app_aaaaaaaaaaaa")));
  ASSERT_OK(store_->CreateMigration(MakeMigration("m1", "app_aaaaaaaaaaaa")));
  ASSERT_OK_AND_ASSIGN(auto c, store_->ClaimNext("w", 1000, 500));
  MigrationEvent e;
  e.migration_id = "m1";
  e.type = "transition";
  e.step = Step::kRequested;
  e.from_step = Step::kRequested;
  e.to_step = Step::kReservingDest;
  e.attempt = 2;
  e.started_at_ms = 1000;
  e.ended_at_ms = 1250;
  e.error = "Unavailable: x";
  e.bytes = 77;
  e.message = "admitted";
  Migration m = *c;
  m.current_step = Step::kReservingDest;
  MigrationEvent e2 = e;
  e2.type = "note";
  ASSERT_OK(store_->UpdateMigration(m, c->epoch, {e, e2}));
  ASSERT_OK(store_->AppendEvent(e));
  ASSERT_OK_AND_ASSIGN(auto events, store_->ListEvents("m1"));
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].type, "transition");
  EXPECT_EQ(events[1].type, "note");
  EXPECT_LT(events[0].seq, events[1].seq);
  EXPECT_EQ(events[0].to_step, Step::kReservingDest);
  EXPECT_EQ(events[0].attempt, 2);
  EXPECT_EQ(events[0].ended_at_ms - events[0].started_at_ms, 250);
  EXPECT_EQ(events[0].bytes, 77);
  EXPECT_EQ(events[0].error, "Unavailable: x");
  // A fenced write appends nothing.
  ASSERT_OK_AND_ASSIGN(auto c2, store_->ClaimNext("w2", 999999, 500));
  ASSERT_TRUE(c2.has_value());
  EXPECT_EQ(store_->UpdateMigration(m, c->epoch, {e}).reason(), "fenced");
  ASSERT_OK_AND_ASSIGN(auto after, store_->ListEvents("m1"));
  EXPECT_EQ(after.size(), 3u);
}

// Many calls at once (which an engine may commit together): each keeps exactly what it
// acknowledged, a write refused half-way leaves nothing behind even when a neighbour's write in
// the same moment succeeds, and another handle (another process) sees it all.
TEST_P(ControlStoreConformance, ConcurrentCallsKeepExactlyWhatTheyAcknowledged) {
  ASSERT_OK(store_->CreateApp(MakeApp("app_aaaaaaaaaaaa")));
  ASSERT_OK(store_->CreateMigration(MakeMigration("m1", "app_aaaaaaaaaaaa")));
  ASSERT_OK_AND_ASSIGN(auto c, store_->ClaimNext("w", 1000, 1'000'000));
  ASSERT_TRUE(c.has_value());
  std::atomic<int> acknowledged{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        MigrationEvent e;
        e.migration_id = "m1";
        e.type = "note";
        e.message = std::to_string(t) + "/" + std::to_string(i);
        if (i % 2 == 0) {
          Status s = store_->AppendEvent(e);
          s.ok() ? acknowledged++ : (ADD_FAILURE() << s.ToString(), 0);
        } else {
          // Refused half-way (its second event names no migration): neither the migration's
          // new fields nor its first event may remain.
          e.type = "refused";
          MigrationEvent orphan = e;
          orphan.migration_id = "no-such-migration";
          Migration m = *c;
          m.last_error = "half-written " + e.message;
          Status s = store_->UpdateMigration(m, c->epoch, {e, orphan});
          s.ok() ? (ADD_FAILURE() << "an event of no migration was accepted", 0) : refused++;
        }
        auto read = store_->GetMigration("m1");
        if (!read.ok()) ADD_FAILURE() << read.status().ToString();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(acknowledged.load(), 160);
  EXPECT_EQ(refused.load(), 160);
  auto other = OpenAnother();
  ASSERT_NE(other, nullptr);
  ASSERT_OK_AND_ASSIGN(auto events, other->ListEvents("m1"));
  std::set<std::string> seen;
  for (const auto& e : events) {
    EXPECT_EQ(e.type, "note") << e.message;
    EXPECT_TRUE(seen.insert(e.message).second) << "twice: " << e.message;
  }
  EXPECT_EQ(seen.size(), 160u);
  ASSERT_OK_AND_ASSIGN(Migration after, other->GetMigration("m1"));
  EXPECT_EQ(after.epoch, c->epoch);
  EXPECT_EQ(after.last_error, c->last_error);
}

TEST_P(ControlStoreConformance, RepairRedrivesOnlyNeedsRepair) {
  ASSERT_OK(store_->CreateApp(MakeApp("app_aaaaaaaaaaaa")));
  ASSERT_OK(store_->CreateMigration(MakeMigration("m1", "app_aaaaaaaaaaaa")));
  EXPECT_EQ(store_->RepairMigration("m1", 1).reason(), "not_repairable");
  ASSERT_OK_AND_ASSIGN(auto c, store_->ClaimNext("w", 1000, 500));
  Migration f = *c;
  f.cutover_committed = true;
  f.stopped_at = Step::kSettingUpReverseReplication;
  f.current_step = Step::kFailed;
  f.needs_repair = true;
  ASSERT_OK(store_->UpdateMigration(f, c->epoch, {}));
  ASSERT_OK_AND_ASSIGN(App broken, store_->GetApp("app_aaaaaaaaaaaa"));
  EXPECT_EQ(broken.status, kAppNeedsRepair);
  ASSERT_OK(store_->RepairMigration("m1", 3000));
  ASSERT_OK_AND_ASSIGN(Migration m, store_->GetMigration("m1"));
  EXPECT_EQ(m.current_step, Step::kSettingUpReverseReplication);
  EXPECT_FALSE(m.needs_repair);
  EXPECT_GT(m.epoch, c->epoch);
  EXPECT_EQ(store_->RepairMigration("m1", 3001).reason(), "not_repairable");
  EXPECT_EQ(store_->RepairMigration("zzz", 3001).code(), StatusCode::kNotFound);
}

// The dry run's rates come from the last completed copies of a strategy, newest first; running
// moves and other strategies are not among them.
TEST_P(ControlStoreConformance, RecentCopiesByStrategyNewestFirst) {
  struct Case {
    const char* id;
    const char* app;
    const char* strategy;
    bool complete;
    int64_t completed_at;
  } cases[] = {{"m1", "app_aaaaaaaaaaaa", "offline", true, 3000},
               {"m2", "app_bbbbbbbbbbbb", "offline", true, 5000},
               {"m3", "app_cccccccccccc", "online", true, 4000},
               {"m4", "app_dddddddddddd", "offline", false, 0}};
  for (const auto& k : cases) {
    ASSERT_OK(store_->CreateApp(MakeApp(k.app)));
    Migration m = MakeMigration(k.id, k.app);
    m.strategy = k.strategy;
    ASSERT_OK(store_->CreateMigration(m));
    if (!k.complete) continue;
    ASSERT_OK_AND_ASSIGN(auto c, store_->ClaimNext("w", 10000, 500));
    ASSERT_TRUE(c.has_value());
    ASSERT_EQ(c->id, k.id);
    Migration done = *c;
    done.current_step = Step::kCompleted;
    done.completed_at_ms = k.completed_at;
    ASSERT_OK(store_->UpdateMigration(done, c->epoch, {}));
  }
  auto ids = [](const std::vector<Migration>& ms) {
    std::vector<std::string> out;
    for (const auto& m : ms) out.push_back(m.id);
    return out;
  };
  ASSERT_OK_AND_ASSIGN(auto offline, store_->ListRecentCopies("offline", 20));
  EXPECT_EQ(ids(offline), (std::vector<std::string>{"m2", "m1"}));
  ASSERT_OK_AND_ASSIGN(auto newest, store_->ListRecentCopies("offline", 1));
  EXPECT_EQ(ids(newest), (std::vector<std::string>{"m2"}));
  ASSERT_OK_AND_ASSIGN(auto online, store_->ListRecentCopies("online", 20));
  EXPECT_EQ(ids(online), (std::vector<std::string>{"m3"}));
}

TEST_P(ControlStoreConformance, ReplicaStateCompareAndSet) {
  ASSERT_OK(store_->CreateApp(MakeApp("app_aaaaaaaaaaaa")));
  ASSERT_OK(store_->CreateMigration(MakeMigration("m1", "app_aaaaaaaaaaaa")));
  ASSERT_OK_AND_ASSIGN(auto c, store_->ClaimNext("w", 1000, 500));
  Migration m = *c;
  m.current_step = Step::kCompleted;
  m.source_replica_state = kReplicaReplicating;
  ASSERT_OK(store_->UpdateMigration(m, c->epoch, {}));
  ASSERT_OK_AND_ASSIGN(auto replicas, store_->ListRetainedReplicas());
  ASSERT_EQ(replicas.size(), 1u);
  ASSERT_OK(store_->SetReplicaState("m1", kReplicaReplicating, kReplicaTearingDown));
  EXPECT_EQ(store_->SetReplicaState("m1", kReplicaReplicating, kReplicaTearingDown).reason(),
            "replica_state");
  ASSERT_OK(store_->SetReplicaState("m1", kReplicaTearingDown, kReplicaTornDown));
  ASSERT_OK_AND_ASSIGN(auto none, store_->ListRetainedReplicas());
  EXPECT_TRUE(none.empty());
}

// A completed move m1 of app A with a replicating replica in us-east-1.
void CompletedWithReplica(ControlStore* store, const std::string& app) {
  ASSERT_OK(store->CreateApp(MakeApp(app)));
  ASSERT_OK(store->CreateMigration(MakeMigration("m1", app)));
  ASSERT_OK_AND_ASSIGN(auto c, store->ClaimNext("w", 1000, 500));
  Migration m = *c;
  m.current_step = Step::kCompleted;
  m.source_replica_state = kReplicaReplicating;
  ASSERT_OK(store->UpdateMigration(m, c->epoch, {}));
  ASSERT_OK(store->Reserve(Reservation{"m1", m.source_region, app, 10, 1}));
}

// r1: a reverse of m1 that asks for the fast path (the store decides).
Migration FastReverseOfM1(const std::string& app) {
  Migration r = MakeMigration("r1", app);
  r.kind = "reverse";
  r.reverse_of = "m1";
  r.reverse_path = "fast";
  return r;
}

// Ends r1 as aborted (requested, claimed, recorded).
void AbortR1(ControlStore* store) {
  ASSERT_OK(store->RequestAbort("r1", 2000));
  ASSERT_OK_AND_ASSIGN(auto c, store->ClaimNext("w", 2000, 500));
  Migration done = *c;
  done.current_step = Step::kAborted;
  ASSERT_OK(store->UpdateMigration(done, c->epoch, {}));
}

// A diverged replica is still retained (listed, torn down), its event is recorded with the
// state change, and a reverse of its migration is a slow one whatever the caller asked.
TEST_P(ControlStoreConformance, DivergedReplicaIsRetainedAndReversedSlowly) {
  CompletedWithReplica(store_.get(), "app_aaaaaaaaaaaa");
  MigrationEvent e;
  e.migration_id = "m1";
  e.type = "replica_diverged";
  e.step = e.from_step = e.to_step = Step::kCompleted;
  e.message = "DDL on the serving database";
  EXPECT_EQ(store_->SetReplicaState("m1", kReplicaTearingDown, kReplicaDiverged, &e).reason(),
            "replica_state");
  ASSERT_OK(store_->SetReplicaState("m1", kReplicaReplicating, kReplicaDiverged, &e));
  ASSERT_OK_AND_ASSIGN(auto events, store_->ListEvents("m1"));
  ASSERT_EQ(std::count_if(events.begin(), events.end(),
                          [](const MigrationEvent& x) { return x.type == "replica_diverged"; }),
            1);  // once: the refused change appended nothing
  EXPECT_EQ(events.back().message, "DDL on the serving database");
  ASSERT_OK_AND_ASSIGN(auto retained, store_->ListRetainedReplicas());
  ASSERT_EQ(retained.size(), 1u);
  EXPECT_EQ(retained[0].source_replica_state, kReplicaDiverged);
  ASSERT_OK(store_->CreateMigration(FastReverseOfM1("app_aaaaaaaaaaaa")));
  ASSERT_OK_AND_ASSIGN(Migration stored, store_->GetMigration("r1"));
  EXPECT_EQ(stored.reverse_path, "slow");
  AbortR1(store_.get());
  ASSERT_OK(store_->BeginTeardown("m1", "", "a", 3000, 1000));
  ASSERT_OK_AND_ASSIGN(Migration tearing, store_->GetMigration("m1"));
  EXPECT_EQ(tearing.source_replica_state, kReplicaTearingDown);
}

MigrationEvent TornDownEvent() {
  MigrationEvent e;
  e.migration_id = "m1";
  e.type = "replica_torn_down";
  e.step = e.from_step = e.to_step = Step::kCompleted;
  return e;
}

TEST_P(ControlStoreConformance, TeardownIsSerialisedWithMigrations) {
  const std::string app = "app_aaaaaaaaaaaa";
  CompletedWithReplica(store_.get(), app);
  // A reverse in flight: the teardown waits for it (app_busy), except for its own steps.
  ASSERT_OK(store_->CreateMigration(FastReverseOfM1(app)));
  ASSERT_OK_AND_ASSIGN(Migration stored, store_->GetMigration("r1"));
  EXPECT_EQ(stored.reverse_path, "fast");
  EXPECT_EQ(store_->BeginTeardown("m1", "", "a", 2000, 1000).reason(), "app_busy");
  ASSERT_OK_AND_ASSIGN(Migration still, store_->GetMigration("m1"));
  EXPECT_EQ(still.source_replica_state, kReplicaReplicating);
  AbortR1(store_.get());

  // Owner a holds the teardown; nothing else may start on the app meanwhile.
  ASSERT_OK(store_->BeginTeardown("m1", "", "a", 3000, 1000));
  EXPECT_EQ(store_->CreateMigration(MakeMigration("m2", app)).reason(), "app_busy");
  EXPECT_EQ(store_->BeginTeardown("m1", "", "b", 3500, 1000).reason(), "teardown_running");
  // A reverse asked for now is slow: the replica is going.
  Migration late = MakeMigration("r2", app);
  late.kind = "reverse";
  late.reverse_of = "m1";
  late.reverse_path = "fast";
  EXPECT_EQ(store_->CreateMigration(late).reason(), "app_busy");
  // a's lease runs out (a crashed): b takes over, a is fenced.
  ASSERT_OK(store_->BeginTeardown("m1", "", "b", 4001, 1000));
  EXPECT_EQ(store_->FinishTeardown("m1", "a", TornDownEvent()).reason(), "fenced");
  ASSERT_OK(store_->FinishTeardown("m1", "b", TornDownEvent()));
  ASSERT_OK_AND_ASSIGN(Migration f, store_->GetMigration("m1"));
  EXPECT_EQ(f.source_replica_state, kReplicaTornDown);
  ASSERT_OK_AND_ASSIGN(auto left, store_->ListReservations(f.source_region));
  EXPECT_TRUE(left.empty());
  EXPECT_EQ(store_->BeginTeardown("m1", "", "c", 5000, 1000).reason(), "not_replicating");
  ASSERT_OK_AND_ASSIGN(auto events, store_->ListEvents("m1"));
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().type, "replica_torn_down");
  // The app is free again; a reverse now is slow.
  ASSERT_OK(store_->CreateMigration(late));
  ASSERT_OK_AND_ASSIGN(Migration slow, store_->GetMigration("r2"));
  EXPECT_EQ(slow.reverse_path, "slow");
}

TEST_P(ControlStoreConformance, ConcurrentTeardownAndReverseHaveOneWinner) {
  const std::string app = "app_aaaaaaaaaaaa";
  CompletedWithReplica(store_.get(), app);
  std::atomic<int> teardown_won{0}, reverse_won{0};
  std::thread t([&] {
    if (store_->BeginTeardown("m1", "", "a", 2000, 10000).ok()) teardown_won++;
  });
  std::thread v([&] {
    Migration r = MakeMigration("r1", app);
    r.kind = "reverse";
    r.reverse_of = "m1";
    r.reverse_path = "fast";
    if (store_->CreateMigration(r).ok()) reverse_won++;
  });
  t.join();
  v.join();
  EXPECT_EQ(teardown_won + reverse_won, 1);
}

TEST_P(ControlStoreConformance, ConcurrentReservationsNeverOvershootTheCaps) {
  // The region holds 2 apps (100 bytes); caps: 5 apps, 1000 bytes. Ten moves race for room,
  // through two handles (as two processes).
  auto other = OpenAnother();
  ASSERT_NE(other, nullptr);
  std::atomic<int> won{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 10; ++i) {
    threads.emplace_back([&, i] {
      ControlStore* s2 = (i % 2) ? other.get() : store_.get();
      Reservation r{"m" + std::to_string(i), "eu-west-1", "app_" + std::to_string(i), 10, 1};
      Status s = s2->ReserveWithinCapacity(r, 2, 100, 5, 1000);
      if (s.ok()) {
        won++;
      } else {
        EXPECT_EQ(s.reason(), "insufficient_capacity") << s.ToString();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(won, 3);
  ASSERT_OK_AND_ASSIGN(auto list, store_->ListReservations("eu-west-1"));
  EXPECT_EQ(list.size(), 3u);
  // Bytes count too; and a retry of a reservation already made is not counted twice.
  EXPECT_EQ(
      store_->ReserveWithinCapacity(Reservation{"big", "us-east-1", "a", 901, 1}, 0, 100, 10, 1000)
          .reason(),
      "insufficient_capacity");
  ASSERT_OK(store_->ReserveWithinCapacity(list[0], 2, 100, 5, 1000));
}

TEST_P(ControlStoreConformance, ReservationsAreIdempotent) {
  Reservation r{"m1", "eu-west-1", "app_aaaaaaaaaaaa", 100, 1};
  ASSERT_OK(store_->Reserve(r));
  r.bytes = 200;
  ASSERT_OK(store_->Reserve(r));
  ASSERT_OK_AND_ASSIGN(auto list, store_->ListReservations("eu-west-1"));
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].bytes, 200);
  ASSERT_OK(store_->ReleaseReservation("m1", "eu-west-1"));
  ASSERT_OK(store_->ReleaseReservation("m1", "eu-west-1"));
  ASSERT_OK_AND_ASSIGN(auto empty, store_->ListReservations("eu-west-1"));
  EXPECT_TRUE(empty.empty());
}

// The background loop's lease: one holder at a time across processes, renewable by its holder,
// taken over once it expires.
TEST_P(ControlStoreConformance, NamedLeaseHasOneHolder) {
  auto other = OpenAnother();
  ASSERT_NE(other, nullptr);
  ASSERT_OK_AND_ASSIGN(bool a, store_->TryLease("background", "p1", 1000, 500));
  EXPECT_TRUE(a);
  ASSERT_OK_AND_ASSIGN(bool b, other->TryLease("background", "p2", 1200, 500));
  EXPECT_FALSE(b);
  ASSERT_OK_AND_ASSIGN(bool renewed, store_->TryLease("background", "p1", 1400, 500));
  EXPECT_TRUE(renewed);  // now until 1900
  ASSERT_OK_AND_ASSIGN(bool early, other->TryLease("background", "p2", 1899, 500));
  EXPECT_FALSE(early);
  ASSERT_OK_AND_ASSIGN(bool other_name, other->TryLease("elsewhere", "p2", 1899, 500));
  EXPECT_TRUE(other_name);
  ASSERT_OK_AND_ASSIGN(bool taken, other->TryLease("background", "p2", 1900, 500));
  EXPECT_TRUE(taken);
  ASSERT_OK_AND_ASSIGN(bool lost, store_->TryLease("background", "p1", 2000, 500));
  EXPECT_FALSE(lost);
  // Racing takers of a free lease: exactly one wins.
  std::atomic<int> wins{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      ControlStore* s = (i % 2) ? other.get() : store_.get();
      auto got = s->TryLease("race", "p" + std::to_string(i), 5000, 500);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      if (*got) wins++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wins.load(), 1);
}

TEST_P(ControlStoreConformance, TokensAreStoredHashed) {
  ASSERT_OK(store_->UpsertUser(User{"alice", false}));
  ASSERT_OK(store_->UpsertUser(User{"root", true}));
  ASSERT_OK(store_->AddTokenHash(Sha256Hex("alice-token"), "alice"));
  ASSERT_OK(store_->AddTokenHash(Sha256Hex("root-token"), "root"));
  ASSERT_OK_AND_ASSIGN(User u, store_->UserForTokenHash(Sha256Hex("alice-token")));
  EXPECT_EQ(u.name, "alice");
  EXPECT_FALSE(u.admin);
  ASSERT_OK_AND_ASSIGN(User r, store_->UserForTokenHash(Sha256Hex("root-token")));
  EXPECT_TRUE(r.admin);
  EXPECT_EQ(store_->UserForTokenHash(Sha256Hex("wrong")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->UserForTokenHash("alice-token").status().code(), StatusCode::kNotFound);
}

// ---- integration: the routing feed's version and the webhook outbox ----

// Walks claimed migration `m` to `step` (one UpdateMigration, or the flip).
Status Walk(ControlStore& store, Migration& m, Step step) {
  Step from = m.current_step;
  m.current_step = step;
  m.updated_at_ms += 10;
  if (step == Step::kSettingUpReverseReplication && from == Step::kFlippingRouting) {
    m.cutover_committed = true;
    return store.CommitFlip(m, m.epoch, {});
  }
  return store.UpdateMigration(m, m.epoch, {});
}

bool Blocked(const RoutingTable& t, const std::string& app) {
  return std::find(t.writes_blocked.begin(), t.writes_blocked.end(), app) != t.writes_blocked.end();
}

TEST_P(ControlStoreConformance, RoutingVersionMovesWithFlipsBlocksUnblocksAndHosts) {
  const std::string app = "app_aaaaaaaaaaaa";
  ASSERT_OK_AND_ASSIGN(int64_t v0, store_->RoutingVersion());
  ASSERT_OK(store_->CreateApp(MakeApp(app)));
  ASSERT_OK_AND_ASSIGN(int64_t v1, store_->RoutingVersion());
  EXPECT_GT(v1, v0) << "a new app's host is news to the edge";
  ASSERT_OK(store_->AddRoute(Route{"shop.example.com", app, "", true}));
  ASSERT_OK_AND_ASSIGN(int64_t v2, store_->RoutingVersion());
  EXPECT_GT(v2, v1);
  ASSERT_OK(store_->CreateMigration(MakeMigration("m1", app)));
  ASSERT_OK_AND_ASSIGN(auto c, store_->ClaimNext("w", 1000, 60000));
  Migration m = *c;
  std::vector<int64_t> versions;
  std::vector<bool> blocked;
  for (Step step : Plan::Offline().steps()) {
    if (step == Step::kRequested) continue;
    ASSERT_OK(Walk(*store_, m, step)) << StepName(step);
    ASSERT_OK_AND_ASSIGN(RoutingTable t, store_->GetRoutingTable());
    versions.push_back(t.version);
    blocked.push_back(Blocked(t, app));
    ASSERT_OK_AND_ASSIGN(int64_t cheap, store_->RoutingVersion());
    EXPECT_EQ(cheap, t.version);
  }
  // reserving, blocking, dumping, restoring, blobs, runtime, flipping, setting_up, unblocking,
  // completed: the block, the flip and the unblock bump it, nothing else does.
  std::vector<int64_t> want = {v2,     v2 + 1, v2 + 1, v2 + 1, v2 + 1,
                               v2 + 1, v2 + 1, v2 + 2, v2 + 2, v2 + 3};
  EXPECT_EQ(versions, want);
  std::vector<bool> want_blocked = {false, true, true, true, true, true, true, true, true, false};
  EXPECT_EQ(blocked, want_blocked);
  ASSERT_OK_AND_ASSIGN(RoutingTable t, store_->GetRoutingTable());
  ASSERT_EQ(t.apps.size(), 1u);
  EXPECT_EQ(t.apps[0].region, "eu-west-1");
  ASSERT_EQ(t.routes.size(), 2u);
  for (const auto& r : t.routes) EXPECT_EQ(r.region, "eu-west-1") << r.host;
  ASSERT_OK(store_->RemoveRoute("shop.example.com"));
  ASSERT_OK_AND_ASSIGN(int64_t v3, store_->RoutingVersion());
  EXPECT_EQ(v3, v2 + 4);
  // An abort from a blocked step unblocks: one more bump.
  ASSERT_OK(store_->CreateMigration(MakeMigration("m2", app, "eu-west-1", "us-east-1", 5000)));
  ASSERT_OK_AND_ASSIGN(auto c2, store_->ClaimNext("w", 5000, 60000));
  Migration m2 = *c2;
  ASSERT_OK(Walk(*store_, m2, Step::kReservingDest));
  ASSERT_OK(Walk(*store_, m2, Step::kBlockingWrites));
  ASSERT_OK(Walk(*store_, m2, Step::kAborted));
  ASSERT_OK_AND_ASSIGN(int64_t v4, store_->RoutingVersion());
  EXPECT_EQ(v4, v3 + 2);
}

std::vector<std::string> Types(const std::vector<WebhookDelivery>& ds) {
  std::vector<std::string> out;
  for (const auto& d : ds) out.push_back(d.event.type);
  return out;
}

// Delivers every due delivery of `hook` until none is left; returns what went out, in order.
std::vector<WebhookDelivery> DrainDeliveries(ControlStore& store, const std::string& hook,
                                             int64_t now) {
  std::vector<WebhookDelivery> out;
  for (;;) {
    auto due = store.DueWebhookDeliveries(hook, now, 100);
    EXPECT_TRUE(due.ok()) << due.status().ToString();
    if (!due.ok() || due->empty()) return out;
    for (auto d : *due) {
      d.status = kDeliveryDelivered;
      d.attempts = 1;
      d.updated_at_ms = now;
      EXPECT_OK(store.RecordWebhookAttempt(d));
      out.push_back(d);
    }
  }
}

TEST_P(ControlStoreConformance, OutboxAnnouncesEveryStateChangeOfAMoveInOrder) {
  const std::string app = "app_aaaaaaaaaaaa";
  ASSERT_OK(store_->CreateApp(MakeApp(app)));
  ASSERT_OK(store_->CreateMigration(MakeMigration("m0", app)));  // before the webhook started
  ASSERT_OK_AND_ASSIGN(auto c0, store_->ClaimNext("w", 1000, 60000));
  Migration m0 = *c0;
  ASSERT_OK(Walk(*store_, m0, Step::kFailed));
  ASSERT_OK(store_->StartWebhook("hook"));
  ASSERT_OK(store_->StartWebhook("hook"));  // idempotent: keeps its position
  ASSERT_OK(store_->StartWebhook("replicas"));
  ASSERT_OK(store_->CreateMigration(MakeMigration("m1", app, "us-east-1", "eu-west-1", 2000)));
  ASSERT_OK_AND_ASSIGN(auto c, store_->ClaimNext("w", 2000, 60000));
  Migration m = *c;
  for (Step step : Plan::Offline().steps()) {
    if (step == Step::kRequested) continue;
    ASSERT_OK(Walk(*store_, m, step)) << StepName(step);
  }
  MigrationEvent diverged = InstantEvent(m, "note", "replica diverged", 9000);
  ASSERT_OK(store_->SetReplicaState("m1", kReplicaNone, kReplicaDiverged, &diverged));

  ASSERT_OK_AND_ASSIGN(int n, store_->QueueWebhookDeliveries("hook", {"migration.*"}, 9000, 5));
  EXPECT_EQ(n, 5);
  while (n > 0) {
    ASSERT_OK_AND_ASSIGN(n, store_->QueueWebhookDeliveries("hook", {"migration.*"}, 9000, 5));
  }
  // One app: one due at a time, the oldest first.
  ASSERT_OK_AND_ASSIGN(auto due, store_->DueWebhookDeliveries("hook", 9000, 100));
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].event.type, "migration.started");
  EXPECT_EQ(due[0].event.migration_id, "m1");
  EXPECT_EQ(due[0].event.app_id, app);
  EXPECT_EQ(due[0].event.id.rfind("evt_", 0), 0u);
  std::vector<WebhookDelivery> sent = DrainDeliveries(*store_, "hook", 9000);
  std::vector<std::string> want = {
      "migration.started",        "migration.step_changed", "migration.step_changed",
      "migration.writes_blocked", "migration.step_changed", "migration.step_changed",
      "migration.step_changed",   "migration.step_changed", "migration.step_changed",
      "migration.cutover",        "migration.step_changed", "migration.step_changed",
      "migration.completed"};
  EXPECT_EQ(Types(sent), want);
  std::set<std::string> ids;
  for (const auto& d : sent) ids.insert(d.event.id);
  EXPECT_EQ(ids.size(), sent.size()) << "event ids are unique";
  EXPECT_NE(sent[3].event.data.find("\"writes_blocked\":true"), std::string::npos)
      << sent[3].event.data;

  ASSERT_OK_AND_ASSIGN(int r, store_->QueueWebhookDeliveries("replicas", {"replica.*"}, 9000, 100));
  EXPECT_GT(r, 10);
  std::vector<WebhookDelivery> replica = DrainDeliveries(*store_, "replicas", 9000);
  EXPECT_EQ(Types(replica), std::vector<std::string>{"replica.diverged"});
  ASSERT_OK_AND_ASSIGN(auto listed, store_->ListWebhookDeliveries(kDeliveryDelivered, 100));
  EXPECT_EQ(listed.size(), sent.size() + 1);
  ASSERT_OK_AND_ASSIGN(auto pending, store_->ListWebhookDeliveries(kDeliveryPending, 100));
  EXPECT_TRUE(pending.empty());
  EXPECT_EQ(store_->QueueWebhookDeliveries("unknown", {"*"}, 1, 1).status().code(),
            StatusCode::kNotFound);
}

TEST_P(ControlStoreConformance, OutboxReadsInOrderFromAnyPositionAndWakesTheListener) {
  std::atomic<int> heard{0};
  store_->SetChangeListener([&] { heard++; });
  ASSERT_OK_AND_ASSIGN(int64_t empty_end, store_->OutboxEnd());
  ASSERT_OK_AND_ASSIGN(auto none, store_->ListOutbox(empty_end, 10));
  EXPECT_TRUE(none.empty());
  const std::string app = "app_aaaaaaaaaaaa";
  ASSERT_OK(store_->CreateApp(MakeApp(app)));  // a routing change: heard too
  auto wait_heard = [&] {
    for (int i = 0; i < 200 && heard.load() == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return heard.load();
  };
  // (Not asserted: PostgreSQL's listener may not have connected yet, in a store this young.)
  wait_heard();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // late notifications of it
  heard = 0;
  // A migration created changes no route: the listener hears of its outbox entry alone
  // (PostgreSQL: through NOTIFY, asynchronously).
  ASSERT_OK(store_->CreateMigration(MakeMigration("m1", app)));
  EXPECT_GT(wait_heard(), 0);
  ASSERT_OK_AND_ASSIGN(auto c, store_->ClaimNext("w", 1000, 60000));
  Migration m = *c;
  ASSERT_OK(Walk(*store_, m, Step::kReservingDest));
  ASSERT_OK(Walk(*store_, m, Step::kBlockingWrites));
  ASSERT_OK_AND_ASSIGN(int64_t end, store_->OutboxEnd());
  ASSERT_OK_AND_ASSIGN(auto all, store_->ListOutbox(empty_end, 100));
  // started, step_changed x2, writes_blocked.
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all.front().type, "migration.started");
  EXPECT_EQ(all.back().type, "migration.writes_blocked");
  EXPECT_EQ(all.back().seq, end);
  for (size_t i = 1; i < all.size(); ++i) EXPECT_GT(all[i].seq, all[i - 1].seq);
  // From a position within: only what follows it, and at most `limit`.
  ASSERT_OK_AND_ASSIGN(auto tail, store_->ListOutbox(all[1].seq, 1));
  ASSERT_EQ(tail.size(), 1u);
  EXPECT_EQ(tail[0].seq, all[2].seq);
  EXPECT_EQ(tail[0].app_id, app);
  EXPECT_EQ(tail[0].migration_id, "m1");
  ASSERT_OK_AND_ASSIGN(auto after_end, store_->ListOutbox(end, 100));
  EXPECT_TRUE(after_end.empty());
  store_->SetChangeListener(nullptr);
}

TEST_P(ControlStoreConformance, AnAppsFailingDeliveryHoldsOnlyThatAppsLaterEvents) {
  ASSERT_OK(store_->StartWebhook("hook"));
  for (std::string app : {"app_aaaaaaaaaaaa", "app_bbbbbbbbbbbb"}) {
    ASSERT_OK(store_->CreateApp(MakeApp(app)));
    ASSERT_OK(store_->CreateMigration(MakeMigration("m-" + app, app)));
    ASSERT_OK_AND_ASSIGN(auto c, store_->ClaimNext("w", 1000, 60000));
    Migration m = *c;
    ASSERT_OK(Walk(*store_, m, Step::kReservingDest));
    ASSERT_OK(Walk(*store_, m, Step::kAborted));
  }
  ASSERT_OK(store_->QueueWebhookDeliveries("hook", {"*"}, 1000, 100).status());
  ASSERT_OK_AND_ASSIGN(auto due, store_->DueWebhookDeliveries("hook", 1000, 100));
  ASSERT_EQ(due.size(), 2u);  // the head of each app
  // a's head fails: retried later; b's events go on meanwhile, a's wait behind its head.
  WebhookDelivery a = due[0];
  a.attempts = 1;
  a.next_attempt_at_ms = 5000;
  a.last_error = "HTTP 500";
  a.last_code = 500;
  a.updated_at_ms = 1000;
  ASSERT_OK(store_->RecordWebhookAttempt(a));
  std::vector<WebhookDelivery> early = DrainDeliveries(*store_, "hook", 1000);
  ASSERT_EQ(early.size(), 3u);
  for (const auto& d : early) EXPECT_EQ(d.event.app_id, "app_bbbbbbbbbbbb");
  ASSERT_OK_AND_ASSIGN(auto failing, store_->ListWebhookDeliveries(kDeliveryPending, 10));
  ASSERT_GE(failing.size(), 1u);
  std::vector<WebhookDelivery> late = DrainDeliveries(*store_, "hook", 5000);
  ASSERT_EQ(Types(late), (std::vector<std::string>{"migration.started", "migration.step_changed",
                                                   "migration.aborted"}));
  for (const auto& d : late) EXPECT_EQ(d.event.app_id, "app_aaaaaaaaaaaa");
}

int Pruned(ControlStore& store, int64_t before_ms) {
  auto n = store.PruneOutbox(before_ms, 100);
  EXPECT_TRUE(n.ok()) << n.status().ToString();
  return n.ok() ? *n : -1;
}

TEST_P(ControlStoreConformance, PruningRemovesOnlyTheOldestEntriesAndTheirDeliveries) {
  ASSERT_OK(store_->StartWebhook("hook"));
  const std::string app = "app_aaaaaaaaaaaa";
  ASSERT_OK(store_->CreateApp(MakeApp(app)));
  Migration created = MakeMigration("m1", app);
  created.updated_at_ms = 1000;  // migration.started at 1000
  ASSERT_OK(store_->CreateMigration(created));
  ASSERT_OK_AND_ASSIGN(auto c, store_->ClaimNext("w", 1000, 60000));
  Migration m = *c;
  m.updated_at_ms = 5000;
  ASSERT_OK(Walk(*store_, m, Step::kReservingDest));  // 5010
  ASSERT_OK(Walk(*store_, m, Step::kAborted));        // 5020
  ASSERT_OK(store_->QueueWebhookDeliveries("hook", {"*"}, 6000, 100).status());
  EXPECT_EQ(Pruned(*store_, 1000), 0);  // nothing before 1000 (started is at 1000)
  EXPECT_EQ(Pruned(*store_, 5015), 2);  // started, reserving_dest (5010)
  ASSERT_OK_AND_ASSIGN(auto left, store_->ListWebhookDeliveries("", 100));
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].event.type, "migration.aborted");
  ASSERT_OK_AND_ASSIGN(auto due, store_->DueWebhookDeliveries("hook", 6000, 100));
  ASSERT_EQ(due.size(), 1u);  // what is left still goes out
  EXPECT_EQ(Pruned(*store_, 9999), 1);
  EXPECT_EQ(Pruned(*store_, 9999), 0);
}

}  // namespace
}  // namespace regionmove::testing
