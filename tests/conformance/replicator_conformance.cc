// The conformance suite of the Replicator port.
#include <atomic>
#include <chrono>
#include <thread>

#include "conformance/dataplane_conformance.h"

namespace regionmove::testing {
namespace {

using nlohmann::json;
const std::string kApp = "app_aaaaaaaaaaaa";

// Primary "a-1" and replica "b-1" holding the same data, as after a move's restore.

// The app in the primary: table t with rows r0..r99.
Status Populate(ReplicationPair& p) {
  RETURN_IF_ERROR(p.a->Create(kApp));
  RETURN_IF_ERROR(p.a->CreateTable(kApp, TableSpec{"t", {{"n", "integer"}, {"s", "text"}}}));
  json rows = json::array();
  for (int i = 0; i < 100; ++i) rows.push_back({{"id", "r" + std::to_string(i)}, {"n", i}});
  return p.a->InsertRows(kApp, "t", rows).status();
}

Status Seed(ReplicationPair& p, const std::string& dir) {
  RETURN_IF_ERROR(Populate(p));
  RETURN_IF_ERROR(p.a->Fence(kApp));
  ASSIGN_OR_RETURN(json state, p.a->ExportCopy(kApp, dir + "/seed", nullptr));
  RETURN_IF_ERROR(p.b->ImportCopy(kApp, "a-1", state, nullptr));
  return p.a->Unfence(kApp);
}

Status Equal(ReplicationPair& p) {
  ASSIGN_OR_RETURN(auto da, p.a->Digest(kApp));
  ASSIGN_OR_RETURN(auto db, p.b->Digest(kApp));
  if (da != db) return Corruption("replica differs from primary");
  return Status::Ok();
}

// Pumps until the replica has caught up (an engine that applies by itself may need several
// calls, e.g. while a table that DDL added is being copied), for at most a minute.
Result<ReplicationLag> PumpUntilCaughtUp(ReplicationPair& p) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    ASSIGN_OR_RETURN(ReplicationLag lag, p.replicator->Pump(kApp, "a-1", "b-1"));
    if (lag.caught_up() || std::chrono::steady_clock::now() > deadline) return lag;
  }
}

TEST_P(ReplicatorConformance, AppliesEveryCommittedWriteInOrder) {
  ASSERT_OK_AND_ASSIGN(auto p, OpenPair(GetParam(), dir_.path(), &rng_));
  ASSERT_OK(Seed(p, dir_.path()));
  ASSERT_OK(p.replicator->Start(kApp, "a-1", "b-1"));
  ASSERT_OK(p.replicator->Start(kApp, "a-1", "b-1"));  // idempotent
  ASSERT_OK(p.a->InsertRows(kApp, "t", {{"id", "new"}, {"n", 1000}}).status());
  ASSERT_OK(p.a->UpdateRow(kApp, "t", "r5", {{"s", "changed"}}).status());
  ASSERT_OK(p.a->DeleteRow(kApp, "t", "r6"));
  ASSERT_OK(p.a->CreateTable(kApp, TableSpec{"later", {{"v", "json"}}}));  // DDL too
  ASSERT_OK(p.a->InsertRows(kApp, "later", {{"v", {{"x", 1}}}}).status());
  ASSERT_OK_AND_ASSIGN(ReplicationLag after, PumpUntilCaughtUp(p));
  EXPECT_TRUE(after.caught_up());
  EXPECT_EQ(after.bytes, 0);
  EXPECT_GE(after.replica_position, after.primary_position);
  EXPECT_GT(after.primary_position, 0);
  ASSERT_OK(Equal(p));
  ASSERT_OK_AND_ASSIGN(json got, p.b->GetRow(kApp, "t", "r5"));
  EXPECT_EQ(got["s"], "changed");
}

