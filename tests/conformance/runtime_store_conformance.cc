// The conformance suite of the RuntimeStore port.
#include "conformance/dataplane_conformance.h"

namespace regionmove::testing {
namespace {

const std::string kApp = "app_aaaaaaaaaaaa";

std::unique_ptr<SecretBox> Box() {
  auto b = SecretBox::FromKey(std::string(32, 'k'));
  EXPECT_TRUE(b.ok());
  return std::move(b).value();
}

RuntimeSnapshot Sample() {
  RuntimeSnapshot s;
  s.functions = {{"checkout", 3, "index.handler", "node20", std::string("code\0bin", 8)},
                 {"thumbnail", 1, "main", "python3.12", "def main(): pass"}};
  s.env = {{"API_URL", "https://api.example.com", false}, {"STRIPE_KEY", "sk_live_123", true}};
  s.cron = {{"nightly", "0 3 * * *", "checkout"}};
  s.domains = {"shop.example.com"};
  return s;
}

TEST_P(RuntimeStoreConformance, PutSnapshotDelete) {
  auto box = Box();
  ASSERT_OK_AND_ASSIGN(auto rs, GetParam().open(dir_.path(), box.get()));
  RuntimeSnapshot s = Sample();
  for (const auto& f : s.functions) ASSERT_OK(rs->PutFunction(kApp, f));
  for (const auto& e : s.env) ASSERT_OK(rs->PutEnv(kApp, e));
  for (const auto& c : s.cron) ASSERT_OK(rs->PutCron(kApp, c));
  for (const auto& d : s.domains) ASSERT_OK(rs->PutDomain(kApp, d));
  ASSERT_OK_AND_ASSIGN(RuntimeSnapshot got, rs->Snapshot(kApp, false));
  EXPECT_TRUE(got == s);
  ASSERT_OK(rs->Delete(kApp, "cron", "nightly"));
  EXPECT_EQ(rs->Delete(kApp, "cron", "nightly").code(), StatusCode::kNotFound);
  EXPECT_EQ(rs->Delete(kApp, "widgets", "x").code(), StatusCode::kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(RuntimeSnapshot after, rs->Snapshot(kApp, false));
  EXPECT_TRUE(after.cron.empty());
  ASSERT_OK_AND_ASSIGN(RuntimeSnapshot other, rs->Snapshot("app_bbbbbbbbbbbb", false));
  EXPECT_TRUE(other.functions.empty());
}

TEST_P(RuntimeStoreConformance, AStaleTokenCannotDeleteRows) {
  auto box = Box();
  ASSERT_OK_AND_ASSIGN(auto rs, GetParam().open(dir_.path(), box.get()));
  ASSERT_OK(rs->DeleteAll(kApp, RuntimeStore::Which::kAll, 7));
  RuntimeSnapshot s = Sample();
  for (const auto& f : s.functions) ASSERT_OK(rs->PutFunction(kApp, f));
  EXPECT_EQ(rs->DeleteAll(kApp, RuntimeStore::Which::kLive, 5).reason(), "fenced");
  ASSERT_OK_AND_ASSIGN(RuntimeSnapshot now, rs->Snapshot(kApp, false));
  EXPECT_EQ(now.functions.size(), s.functions.size());
  ASSERT_OK(rs->DeleteAll(kApp, RuntimeStore::Which::kLive, 8));
}

TEST_P(RuntimeStoreConformance, SecretsAreSealedAtRest) {
  auto box = Box();
  ASSERT_OK_AND_ASSIGN(auto rs, GetParam().open(dir_.path(), box.get()));
  ASSERT_OK(rs->PutEnv(kApp, {"STRIPE_KEY", "sk_live_123", true}));
  ASSERT_OK(rs->PutEnv(kApp, {"PLAIN", "visible", false}));
  std::string raw = GetParam().raw_env(dir_.path(), kApp, "STRIPE_KEY");
  EXPECT_FALSE(raw.empty());
  EXPECT_EQ(raw.find("sk_live_123"), std::string::npos);
  EXPECT_EQ(GetParam().raw_env(dir_.path(), kApp, "PLAIN"), "visible");
  // Another key cannot read it.
  auto other_box = SecretBox::FromKey(std::string(32, 'z'));
  ASSERT_OK_AND_ASSIGN(auto rs2, GetParam().open(dir_.path(), other_box->get()));
  EXPECT_EQ(rs2->Snapshot(kApp, false).status().code(), StatusCode::kCorruption);
}

TEST_P(RuntimeStoreConformance, ArchiveUnarchiveReplace) {
  auto box = Box();
  ASSERT_OK_AND_ASSIGN(auto rs, GetParam().open(dir_.path(), box.get()));
  RuntimeSnapshot s = Sample();
  ASSERT_OK(rs->ReplaceLive(kApp, s));
  ASSERT_OK(rs->SetArchived(kApp, true));
  ASSERT_OK(rs->SetArchived(kApp, true));  // idempotent
  ASSERT_OK_AND_ASSIGN(RuntimeSnapshot live, rs->Snapshot(kApp, false));
  ASSERT_OK_AND_ASSIGN(RuntimeSnapshot archived, rs->Snapshot(kApp, true));
  EXPECT_TRUE(live.functions.empty() && live.env.empty() && live.domains.empty());
  EXPECT_TRUE(archived == s);
  ASSERT_OK(rs->SetArchived(kApp, false));
  ASSERT_OK_AND_ASSIGN(RuntimeSnapshot back, rs->Snapshot(kApp, false));
  EXPECT_TRUE(back == s);
  RuntimeSnapshot small;
  small.env = {{"ONLY", "one", false}};
  ASSERT_OK(rs->ReplaceLive(kApp, small));
  ASSERT_OK_AND_ASSIGN(RuntimeSnapshot replaced, rs->Snapshot(kApp, false));
  EXPECT_TRUE(replaced == small);
  ASSERT_OK(rs->DeleteAll(kApp, RuntimeStore::Which::kAll));
  ASSERT_OK_AND_ASSIGN(RuntimeSnapshot gone, rs->Snapshot(kApp, false));
  EXPECT_TRUE(gone.env.empty());
}

TEST_P(RuntimeStoreConformance, CronIsValidated) {
  auto box = Box();
  ASSERT_OK_AND_ASSIGN(auto rs, GetParam().open(dir_.path(), box.get()));
  for (const char* ok : {"* * * * *", "*/5 0-6 1,15 * 1-5", "59 23 31 12 7", "0 3 * * 0"}) {
    EXPECT_OK(rs->PutCron(kApp, {"c", ok, "f"})) << ok;
  }
  for (const char* bad : {"", "* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *",
                          "*/0 * * * *", "a * * * *", "5-1 * * * *", "* * * * * *"}) {
    EXPECT_EQ(rs->PutCron(kApp, {"c", bad, "f"}).code(), StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace regionmove::testing
