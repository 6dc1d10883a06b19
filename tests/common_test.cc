#include <set>
#include <thread>

#include "api/write_buffer.h"
#include "common/clock.h"
#include "common/hash.h"
#include "common/ids.h"
#include "common/result.h"
#include "common/secret_box.h"
#include "common/text.h"
#include "saga/backoff.h"
#include "test_util.h"

namespace regionmove {
namespace {

TEST(SecretBox, SealedValuesAreBoundToWhatTheyBelongTo) {
  ASSERT_OK_AND_ASSIGN(auto box, SecretBox::FromKey(std::string(32, 'k')));
  ASSERT_OK_AND_ASSIGN(std::string sealed, box->Seal("hunter2", "env\napp_a\nDB_PASSWORD"));
  ASSERT_OK_AND_ASSIGN(std::string opened, box->Open(sealed, "env\napp_a\nDB_PASSWORD"));
  EXPECT_EQ(opened, "hunter2");
  EXPECT_EQ(box->Open(sealed, "env\napp_b\nDB_PASSWORD").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(box->Open(sealed, "env\napp_a\nOTHER").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(box->Open(sealed).status().code(), StatusCode::kCorruption);
}

TEST(SecretBox, ProcessesStartingTogetherAgreeOnOneKey) {
  testing::TempDir dir;
  std::string path = dir.path() + "/keys/secret.key";
  constexpr int kN = 8;
  std::vector<std::string> sealed(kN);
  std::vector<std::thread> threads;
  for (int i = 0; i < kN; ++i) {
    threads.emplace_back([&, i] {
      auto box = SecretBox::FromKeyFile(path);
      ASSERT_TRUE(box.ok()) << box.status().ToString();
      auto s = (*box)->Seal("same secret");
      ASSERT_TRUE(s.ok());
      sealed[i] = *s;
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_OK_AND_ASSIGN(auto box, SecretBox::FromKeyFile(path));
  for (const auto& s : sealed) EXPECT_TRUE(box->Open(s).ok());  // every one sealed with it
  EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

// With a shared control store no process makes a key of its own: the key comes from the
// environment or from a file the operator put in place.
TEST(SecretBox, ADeploymentKeyIsGivenNotMade) {
  testing::TempDir dir;
  std::string path = dir.path() + "/secret.key";
  ::unsetenv("REGIONMOVE_SECRET_KEY");
  Status missing = SecretBox::ForDeployment(path, /*may_create=*/false).status();
  EXPECT_EQ(missing.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(missing.message().find("REGIONMOVE_SECRET_KEY"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(path));

  std::string hex;
  for (int i = 0; i < 32; ++i) hex += "a5";
  ::setenv("REGIONMOVE_SECRET_KEY", hex.c_str(), 1);
  ASSERT_OK_AND_ASSIGN(auto from_env, SecretBox::ForDeployment(path, false));
  ASSERT_OK_AND_ASSIGN(auto same, SecretBox::FromKey(std::string(32, '\xa5')));
  ASSERT_OK_AND_ASSIGN(std::string sealed, from_env->Seal("s3cret"));
  EXPECT_TRUE(same->Open(sealed).ok());
  ::setenv("REGIONMOVE_SECRET_KEY", "a5a5", 1);
  EXPECT_EQ(SecretBox::ForDeployment(path, false).status().code(), StatusCode::kInvalidArgument);
  ::unsetenv("REGIONMOVE_SECRET_KEY");

  // The embedded default (one machine) still makes its key on first use.
  ASSERT_OK(SecretBox::ForDeployment(path, /*may_create=*/true).status());
  EXPECT_TRUE(std::filesystem::exists(path));
  ASSERT_OK(SecretBox::ForDeployment(path, false).status());
}

TEST(Text, Utf8ValidationAndSuggestions) {
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("ünïcødé 😀"));
  EXPECT_FALSE(IsValidUtf8("\xc0\xae"));          // overlong '.'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));          // truncated
  EXPECT_EQ(SanitizeUtf8("a\xff"
                         "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(NearestName("dryrun", {"dest_region", "strategy", "dry_run"}), "dry_run");
  EXPECT_EQ(NearestName("dri", {"dir", "dsn"}), "dir");
  EXPECT_EQ(NearestName("zzzzzz", {"dir", "dsn"}), "");
}

TEST(Ids, AppIdsHaveThePrefixAndBase32Body) {
  Rng rng(7);
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewAppId(rng);
    EXPECT_TRUE(IsValidAppId(id)) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_FALSE(IsValidAppId("app_ABCDEFGHIJKL"));  // uppercase
  EXPECT_FALSE(IsValidAppId("app_abcdefghijk1"));  // '1' is not base32
  EXPECT_FALSE(IsValidAppId("app_abcdefghijk"));   // too short
  EXPECT_FALSE(IsValidAppId("ap_abcdefghijklm"));
  EXPECT_TRUE(IsValidAppId("app_abcdefghij27"));
}

TEST(Ids, UuidsAreVersion4) {
  Rng rng(11);
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewUuidV4(rng);
    ASSERT_TRUE(IsValidUuid(id)) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_FALSE(IsValidUuid("123e4567-e89b-12d3-a456-426614174000"));  // version 1
  EXPECT_FALSE(IsValidUuid("not-a-uuid"));
  EXPECT_TRUE(IsValidUuid("f47ac10b-58cc-4372-a567-0e02b2c3d479"));
}

TEST(Ids, SeededRngIsReproducible) {
  Rng a(42), b(42);
  EXPECT_EQ(NewUuidV4(a), NewUuidV4(b));
}

TEST(Ids, RegionSlugs) {
  for (const char* ok : {"us-east-1", "eu-west-1", "ap-southeast-1", "local-a", "x-1-2"}) {
    EXPECT_TRUE(IsValidRegionSlug(ok)) << ok;
  }
  for (const char* bad : {"", "us", "US-east-1", "us-", "-east", "us--east", "us_east_1",
                          "1us-east", "us-east-1 ", "us-East"}) {
    EXPECT_FALSE(IsValidRegionSlug(bad)) << bad;
  }
}

TEST(Backoff, ExponentialWithJitterWithinBounds) {
  Rng rng(1);
  BackoffPolicy p;  // 1 s base, 60 s cap
  for (int retry = 1; retry <= 12; ++retry) {
    int64_t full = std::min<int64_t>(60000, 1000LL << (retry - 1));
    for (int i = 0; i < 200; ++i) {
      int64_t d = BackoffDelayMs(p, retry, rng);
      ASSERT_GE(d, full / 2) << "retry " << retry;
      ASSERT_LE(d, full) << "retry " << retry;
    }
  }
  // Jitter actually varies.
  std::set<int64_t> values;
  for (int i = 0; i < 50; ++i) values.insert(BackoffDelayMs(p, 3, rng));
  EXPECT_GT(values.size(), 10u);
}

// Two machines whose clocks disagree by an hour read one timeline through the database's clock.
TEST(Clock, SyncedClocksAgreeWhateverTheMachinesSay) {
  FakeClock db(1'800'000'000'000);
  FakeClock ahead(db.NowMs() + 3'600'000), behind(db.NowMs() - 3'600'000);
  int reads = 0;
  auto source = [&]() -> Result<int64_t> {
    ++reads;
    return db.NowMs();
  };
  SyncedClock a(&ahead, source, 10'000), b(&behind, source, 10'000);
  EXPECT_EQ(a.NowMs(), db.NowMs());
  EXPECT_EQ(b.NowMs(), db.NowMs());
  EXPECT_EQ(reads, 2);
  // Between measurements each follows its own clock's pace; the offset is measured again when
  // due, so a machine whose clock jumps is back on the timeline within one refresh.
  db.Advance(5'000);
  ahead.Advance(5'000);
  behind.Advance(5'000);
  EXPECT_EQ(a.NowMs(), db.NowMs());
  EXPECT_EQ(reads, 2);
  behind.Advance(-60'000);  // an NTP step
  db.Advance(6'000);
  EXPECT_NE(b.NowMs(), db.NowMs());  // not due yet: the jump shows
  behind.Advance(70'000);
  db.Advance(4'000);
  EXPECT_EQ(b.NowMs(), db.NowMs());  // re-measured
  // A failing source keeps the last offset.
  SyncedClock c(
      &ahead, [] { return Result<int64_t>(Unavailable("database down")); }, 10);
  EXPECT_EQ(c.NowMs(), ahead.NowMs());
  EXPECT_EQ(c.Sync().code(), StatusCode::kUnavailable);
}

// The write buffer: one poller per app, bounded waiters, cleared or timed out.
TEST(WriteBuffer, HoldsBoundedWaitersUntilThePauseEnds) {
  WriteBuffer buffer(/*max_per_app=*/3, /*max_total=*/4, /*poll_ms=*/5);
  std::atomic<bool> blocked{true};
  std::atomic<int> polling{0}, max_polling{0}, polls{0};
  auto still_blocked = [&] {
    int now = ++polling;
    int seen = max_polling.load();
    while (now > seen && !max_polling.compare_exchange_weak(seen, now)) {
    }
    ++polls;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    --polling;
    return blocked.load();
  };
  auto far = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::vector<WriteBuffer::Outcome> outcomes(3);
  std::vector<std::thread> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.emplace_back([&, i] { outcomes[i] = buffer.Wait("a", far, still_blocked); });
  }
  while (buffer.waiting() < 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(buffer.Wait("a", far, still_blocked), WriteBuffer::Outcome::kFull);  // per app
  auto soon = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
  EXPECT_EQ(buffer.Wait("b", soon, still_blocked), WriteBuffer::Outcome::kTimedOut);
  WriteBuffer::Outcome fourth_outcome = WriteBuffer::Outcome::kCleared;
  std::thread fourth([&] {
    fourth_outcome = buffer.Wait("c", std::chrono::steady_clock::now() + std::chrono::seconds(1),
                                 [] { return true; });
  });
  while (buffer.waiting() < 4) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(buffer.Wait("d", far, still_blocked), WriteBuffer::Outcome::kFull);  // overall
  blocked = false;
  for (auto& t : waiters) t.join();
  for (auto o : outcomes) EXPECT_EQ(o, WriteBuffer::Outcome::kCleared);
  EXPECT_LE(max_polling.load(), 2);  // one poller for "a" (and one for "b" while it waited)
  EXPECT_GT(polls.load(), 3);
  fourth.join();
  EXPECT_EQ(fourth_outcome, WriteBuffer::Outcome::kTimedOut);
}

TEST(Clock, FormatAndParseRoundTrip) {
  for (int64_t ms : {int64_t{0}, int64_t{1700000000123}, int64_t{1795000000999}}) {
    EXPECT_EQ(ParseTimeMs(FormatTimeMs(ms)), ms) << FormatTimeMs(ms);
  }
  EXPECT_EQ(ParseTimeMs("2026-11-25T10:00:00Z"), 1795600800000);
  EXPECT_EQ(ParseTimeMs("yesterday"), 0);
  EXPECT_EQ(ParseTimeMs("2026-11-25T10:00:00"), 0);
}

TEST(Hash, Sha256KnownVector) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

Result<int> Half(int x) {
  if (x % 2) return InvalidArgument("odd");
  return x / 2;
}
Result<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(Result, MacrosPropagate) {
  auto ok = Quarter(8);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 2);
  auto bad = Quarter(6);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(bad.status().retryable());
  EXPECT_TRUE(Unavailable("x").retryable());
}

}  // namespace
}  // namespace regionmove

#include "common/fault_points.h"

namespace regionmove {
namespace {

TEST(FaultPoints, SpecArmsAndRejects) {
  FaultPoints f;
  ASSERT_OK(f.ArmFromSpec("a=error:2;b=delay:1:1"));
  EXPECT_TRUE(f.Hit("a").retryable());
  EXPECT_FALSE(f.Hit("a").ok());
  EXPECT_OK(f.Hit("a"));
  EXPECT_OK(f.Hit("b"));
  EXPECT_EQ(f.hits("a"), 3);
  for (const char* bad : {"a", "a=boom:1", "a=delay", "a=delay:x", "a=error:1:2"}) {
    EXPECT_FALSE(f.ArmFromSpec(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace regionmove

namespace regionmove {
namespace {

TEST(Hash, HmacSha256MatchesRfc4231) {
  EXPECT_EQ(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Text, GlobMatchesWebhookPatterns) {
  EXPECT_TRUE(GlobMatch("migration.*", "migration.cutover"));
  EXPECT_TRUE(GlobMatch("*", "replica.torn_down"));
  EXPECT_TRUE(GlobMatch("*.torn_down", "replica.torn_down"));
  EXPECT_TRUE(GlobMatch("migration.?utover", "migration.cutover"));
  EXPECT_FALSE(GlobMatch("migration.*", "replica.diverged"));
  EXPECT_FALSE(GlobMatch("migration.cutover", "migration.cutover2"));
  EXPECT_FALSE(GlobMatch("", "x"));
}

}  // namespace
}  // namespace regionmove