// The applier's position commits with each change: a new process (new handles) resumes where
// the old one stopped, applying nothing twice and skipping nothing.
TEST_P(ReplicatorConformance, RestartResumesWithoutLossOrDoubleApply) {
  {
    ASSERT_OK_AND_ASSIGN(auto p, OpenPair(GetParam(), dir_.path(), &rng_));
    ASSERT_OK(Seed(p, dir_.path()));
    ASSERT_OK(p.replicator->Start(kApp, "a-1", "b-1"));
    for (int i = 0; i < 10; ++i) {
      ASSERT_OK(p.a->UpdateRow(kApp, "t", "r1", {{"n", i}}).status());
      ASSERT_OK(p.a->InsertRows(kApp, "t", {{"id", "x" + std::to_string(i)}}).status());
    }
    ASSERT_OK_AND_ASSIGN(ReplicationLag caught_up, p.replicator->Pump(kApp, "a-1", "b-1"));
    EXPECT_TRUE(caught_up.caught_up());
    for (int i = 10; i < 20; ++i) {
      ASSERT_OK(p.a->InsertRows(kApp, "t", {{"id", "x" + std::to_string(i)}}).status());
    }
  }  // "crash": the second batch is recorded but not applied
  ASSERT_OK_AND_ASSIGN(auto p, OpenPair(GetParam(), dir_.path(), &rng_));
  ASSERT_OK_AND_ASSIGN(ReplicationLag done, p.replicator->Pump(kApp, "a-1", "b-1"));
  EXPECT_TRUE(done.caught_up());
  ASSERT_OK(Equal(p));
  ASSERT_OK_AND_ASSIGN(auto tables, p.b->ListTables(kApp));
  EXPECT_EQ(tables[0].row_count, 120);
  ASSERT_OK_AND_ASSIGN(json r1, p.b->GetRow(kApp, "t", "r1"));
  EXPECT_EQ(r1["n"], 9);
}

// Two appliers (two processes) pumping at once apply every change exactly once: the log holds
// DDL, which would fail if applied twice.
TEST_P(ReplicatorConformance, ConcurrentAppliersApplyOnce) {
  ASSERT_OK_AND_ASSIGN(auto p, OpenPair(GetParam(), dir_.path(), &rng_));
  ASSERT_OK(Seed(p, dir_.path()));
  ASSERT_OK(p.replicator->Start(kApp, "a-1", "b-1"));
  ASSERT_OK_AND_ASSIGN(auto q, OpenPair(GetParam(), dir_.path(), &rng_));
  for (int i = 0; i < 30; ++i) {
    std::string t = "t" + std::to_string(i);
    ASSERT_OK(p.a->CreateTable(kApp, TableSpec{t, {{"n", "integer"}}}));
    ASSERT_OK(p.a->InsertRows(kApp, t, {{"n", i}}).status());
  }
  Status s1, s2;
  std::thread one([&] { s1 = p.replicator->Pump(kApp, "a-1", "b-1").status(); });
  std::thread two([&] { s2 = q.replicator->Pump(kApp, "a-1", "b-1").status(); });
  one.join();
  two.join();
  EXPECT_OK(s1);
  EXPECT_OK(s2);
  ASSERT_OK_AND_ASSIGN(ReplicationLag lag, PumpUntilCaughtUp(p));
  EXPECT_TRUE(lag.caught_up());
  ASSERT_OK(Equal(p));
}

