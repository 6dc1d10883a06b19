// Moves between fs and S3 blob regions (the local S3 server of scripts/s3-local): fs -> S3,
// S3 -> S3 on one endpoint (server-side copies), S3 -> fs, every blob's content read back and
// hashed; an abort in the middle of the copy leaves no object of the app in the dest bucket.
#include <cmath>
#include <cstdlib>

#include "common/hash.h"
#include "dataplane/s3/s3_client.h"
#include "e2e/e2e_util.h"

namespace regionmove::testing {
namespace {

using nlohmann::json;

class S3Move : public ::testing::Test {
 protected:
  void SetUp() override {
    bucket_ = "rm-e2e-" + UniqueName();
    std::string regions;
    for (const char* slug : {"bucket-east-1", "bucket-west-1"}) {
      regions += std::string("[[regions]]\nslug = \"") + slug +
                 "\"\ndatabase = { engine = \"sqlite\", dir = \"regions/" + slug +
                 "/db\" }\nblobs = { engine = \"s3\", endpoint = \"" + S3TestEndpoint() +
                 "\", bucket = \"" + bucket_ + "\", prefix = \"" + slug +
                 "\", access_key_id = \"S3RVER\", secret_access_key = \"S3RVER\" }\n";
    }
    sys_ = OpenSystem(dir_, SystemClock::Default(), &rng_, regions);
    ASSERT_NE(sys_, nullptr);
  }

  // Blobs of 1 KiB to 8 MiB, spread evenly on a log scale (most small, a few large), and two
  // over the multipart threshold (8 MiB parts). Returns key -> SHA-256 of the content.
  std::map<std::string, std::string> Fill(const std::string& region, const std::string& app,
                                          int n) {
    std::map<std::string, std::string> want;
    RegionPlane* r = sys_->plane()->Region(region);
    std::string buf;
    for (int i = 0; i < n + 2; ++i) {
      size_t size = i < n ? static_cast<size_t>(1024.0 * std::pow(8192.0, double(i) / (n - 1)))
                          : (i == n ? (17u << 20) + 3 : (8u << 20));
      buf.resize(size);
      for (size_t j = 0; j < size; j += 8) {
        uint64_t v = rng_.Next();
        std::memcpy(&buf[j], &v, std::min<size_t>(8, size - j));
      }
      std::string key = "files/" + std::to_string(i) + ".bin";
      EXPECT_OK(r->blobs->Put(app, key, buf, "application/x-test").status());
      want[key] = Sha256Hex(buf);
    }
    return want;
  }

  // Reads every blob of the app back from `region` and checks its content's SHA-256.
  void Verify(const std::string& region, const std::string& app,
              const std::map<std::string, std::string>& want) {
    RegionPlane* r = sys_->plane()->Region(region);
    ASSERT_OK_AND_ASSIGN(auto listed, r->blobs->List(app, "", "", 10000));
    ASSERT_EQ(listed.size(), want.size()) << region;
    for (const auto& b : listed) {
      ASSERT_OK_AND_ASSIGN(auto reader, r->blobs->Open(app, b.key, nullptr));
      Sha256 h;
      std::vector<char> buf(1 << 20);
      while (true) {
        ASSERT_OK_AND_ASSIGN(size_t n, reader->Read(buf.data(), buf.size()));
        if (n == 0) break;
        h.Update(buf.data(), n);
      }
      EXPECT_EQ(h.HexDigest(), want.at(b.key)) << region << " " << b.key;
    }
  }

  Migration MoveAndTearDown(const std::string& app, const std::string& dest) {
    auto m = sys_->migrations()->Move("alice", app, dest, "");
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    Migration done = Drive(*sys_, m->id, 120000);
    EXPECT_EQ(done.current_step, Step::kCompleted) << done.last_error;
    EXPECT_OK(sys_->migrations()->Teardown("alice", m->id));
    return done;
  }

  // Objects under `prefix` in the test's bucket.
  size_t ObjectsUnder(const std::string& prefix) {
    EngineConfig c;
    c.endpoint = S3TestEndpoint();
    c.bucket = bucket_;
    c.access_key_id = c.secret_access_key = "S3RVER";
    auto client = s3::Client::Make(c);
    EXPECT_TRUE(client.ok());
    auto res = (*client)->Send({"GET", "", {{"list-type", "2"}, {"prefix", prefix}}, {}, {}});
    EXPECT_TRUE(res.ok() && res->status == 200);
    return res.ok() ? s3::XmlValues(res->body, "Key").size() : 0;
  }

  TempDir dir_;
  Rng rng_{2026};
  std::string bucket_;
  std::unique_ptr<System> sys_;
};

TEST_F(S3Move, FsToS3ToS3ToFs) {
  ASSERT_OK_AND_ASSIGN(App app, sys_->apps()->CreateApp("alice", "files", "us-east-1", ""));
  auto want = Fill("us-east-1", app.id, 150);
  Migration to_s3 = MoveAndTearDown(app.id, "bucket-east-1");
  Verify("bucket-east-1", app.id, want);
  EXPECT_EQ(json::parse(to_s3.resources)["blobs_copied"], want.size());

  Migration across = MoveAndTearDown(app.id, "bucket-west-1");
  Verify("bucket-west-1", app.id, want);
  json res = json::parse(across.resources);
  EXPECT_EQ(res["blobs_copied"], want.size());
  EXPECT_EQ(res["blobs_copied_server_side"], want.size());       // no byte came through here
  EXPECT_EQ(ObjectsUnder("bucket-east-1/" + app.id + "/"), 0u);  // the teardown emptied the source

  Migration back = MoveAndTearDown(app.id, "us-east-1");
  Verify("us-east-1", app.id, want);
  EXPECT_FALSE(json::parse(back.resources).contains("blobs_copied_server_side"));
  EXPECT_EQ(ObjectsUnder("bucket-west-1/" + app.id + "/"), 0u);
}

TEST_F(S3Move, AbortInTheCopyLeavesNoObjectInTheDest) {
  ASSERT_OK_AND_ASSIGN(App app, sys_->apps()->CreateApp("alice", "files", "us-east-1", ""));
  auto want = Fill("us-east-1", app.id, 140);  // three pages of 64
  sys_->faults()->ArmDelay("copying_blobs.after_page", 1000);
  ASSERT_OK_AND_ASSIGN(Migration m, sys_->migrations()->Move("alice", app.id, "bucket-east-1", ""));
  std::thread driver([&] { Drive(*sys_, m.id, 120000); });
  // Abort once the first page is in the dest.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (ObjectsUnder("bucket-east-1/" + app.id + "/") == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GT(ObjectsUnder("bucket-east-1/" + app.id + "/"), 0u);
  ASSERT_OK(sys_->migrations()->Abort("alice", app.id, m.id).status());
  driver.join();
  ASSERT_OK_AND_ASSIGN(Migration done, sys_->store()->GetMigration(m.id));
  EXPECT_EQ(MigrationStatusName(done.status()), "aborted") << done.last_error;
  EXPECT_EQ(ObjectsUnder("bucket-east-1/" + app.id + "/"), 0u);
  ASSERT_OK_AND_ASSIGN(auto left,
                       sys_->plane()->Region("bucket-east-1")->blobs->List(app.id, "", "", 10));
  EXPECT_TRUE(left.empty());
  Verify("us-east-1", app.id, want);
}

}  // namespace
}  // namespace regionmove::testing
