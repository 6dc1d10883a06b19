// The S3 blob engine: Signature V4 against AWS's published example, and the BlobStore
// conformance suite against the local S3 server of scripts/s3-local (started by `make test`).
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "common/hash.h"
#include "conformance/dataplane_conformance.h"
#include "dataplane/s3/s3_client.h"
#include "dataplane/s3/s3_objects.h"

namespace regionmove::testing {
namespace {

// "GET Object" of AWS's Signature V4 examples for S3 (a single-chunk payload).
TEST(S3Signature, MatchesAwsPublishedExample) {
  std::map<std::string, std::string> headers = {
      {"host", "examplebucket.s3.amazonaws.com"},
      {"range", "bytes=0-9"},
      {"x-amz-content-sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"x-amz-date", "20130524T000000Z"}};
  std::string auth = s3::Client::Authorization(
      "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1", "GET",
      "/test.txt", "", headers, headers["x-amz-content-sha256"], "20130524T000000Z");
  EXPECT_EQ(auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(S3Signature, EncodesLikeV4) {
  EXPECT_EQ(s3::Client::UriEncode("a b/c~d.e_f-g$h", true), "a%20b/c~d.e_f-g%24h");
  EXPECT_EQ(s3::Client::UriEncode("a/b", false), "a%2Fb");
  EXPECT_EQ(s3::Client::UriEncode("\xc3\xa9", false), "%C3%A9");
}

TEST(S3Xml, ReadsValuesAndEntities) {
  std::string xml = "<R><Key>a&amp;b</Key><Key>&lt;c&gt;&#x41;</Key><Other>x</Other></R>";
  EXPECT_EQ(s3::XmlValues(xml, "Key"), (std::vector<std::string>{"a&b", "<c>A"}));
  EXPECT_TRUE(s3::XmlValues(xml, "Missing").empty());
}

// Each test gets its own prefix in one bucket, and its index under the test's directory.
Result<std::unique_ptr<BlobStore>> OpenS3(const std::string& dir, Rng* rng) {
  EngineConfig c;
  c.engine = "s3";
  c.endpoint = S3TestEndpoint();
  c.bucket = "rm-conformance";
  c.prefix = "t" + UniqueName() + "/";
  c.access_key_id = "S3RVER";
  c.secret_access_key = "S3RVER";
  c.dir = dir + "/s3-index";
  return OpenS3BlobStore(c, rng);
}

INSTANTIATE_TEST_SUITE_P(S3, BlobStoreConformance, ::testing::Values(BlobStoreEngine{"s3", OpenS3}),
                         [](const auto& i) { return i.param.name; });

// s3rver checks the access key id but not V4 signatures (MatchesAwsPublishedExample checks
// ours against AWS's own figures).
TEST(S3Objects, AnUnknownKeyIsRefusedWithTheServersReason) {
  EngineConfig c;
  c.engine = "s3";
  c.endpoint = S3TestEndpoint();
  c.bucket = "rm-conformance";
  c.access_key_id = "NOT-A-KEY";
  c.secret_access_key = "S3RVER";
  auto r = S3Objects::Open(c, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("HTTP 403"), std::string::npos) << r.status().ToString();
  EXPECT_NE(r.status().message().find("InvalidAccessKeyId"), std::string::npos)
      << r.status().ToString();
}

TEST(S3Objects, AnUnreachableEndpointIsAClearError) {
  EngineConfig c;
  c.engine = "s3";
  c.endpoint = "http://127.0.0.1:1";
  c.bucket = "b";
  c.access_key_id = "k";
  c.secret_access_key = "s";
  auto r = S3Objects::Open(c, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("Couldn't connect"), std::string::npos)
      << r.status().ToString();
}

// Listings page through the bucket in order, and a namespace of more than one DeleteObjects
// request's worth (1,000) goes whole.
TEST(S3Objects, ListsAcrossPagesAndRemovesInBatches) {
  Rng rng(31);
  EngineConfig c;
  c.engine = "s3";
  c.endpoint = S3TestEndpoint();
  c.bucket = "rm-conformance";
  c.prefix = "pages" + UniqueName() + "/";
  c.access_key_id = c.secret_access_key = "S3RVER";
  ASSERT_OK_AND_ASSIGN(auto objects, S3Objects::Open(c, &rng));
  std::vector<std::string> names;
  for (int i = 0; i < 1100; ++i) {
    ASSERT_OK_AND_ASSIGN(auto w, objects->Create("app_x/o/" + std::to_string(10000 + i), ""));
    ASSERT_OK(w->Write("x", 1));
    ASSERT_OK_AND_ASSIGN(std::string name, w->Commit(Sha256Hex("x")));
    names.push_back(name);
  }
  ASSERT_OK_AND_ASSIGN(auto w, objects->Create("app_y/o/1", ""));  // another app's
  ASSERT_OK(w->Commit(Sha256Hex("")).status());
  std::sort(names.begin(), names.end());
  std::vector<std::string> listed;
  std::string after;
  while (true) {
    ASSERT_OK_AND_ASSIGN(auto page, objects->List("app_x", after, 333));
    if (page.empty()) break;
    EXPECT_LE(page.size(), 333u);
    listed.insert(listed.end(), page.begin(), page.end());
    after = page.back();
  }
  EXPECT_EQ(listed, names);
  ASSERT_OK(objects->RemoveDir("app_x"));
  ASSERT_OK_AND_ASSIGN(auto left, objects->List("app_x", "", 1000));
  EXPECT_TRUE(left.empty());
  ASSERT_OK_AND_ASSIGN(auto other, objects->List("app_y", "", 1000));
  EXPECT_EQ(other.size(), 1u);
  ASSERT_OK(objects->RemoveDir("app_y"));
}

// Connection errors, 5xx and 429 are retried with backoff; other answers are the caller's.
TEST(S3Client, RetriesServerErrorsAndThrottling) {
  httplib::Server fake;
  std::atomic<int> calls{0};
  std::atomic<bool> down{false};
  fake.Get(".*", [&](const httplib::Request&, httplib::Response& res) {
    int n = calls++;
    res.status = down ? 503 : n == 0 ? 503 : n == 1 ? 429 : n == 2 ? 500 : 200;
    res.set_content(n < 3 ? "<Error><Code>SlowDown</Code></Error>" : "ok", "application/xml");
  });
  int port = fake.bind_to_any_port("127.0.0.1");
  std::thread serve([&] { fake.listen_after_bind(); });
  EngineConfig c;
  c.endpoint = "http://127.0.0.1:" + std::to_string(port);
  c.bucket = "b";
  c.access_key_id = c.secret_access_key = "k";
  ASSERT_OK_AND_ASSIGN(auto client, s3::Client::Make(c));
  ASSERT_OK_AND_ASSIGN(s3::Response res, client->Send({"GET", "key", {}, {}, {}}));
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, "ok");
  EXPECT_EQ(calls.load(), 4);
  // Down for good: after four attempts the last answer is the caller's to judge.
  down = true;
  calls = 0;
  ASSERT_OK_AND_ASSIGN(res, client->Send({"GET", "key", {}, {}, {}}));
  EXPECT_EQ(res.status, 503);
  EXPECT_EQ(calls.load(), 4);
  fake.stop();
  serve.join();
}

// Deleting a namespace also aborts the multipart uploads a crash left open under it (s3rver
// cannot list uploads: a fake endpoint stands in for S3 here).
TEST(S3Objects, RemovingANamespaceAbortsItsOpenUploads) {
  httplib::Server fake;
  std::mutex mu;
  std::vector<std::string> aborted;
  bool listed = false;
  fake.Get(".*", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mu);
    if (req.has_param("uploads") && !listed) {
      listed = true;
      EXPECT_EQ(req.get_param_value("prefix"), "p/app_x/");
      res.set_content(
          "<ListMultipartUploadsResult><Bucket>b</Bucket><KeyMarker></KeyMarker>"
          "<Upload><Key>p/app_x/aa/1-x</Key><UploadId>u1</UploadId></Upload>"
          "<Upload><Key>p/app_x/bb/2-y</Key><UploadId>u2</UploadId></Upload>"
          "</ListMultipartUploadsResult>",
          "application/xml");
      return;
    }
    res.set_content(
        req.has_param("uploads") ? "<ListMultipartUploadsResult/>" : "<ListBucketResult/>",
        "application/xml");
  });
  fake.Delete(".*", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mu);
    aborted.push_back(req.path + "?" + req.get_param_value("uploadId"));
    res.status = 204;
  });
  int port = fake.bind_to_any_port("127.0.0.1");
  std::thread serve([&] { fake.listen_after_bind(); });
  EngineConfig c;
  c.endpoint = "http://127.0.0.1:" + std::to_string(port);
  c.bucket = "b";
  c.prefix = "p/";
  c.access_key_id = c.secret_access_key = "k";
  Rng rng(3);
  ASSERT_OK_AND_ASSIGN(auto objects, S3Objects::Open(c, &rng));
  ASSERT_OK(objects->RemoveDir("app_x"));
  EXPECT_EQ(aborted, (std::vector<std::string>{"/b/p/app_x/aa/1-x?u1", "/b/p/app_x/bb/2-y?u2"}));
  fake.stop();
  serve.join();
}

// A server-side copy checks the SHA-256 the object carries, also for one uploaded in parts
// (a copy names the SHA-256 before the first part goes up).
TEST(S3Objects, ServerSideCopiesCheckTheStoredSha256) {
  Rng rng(41);
  TempDir dir;
  auto open = [&](const std::string& prefix) {
    EngineConfig c;
    c.engine = "s3";
    c.endpoint = S3TestEndpoint();
    c.bucket = "rm-conformance";
    c.prefix = prefix + UniqueName() + "/";
    c.access_key_id = c.secret_access_key = "S3RVER";
    c.dir = dir.path() + "/" + prefix;
    return OpenS3BlobStore(c, &rng);
  };
  ASSERT_OK_AND_ASSIGN(auto a, open("a"));
  ASSERT_OK_AND_ASSIGN(auto b, open("b"));
  std::string data(9 << 20, 'd');
  for (size_t i = 0; i < data.size(); i += 4096) data[i] = static_cast<char>(rng.Next());
  StringBlobReader in(data);
  ASSERT_OK_AND_ASSIGN(BlobInfo staged, a->Stage("app_x", "big", in, "", Sha256Hex(data)));
  ASSERT_OK(a->Publish("app_x", {staged}));
  ASSERT_OK_AND_ASSIGN(auto info, a->Stat("app_x", "big"));
  ASSERT_TRUE(info.has_value());
  const std::string source = a->CopySource("app_x", *info);
  ASSERT_FALSE(source.empty());
  BlobInfo wrong = *info;
  wrong.sha256 = Sha256Hex("not the content");
  EXPECT_EQ(b->StageCopy("app_x", wrong, source).status().code(), StatusCode::kCorruption);
  ASSERT_OK_AND_ASSIGN(auto copied, b->StageCopy("app_x", *info, source));
  ASSERT_TRUE(copied.has_value());
  ASSERT_OK(b->Publish("app_x", {*copied}));
  ASSERT_OK_AND_ASSIGN(std::string got, b->Get("app_x", "big", nullptr));
  EXPECT_TRUE(got == data);
  ASSERT_OK(a->DeleteNamespace("app_x"));
  ASSERT_OK(b->DeleteNamespace("app_x"));
}

}  // namespace
}  // namespace regionmove::testing