// Replication can start while the primary keeps taking writes (the base of an online move):
// the copy reads the primary as of a consistent point, the change stream carries what commits
// after it, and the replica ends equal, with every acknowledged write exactly once.
TEST_P(ReplicatorConformance, StartsFromASnapshotWhileWritesContinue) {
  ASSERT_OK_AND_ASSIGN(auto p, OpenPair(GetParam(), dir_.path(), &rng_));
  ASSERT_OK(Populate(p));

  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  Status writer_status;
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      Status s = p.a->InsertRows(kApp, "t", {{"id", "w" + std::to_string(i)}, {"n", i}}).status();
      if (s.ok())
        s = p.a->UpdateRow(kApp, "t", "r" + std::to_string(i % 100), {{"n", -i}}).status();
      if (!s.ok()) {
        writer_status = s;
        return;
      }
      ++written;
    }
  });
  // Waits (at most 20 s) until the writer has acknowledged `n` more writes.
  auto more = [&](int n) {
    const int target = written + n;
    for (int i = 0; i < 2000 && written < target && writer_status.ok(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return written >= target;
  };
  EXPECT_TRUE(more(20));
  int during = -1;
  Status started = p.replicator->StartFromSnapshot(kApp, "a-1", "b-1", [&](const json& at) {
    const int before = written;
    ASSIGN_OR_RETURN(json state, p.a->ExportCopy(kApp, dir_.path() + "/online", nullptr, at));
    more(20);  // writes go on while the copy runs
    Status s = p.b->ImportCopy(kApp, "a-1", state, nullptr);
    during = written - before;
    return s;
  });
  EXPECT_TRUE(more(20));
  stop = true;
  writer.join();
  ASSERT_OK(started);
  ASSERT_OK(writer_status);
  EXPECT_GE(during, 20);
  ASSERT_OK_AND_ASSIGN(ReplicationLag lag, PumpUntilCaughtUp(p));
  EXPECT_TRUE(lag.caught_up());
  ASSERT_OK(Equal(p));
  ASSERT_OK_AND_ASSIGN(auto tables, p.b->ListTables(kApp));
  ASSERT_EQ(tables.size(), 1u);
  EXPECT_EQ(tables[0].row_count, 100 + written);
}

// The replica of a replication started from a snapshot records the rows the stream changes, so
// that an online move's pause compares those rows alone (after a whole check at the snapshot).
TEST_P(ReplicatorConformance, ASnapshotStartRecordsTheRowsTheStreamChanged) {
  ASSERT_OK_AND_ASSIGN(auto p, OpenPair(GetParam(), dir_.path(), &rng_));
  ASSERT_OK(Populate(p));
  ASSERT_OK(p.replicator->StartFromSnapshot(kApp, "a-1", "b-1", [&](const json& at) -> Status {
    ASSIGN_OR_RETURN(json state, p.a->ExportCopy(kApp, dir_.path() + "/online", nullptr, at));
    // After the snapshot: reaches the replica through the stream, not the copy.
    RETURN_IF_ERROR(p.a->UpdateRow(kApp, "t", "r1", {{"n", -1}}).status());
    RETURN_IF_ERROR(p.b->ImportCopy(kApp, "a-1", state, nullptr));
    // The copy equals the source as of the snapshot, whose whole digest the export gave.
    if (!state.contains("digest")) return Corruption("the export of a snapshot has no digest");
    ASSIGN_OR_RETURN(auto at_snapshot, DigestFromJson(state["digest"]));
    ASSIGN_OR_RETURN(auto copy, p.b->Digest(kApp));
    if (at_snapshot != copy) return Corruption("the copy differs from the snapshot's digest");
    ASSIGN_OR_RETURN(auto now, p.a->Digest(kApp));
    if (now == copy) return Corruption("the source's digest did not see the write after it");
    return Status::Ok();
  }));
  ASSERT_OK(p.a->InsertRows(kApp, "t", {{"id", "new1"}, {"n", 1}}).status());
  ASSERT_OK(p.a->UpdateRow(kApp, "t", "r2", {{"s", "x"}}).status());
  ASSERT_OK(p.a->DeleteRow(kApp, "t", "r3"));
  ASSERT_OK_AND_ASSIGN(ReplicationLag lag, PumpUntilCaughtUp(p));
  ASSERT_TRUE(lag.caught_up());

  ASSERT_OK_AND_ASSIGN(DigestScope scope, p.replicator->Changed(kApp, "a-1", "b-1"));
  EXPECT_FALSE(scope.whole);
  EXPECT_TRUE(scope.tables.empty());
  ASSERT_EQ(scope.keys.size(), 1u);  // only t: the column catalog did not change
  const std::string table = scope.keys.begin()->first;
  EXPECT_TRUE(table == "t" || table == "public.t") << table;
  EXPECT_EQ(scope.key_count(), 4);  // r1, new1, r2, r3
  ASSERT_OK_AND_ASSIGN(auto pa, p.a->Digest(kApp, scope));
  ASSERT_OK_AND_ASSIGN(auto pb, p.b->Digest(kApp, scope));
  EXPECT_EQ(pa, pb);
  auto rows_of = [&](const std::vector<TableDigest>& d) -> int64_t {
    for (const auto& e : d) {
      if (e.table == table) return e.rows;
    }
    return -1;
  };
  EXPECT_EQ(rows_of(pa), 3);  // r3 is gone on both sides
  ASSERT_OK_AND_ASSIGN(auto whole, p.a->Digest(kApp));
  EXPECT_EQ(rows_of(whole), 100);

  // A changed row that differs is caught by the partial digest.
  ASSERT_OK(p.b->Unfence(kApp));
  ASSERT_OK(p.b->UpdateRow(kApp, "t", "r2", {{"s", "y"}}).status());
  ASSERT_OK_AND_ASSIGN(auto tampered, p.b->Digest(kApp, scope));
  EXPECT_NE(pa, tampered);
  ASSERT_OK(p.b->UpdateRow(kApp, "t", "r2", {{"s", "x"}}).status());
  ASSERT_OK(p.b->Fence(kApp));

  // A schema change travels; the tables it makes are not tracked, so the check is whole again.
  ASSERT_OK(p.a->CreateTable(kApp, TableSpec{"u", {{"v", "text"}}}));
  ASSERT_OK(PumpUntilCaughtUp(p).status());
  ASSERT_OK_AND_ASSIGN(scope, p.replicator->Changed(kApp, "a-1", "b-1"));
  EXPECT_TRUE(scope.whole);

  // Stop forgets the record (and leaves nothing of it in the schema both sides compare).
  ASSERT_OK(p.replicator->Stop(kApp, "a-1", "b-1"));
  ASSERT_OK_AND_ASSIGN(scope, p.replicator->Changed(kApp, "a-1", "b-1"));
  EXPECT_TRUE(scope.whole);
  ASSERT_OK(Equal(p));
}

TEST_P(ReplicatorConformance, StopForgetsPendingChanges) {
  ASSERT_OK_AND_ASSIGN(auto p, OpenPair(GetParam(), dir_.path(), &rng_));
  ASSERT_OK(Seed(p, dir_.path()));
  ASSERT_OK(p.replicator->Start(kApp, "a-1", "b-1"));
  ASSERT_OK(p.a->InsertRows(kApp, "t", {{"id", "z"}}).status());
  ASSERT_OK(p.replicator->Stop(kApp, "a-1", "b-1"));
  ASSERT_OK(p.replicator->Stop(kApp, "a-1", "b-1"));
  EXPECT_EQ(p.replicator->Lag(kApp, "a-1", "b-1").status().code(), StatusCode::kNotFound);
  // Writes after the stop are not recorded.
  ASSERT_OK(p.a->InsertRows(kApp, "t", {{"id", "w"}}).status());
  ASSERT_OK(p.replicator->Start(kApp, "a-1", "b-1"));
  ASSERT_OK_AND_ASSIGN(ReplicationLag lag, p.replicator->Pump(kApp, "a-1", "b-1"));
  EXPECT_TRUE(lag.caught_up());
  // Neither write reached the replica.
  EXPECT_EQ(p.b->GetRow(kApp, "t", "z").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(p.b->GetRow(kApp, "t", "w").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace regionmove::testing
