// The conformance suite of the Database port.
#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "common/hash.h"
#include "conformance/dataplane_conformance.h"

namespace regionmove::testing {
namespace {

using nlohmann::json;
const std::string kApp = "app_aaaaaaaaaaaa";

TableSpec AllTypes() {
  return TableSpec{"things",
                   {{"title", "text"},
                    {"count", "integer"},
                    {"price", "real"},
                    {"active", "boolean"},
                    {"meta", "json"},
                    {"at", "timestamp"},
                    {"data", "bytes"}}};
}

// Copies kApp from `src` (region a-1) to `dst`, as a move's dumping_data and restoring_data do.
Status Copy(Database* src, Database* dst, const std::string& stage, int64_t token = 0,
            const ProgressFn& progress = nullptr) {
  ASSIGN_OR_RETURN(json state, src->ExportCopy(kApp, stage, progress));
  return dst->ImportCopy(kApp, "a-1", state, nullptr, token);
}

TEST_P(DatabaseConformance, LifecycleIsIdempotent) {
  auto db = OpenRegion(GetParam(), dir_.path(), "a-1", &rng_);
  ASSERT_OK_AND_ASSIGN(bool before, db->Exists(kApp));
  EXPECT_FALSE(before);
  ASSERT_OK(db->Create(kApp));
  ASSERT_OK(db->Create(kApp));
  ASSERT_OK_AND_ASSIGN(bool after, db->Exists(kApp));
  EXPECT_TRUE(after);
  ASSERT_OK(db->Drop(kApp));
  ASSERT_OK(db->Drop(kApp));
  ASSERT_OK_AND_ASSIGN(bool gone, db->Exists(kApp));
  EXPECT_FALSE(gone);
  EXPECT_EQ(db->ListTables(kApp).status().code(), StatusCode::kNotFound);
}

// The sizes of many apps at once (a region's usage) are what each app's size is alone.
TEST_P(DatabaseConformance, SizesOfManyAppsAreEachAppsSize) {
  auto db = OpenRegion(GetParam(), dir_.path(), "a-1", &rng_);
  ASSERT_OK(db->Create(kApp));
  ASSERT_OK(db->CreateTable(kApp, TableSpec{"t", {{"n", "integer"}}}));
  json rows = json::array();
  for (int i = 0; i < 500; ++i) rows.push_back({{"id", "r" + std::to_string(i)}, {"n", i}});
  ASSERT_OK(db->InsertRows(kApp, "t", rows).status());
  const std::string absent = "app_zzzzzzzzzzzz";
  ASSERT_OK_AND_ASSIGN(int64_t alone, db->SizeBytes(kApp));
  EXPECT_GT(alone, 0);
  ASSERT_OK_AND_ASSIGN(auto sizes, db->SizesBytes({kApp, absent}));
  EXPECT_EQ(sizes.size(), 2u);
  EXPECT_EQ(sizes[kApp], alone);
  EXPECT_EQ(sizes[absent], 0);
  ASSERT_OK_AND_ASSIGN(auto none, db->SizesBytes({}));
  EXPECT_TRUE(none.empty());
}

TEST_P(DatabaseConformance, EveryColumnTypeRoundTrips) {
  auto db = OpenRegion(GetParam(), dir_.path(), "a-1", &rng_);
  ASSERT_OK(db->Create(kApp));
  ASSERT_OK(db->CreateTable(kApp, AllTypes()));
  json row = {{"id", "r1"},
              {"title", "héllo \"quoted\""},
              {"count", 9007199254740993LL},
              {"price", 12.5},
              {"active", true},
              {"meta", {{"tags", {"a", "b"}}, {"n", 1}}},
              {"at", "2026-11-25T10:00:00Z"},
              {"data", Base64Encode(std::string("\x00\x01\xff", 3))}};
  ASSERT_OK_AND_ASSIGN(json inserted, db->InsertRows(kApp, "things", row));
  ASSERT_EQ(inserted.size(), 1u);
  ASSERT_OK_AND_ASSIGN(json got, db->GetRow(kApp, "things", "r1"));
  EXPECT_EQ(got, row);
  ASSERT_OK_AND_ASSIGN(json nulls, db->InsertRows(kApp, "things", json{{"title", "only"}}));
  std::string gen = nulls[0]["id"];
  EXPECT_FALSE(gen.empty());
  ASSERT_OK_AND_ASSIGN(json g2, db->GetRow(kApp, "things", gen));
  EXPECT_TRUE(g2["count"].is_null());
  ASSERT_OK_AND_ASSIGN(json patched, db->UpdateRow(kApp, "things", "r1", {{"count", 3}}));
  EXPECT_EQ(patched["count"], 3);
  EXPECT_EQ(patched["title"], row["title"]);
  ASSERT_OK_AND_ASSIGN(auto tables, db->ListTables(kApp));
  ASSERT_EQ(tables.size(), 1u);
  EXPECT_EQ(tables[0].row_count, 2);
  EXPECT_EQ(tables[0].columns.size(), 7u);
  ASSERT_OK(db->DeleteRow(kApp, "things", "r1"));
  EXPECT_EQ(db->DeleteRow(kApp, "things", "r1").code(), StatusCode::kNotFound);
  EXPECT_EQ(db->GetRow(kApp, "things", "r1").status().code(), StatusCode::kNotFound);
}

TEST_P(DatabaseConformance, BadInputChangesNothing) {
  auto db = OpenRegion(GetParam(), dir_.path(), "a-1", &rng_);
  ASSERT_OK(db->Create(kApp));
  EXPECT_EQ(db->CreateTable(kApp, TableSpec{"1bad", {}}).reason(), "invalid_name");
  EXPECT_EQ(db->CreateTable(kApp, TableSpec{"_rm_x", {}}).reason(), "invalid_name");
  EXPECT_EQ(db->CreateTable(kApp, TableSpec{"t", {{"id", "text"}}}).reason(), "invalid_name");
  EXPECT_EQ(db->CreateTable(kApp, TableSpec{"t", {{"a", "float"}}}).code(),
            StatusCode::kInvalidArgument);
  ASSERT_OK(db->CreateTable(kApp, AllTypes()));
  EXPECT_EQ(db->CreateTable(kApp, AllTypes()).reason(), "table_exists");
  // A batch with one ill-typed row inserts nothing.
  json batch = json::array({{{"id", "ok1"}, {"count", 1}}, {{"id", "bad"}, {"count", "one"}}});
  Status s = db->InsertRows(kApp, "things", batch).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("count"), std::string::npos);
  EXPECT_EQ(db->GetRow(kApp, "things", "ok1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(db->InsertRows(kApp, "things", {{"nope", 1}}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(db->InsertRows(kApp, "things", {{"data", "!!notbase64"}}).status().code(),
            StatusCode::kInvalidArgument);
  for (const char* at : {"not a time", "2026-13-01", "2026-01-01T25:00:00Z", "2026-01-01T10:00+"}) {
    EXPECT_EQ(db->InsertRows(kApp, "things", {{"at", at}}).status().code(),
              StatusCode::kInvalidArgument)
        << at;
  }
  // Forms of RFC 3339 and ISO 8601 that are accepted.
  int n = 0;
  for (const char* at : {"2026-01-31", "2026-01-31T09:30:00Z", "2026-01-31 09:30:00.123+01:00",
                         "2026-01-31T09:30-0500"}) {
    EXPECT_OK(
        db->InsertRows(kApp, "things", {{"id", "t" + std::to_string(n++)}, {"at", at}}).status())
        << at;
  }
  EXPECT_EQ(db->InsertRows(kApp, "missing", {{"a", 1}}).status().code(), StatusCode::kNotFound);
  ASSERT_OK(db->InsertRows(kApp, "things", {{"id", "x"}}).status());
  EXPECT_EQ(db->InsertRows(kApp, "things", {{"id", "x"}}).status().reason(), "row_exists");
}

TEST_P(DatabaseConformance, KeysetPaging) {
  auto db = OpenRegion(GetParam(), dir_.path(), "a-1", &rng_);
  ASSERT_OK(db->Create(kApp));
  ASSERT_OK(db->CreateTable(kApp, TableSpec{"t", {{"n", "integer"}}}));
  json rows = json::array();
  for (int i = 0; i < 25; ++i) {
    char id[8];
    std::snprintf(id, sizeof(id), "k%02d", i);
    rows.push_back({{"id", id}, {"n", i}});
  }
  ASSERT_OK(db->InsertRows(kApp, "t", rows).status());
  std::string after;
  int seen = 0, pages = 0;
  while (true) {
    ASSERT_OK_AND_ASSIGN(json page, db->ListRows(kApp, "t", after, 10));
    if (page.empty()) break;
    for (const auto& r : page) {
      EXPECT_EQ(r["n"], seen);
      ++seen;
    }
    after = page.back()["id"];
    ++pages;
  }
  EXPECT_EQ(seen, 25);
  EXPECT_EQ(pages, 3);
}

TEST_P(DatabaseConformance, FenceBlocksWritesNotReadsAcrossHandles) {
  auto db = OpenRegion(GetParam(), dir_.path(), "a-1", &rng_);
  auto other = OpenRegion(GetParam(), dir_.path(), "a-1", &rng_);  // as another process
  ASSERT_OK(db->Create(kApp));
  ASSERT_OK(db->CreateTable(kApp, TableSpec{"t", {{"n", "integer"}}}));
  ASSERT_OK(db->InsertRows(kApp, "t", {{"id", "a"}, {"n", 1}}).status());
  ASSERT_OK(db->Fence(kApp));
  ASSERT_OK_AND_ASSIGN(bool fenced, other->IsFenced(kApp));
  EXPECT_TRUE(fenced);
  EXPECT_EQ(db->InsertRows(kApp, "t", {{"n", 2}}).status().reason(), "app_migrating");
  EXPECT_EQ(other->InsertRows(kApp, "t", {{"n", 2}}).status().reason(), "app_migrating");
  EXPECT_EQ(other->UpdateRow(kApp, "t", "a", {{"n", 5}}).status().reason(), "app_migrating");
  EXPECT_EQ(other->DeleteRow(kApp, "t", "a").reason(), "app_migrating");
  EXPECT_EQ(other->CreateTable(kApp, TableSpec{"u", {}}).reason(), "app_migrating");
  ASSERT_OK_AND_ASSIGN(json row, other->GetRow(kApp, "t", "a"));
  EXPECT_EQ(row["n"], 1);
  ASSERT_OK(other->Unfence(kApp));
  ASSERT_OK(db->InsertRows(kApp, "t", {{"n", 3}}).status());
}

// Writers run while the fence lands: every acknowledged write is present, none lands after.
TEST_P(DatabaseConformance, FenceDrainsWritesInFlight) {
  auto db = OpenRegion(GetParam(), dir_.path(), "a-1", &rng_);
  auto other = OpenRegion(GetParam(), dir_.path(), "a-1", &rng_);
  ASSERT_OK(db->Create(kApp));
  ASSERT_OK(db->CreateTable(kApp, TableSpec{"t", {{"n", "integer"}}}));
  std::atomic<bool> fenced{false};
  std::atomic<int> acked{0}, refused{0}, acked_after_fence{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      Database* d = w % 2 ? other.get() : db.get();
      for (int i = 0; i < 200; ++i) {
        bool was_fenced = fenced.load();
        auto r = d->InsertRows(kApp, "t",
                               {{"id", std::to_string(w) + "-" + std::to_string(i)}, {"n", i}});
        if (r.ok()) {
          acked++;
          if (was_fenced) acked_after_fence++;
        } else if (r.status().reason() == "app_migrating") {
          refused++;
        } else if (!r.status().retryable()) {
          ADD_FAILURE() << r.status().ToString();
        }
      }
    });
  }
  while (acked.load() < 50) std::this_thread::yield();
  ASSERT_OK(db->Fence(kApp));
  fenced = true;
  for (auto& t : writers) t.join();
  EXPECT_EQ(acked_after_fence.load(), 0);
  EXPECT_GT(refused.load(), 0);
  ASSERT_OK_AND_ASSIGN(auto tables, db->ListTables(kApp));
  EXPECT_EQ(tables[0].row_count, acked.load());
}

// Concurrent writers share commits: a write that fails (a duplicate id) undoes only itself, and
// every acknowledged write is there, every refused one is not.
TEST_P(DatabaseConformance, ConcurrentWritesKeepExactlyWhatTheyAcknowledged) {
  auto db = OpenRegion(GetParam(), dir_.path(), "a-1", &rng_);
  ASSERT_OK(db->Create(kApp));
  ASSERT_OK(db->CreateTable(kApp, TableSpec{"t", {{"n", "integer"}}}));
  ASSERT_OK(db->InsertRows(kApp, "t", {{"id", "taken"}, {"n", 0}}).status());
  std::mutex mu;
  std::set<std::string> acked;
  std::atomic<int> refused{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 6; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < 150; ++i) {
        std::string id = std::to_string(w) + "-" + std::to_string(i);
        // Every third write carries a row whose id is taken: the whole write is refused.
        json rows = i % 3 == 0 ? json::array({{{"id", id}, {"n", i}}, {{"id", "taken"}, {"n", 1}}})
                               : json{{"id", id}, {"n", i}};
        auto r = db->InsertRows(kApp, "t", rows);
        if (r.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          acked.insert(id);
        } else {
          refused++;
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(refused.load(), 6 * 50);
  std::set<std::string> stored;
  std::string after;
  for (;;) {
    ASSERT_OK_AND_ASSIGN(json page, db->ListRows(kApp, "t", after, 1000));
    if (page.empty()) break;
    for (const auto& row : page) stored.insert(row["id"].get<std::string>());
    after = page.back()["id"];
  }
  stored.erase("taken");
  EXPECT_EQ(stored, acked);
  EXPECT_EQ(acked.size(), 6u * 100);
}

// Writes outside the database (blobs, runtime rows) drain and stop with the fence too.
TEST_P(DatabaseConformance, WriteFenceCoversOtherWrites) {
  auto db = OpenRegion(GetParam(), dir_.path(), "a-1", &rng_);
  auto other = OpenRegion(GetParam(), dir_.path(), "a-1", &rng_);
  ASSERT_OK(db->Create(kApp));
  std::atomic<bool> inside{false}, finished{false}, fenced_before_finish{false};
  std::thread writer([&] {
    EXPECT_OK(db->WithWriteFence(kApp, [&] {
      inside = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      finished = true;
      return Status::Ok();
    }));
  });
  while (!inside.load()) std::this_thread::yield();
  ASSERT_OK(other->Fence(kApp));  // must wait for the write in flight
  fenced_before_finish = !finished.load();
  writer.join();
  EXPECT_FALSE(fenced_before_finish.load());
  bool ran = false;
  Status s = db->WithWriteFence(kApp, [&] {
    ran = true;
    return Status::Ok();
  });
  EXPECT_EQ(s.reason(), "app_migrating");
  EXPECT_FALSE(ran);
  Status inner = other->WithWriteFence(kApp, [] { return Status::Ok(); });
  EXPECT_EQ(inner.reason(), "app_migrating");
}

TEST_P(DatabaseConformance, CopyVerifies) {
  auto src = OpenRegion(GetParam(), dir_.path(), "a-1", &rng_);
  auto dst = OpenRegion(GetParam(), dir_.path(), "b-1", &rng_);
  ASSERT_OK(src->Create(kApp));
  ASSERT_OK(src->CreateTable(kApp, AllTypes()));
  json rows = json::array();
  for (int i = 0; i < 500; ++i) {
    rows.push_back({{"id", "r" + std::to_string(i)},
                    {"title", "row " + std::to_string(i)},
                    {"count", i},
                    {"price", i * 0.25},
                    {"active", i % 2 == 0},
                    {"data", Base64Encode(std::string(static_cast<size_t>(i % 50), 'x'))}});
  }
  ASSERT_OK(src->InsertRows(kApp, "things", rows).status());
  ASSERT_OK(src->Fence(kApp));
  int calls = 0;
  ASSERT_OK(Copy(src.get(), dst.get(), dir_.File("stage"), 0, [&](int64_t done, int64_t total) {
    EXPECT_LE(done, total);
    ++calls;
    return Status::Ok();
  }));
  EXPECT_GT(calls, 0);
  ASSERT_OK_AND_ASSIGN(auto ds, src->Digest(kApp));
  ASSERT_OK_AND_ASSIGN(auto dd, dst->Digest(kApp));
  EXPECT_EQ(ds, dd);
  ASSERT_FALSE(ds.empty());
  // The restored copy starts fenced.
  ASSERT_OK_AND_ASSIGN(bool fenced, dst->IsFenced(kApp));
  EXPECT_TRUE(fenced);
  ASSERT_OK(dst->Unfence(kApp));
  // A change on one side shows in the digest.
  ASSERT_OK(dst->UpdateRow(kApp, "things", "r7", {{"count", -1}}).status());
  ASSERT_OK_AND_ASSIGN(auto changed, dst->Digest(kApp));
  EXPECT_NE(changed, ds);
}

// The digest depends on the rows, not on the order they were written (or are stored) in: two
// databases that took the same rows in opposite orders agree, and swapping two rows' values,
// which keeps every column's multiset of values, does not go unseen.
TEST_P(DatabaseConformance, DigestSeesRowsNotTheirOrder) {
  auto a = OpenRegion(GetParam(), dir_.path(), "a-1", &rng_);
  auto b = OpenRegion(GetParam(), dir_.path(), "b-1", &rng_);
  std::vector<json> rows;
  for (int i = 0; i < 300; ++i) {
    rows.push_back({{"id", "r" + std::to_string(i)},
                    {"title", "row " + std::to_string(i)},
                    {"count", i},
                    {"price", i * 0.5},
                    {"active", i % 3 == 0}});
  }
  for (Database* db : {a.get(), b.get()}) {
    ASSERT_OK(db->Create(kApp));
    ASSERT_OK(db->CreateTable(kApp, AllTypes()));
  }
  ASSERT_OK(a->InsertRows(kApp, "things", json(rows)).status());
  for (auto it = rows.rbegin(); it != rows.rend(); ++it) {
    ASSERT_OK(b->InsertRows(kApp, "things", json::array({*it})).status());
  }
  // A row deleted and written again lands elsewhere in storage.
  ASSERT_OK(b->DeleteRow(kApp, "things", "r150"));
  ASSERT_OK(b->InsertRows(kApp, "things", json::array({rows[150]})).status());
  ASSERT_OK_AND_ASSIGN(auto da, a->Digest(kApp));
  ASSERT_OK_AND_ASSIGN(auto db, b->Digest(kApp));
  EXPECT_EQ(da, db);
  ASSERT_OK(b->UpdateRow(kApp, "things", "r1", {{"title", "row 2"}}).status());
  ASSERT_OK(b->UpdateRow(kApp, "things", "r2", {{"title", "row 1"}}).status());
  ASSERT_OK_AND_ASSIGN(auto swapped, b->Digest(kApp));
  ASSERT_EQ(swapped.size(), da.size());
  bool things_differ = false;
  for (size_t i = 0; i < da.size(); ++i) {
    if (da[i].table.find("things") == std::string::npos) continue;
    EXPECT_EQ(swapped[i].rows, da[i].rows);
    things_differ = swapped[i].checksum != da[i].checksum;
  }
  EXPECT_TRUE(things_differ);
}

// Another process drops the database and restores a new one in its place: this handle, which
// had the old one open, sees the new one.
TEST_P(DatabaseConformance, ReplacementByAnotherProcessIsSeen) {
  auto src = OpenRegion(GetParam(), dir_.path(), "a-1", &rng_);
  auto mine = OpenRegion(GetParam(), dir_.path(), "b-1", &rng_);
  auto theirs = OpenRegion(GetParam(), dir_.path(), "b-1", &rng_);
  ASSERT_OK(src->Create(kApp));
  ASSERT_OK(src->CreateTable(kApp, TableSpec{"t", {{"n", "integer"}}}));
  ASSERT_OK(src->InsertRows(kApp, "t", {{"id", "new"}, {"n", 2}}).status());
  ASSERT_OK(mine->Create(kApp));
  ASSERT_OK(mine->CreateTable(kApp, TableSpec{"t", {{"n", "integer"}}}));
  ASSERT_OK(mine->InsertRows(kApp, "t", {{"id", "old"}, {"n", 1}}).status());
  ASSERT_OK(Copy(src.get(), theirs.get(), dir_.File("stage")));
  ASSERT_OK(theirs->Unfence(kApp));
  EXPECT_EQ(mine->GetRow(kApp, "t", "old").status().code(), StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(json row, mine->GetRow(kApp, "t", "new"));
  EXPECT_EQ(row["n"], 2);
  ASSERT_OK(mine->InsertRows(kApp, "t", {{"id", "after"}}).status());
  ASSERT_OK_AND_ASSIGN(json seen, theirs->GetRow(kApp, "t", "after"));  // not lost in a ghost
  ASSERT_OK(theirs->Drop(kApp));
  EXPECT_EQ(mine->GetRow(kApp, "t", "new").status().code(), StatusCode::kNotFound);
}

// A worker paused past its lease (token 5) resumes after a later one (token 7) restored,
// unfenced and let clients write: every destructive action of the stale one is refused, from
// any handle (as from another process), and the data stays.
TEST_P(DatabaseConformance, AStaleWorkersTokenIsFencedOut) {
  auto src = OpenRegion(GetParam(), dir_.path(), "a-1", &rng_);
  auto later = OpenRegion(GetParam(), dir_.path(), "b-1", &rng_);
  auto stale = OpenRegion(GetParam(), dir_.path(), "b-1", &rng_);
  ASSERT_OK(src->Create(kApp));
  ASSERT_OK(src->CreateTable(kApp, TableSpec{"t", {{"n", "integer"}}}));
  ASSERT_OK(src->InsertRows(kApp, "t", {{"id", "a"}, {"n", 1}}).status());
  ASSERT_OK_AND_ASSIGN(json state, src->ExportCopy(kApp, dir_.File("stage"), nullptr));
  ASSERT_OK(later->ImportCopy(kApp, "a-1", state, nullptr, 7));
  ASSERT_OK(later->Unfence(kApp, 7));
  ASSERT_OK(later->InsertRows(kApp, "t", {{"id", "acked"}, {"n", 2}}).status());
  EXPECT_EQ(stale->ImportCopy(kApp, "a-1", state, nullptr, 5).reason(), "fenced");
  EXPECT_EQ(stale->Unfence(kApp, 5).reason(), "fenced");
  EXPECT_EQ(stale->Drop(kApp, 5).reason(), "fenced");
  ASSERT_OK_AND_ASSIGN(json row, later->GetRow(kApp, "t", "acked"));
  EXPECT_EQ(row["n"], 2);
  // Equal or later tokens act; token 0 is not checked (callers serialised otherwise).
  ASSERT_OK(stale->Unfence(kApp, 7));
  ASSERT_OK(stale->Drop(kApp, 8));
  ASSERT_OK_AND_ASSIGN(bool exists, later->Exists(kApp));
  EXPECT_FALSE(exists);
  ASSERT_OK(later->ImportCopy(kApp, "a-1", state, nullptr, 0));
  ASSERT_OK(later->Drop(kApp, 0));
}

TEST_P(DatabaseConformance, ExportStopsWhenProgressSaysStop) {
  auto src = OpenRegion(GetParam(), dir_.path(), "a-1", &rng_);
  ASSERT_OK(src->Create(kApp));
  Status s = src->ExportCopy(kApp, dir_.File("stage"),
                             [](int64_t, int64_t) { return Cancelled("abort requested"); })
                 .status();
  EXPECT_EQ(s.code(), StatusCode::kCancelled);
}

}  // namespace
}  // namespace regionmove::testing
