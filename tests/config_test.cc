#include "config/config.h"

#include <fstream>
#include <sstream>

#include "common/hash.h"
#include "test_util.h"

namespace regionmove {
namespace {

TEST(Config, EmbeddedDefaultHasThreeRegionsUnderVar) {
  ASSERT_OK_AND_ASSIGN(Config c, ParseConfig(EmbeddedDefaultConfigToml(), "/srv/rm", "default"));
  ASSERT_EQ(c.regions.size(), 3u);
  EXPECT_EQ(c.regions[0].slug, "us-east-1");
  EXPECT_EQ(c.regions[1].slug, "eu-west-1");
  EXPECT_EQ(c.regions[2].slug, "ap-southeast-1");
  EXPECT_EQ(c.data_dir, "/srv/rm/var");
  EXPECT_EQ(c.control_store_path, "/srv/rm/var/control.sqlite3");
  EXPECT_EQ(c.regions[1].database.dir, "/srv/rm/var/regions/eu-west-1/db");
  EXPECT_EQ(c.regions[1].blobs.engine, "fs");
  EXPECT_EQ(c.workers, 4);
  EXPECT_EQ(c.max_attempts, 5);
  ASSERT_GE(c.users.size(), 2u);
  EXPECT_EQ(c.users[0].token_sha256, Sha256Hex("alice-dev-token"));
  EXPECT_NE(c.FindRegion("eu-west-1"), nullptr);
  EXPECT_EQ(c.FindRegion("mars-1"), nullptr);
}

TEST(Config, ErrorsNameTheKey) {
  struct Case {
    const char* toml;
    const char* expect;
  } cases[] = {
      {"[[regions]]\nslug = \"US\"\ndatabase = {engine=\"sqlite\", dir=\"d\"}\n"
       "blobs = {engine=\"fs\", dir=\"b\"}\n",
       "regions[0].slug"},
      {"[saga]\nworkers = \"four\"\n[[regions]]\nslug=\"a-1\"\n", "saga.workers"},
      {"[[regions]]\nslug = \"a-1\"\nblobs = {engine=\"fs\", dir=\"b\"}\n", "regions[0].database"},
      {"[[regions]]\nslug = \"a-1\"\ndatabase = {engine=\"mysql\", dir=\"d\"}\n"
       "blobs = {engine=\"fs\", dir=\"b\"}\n",
       "regions[0].database.engine"},
      {"[control_store]\nengine = \"postgres\"\n[[regions]]\nslug=\"a-1\"\n", "control_store.dsn"},
      {"[[users]]\nname = \"x\"\n[[regions]]\nslug=\"a-1\"\n", "users[0].token"},
      {"regions = []\n", "[[regions]]"},
      {"[server]\nlisten = \"127.0.0.1:9000\"\nlisen = \"x\"\n",
       "f:3: unknown key 'lisen' in [server] (did you mean 'listen'?)"},
      {"[sever]\nlisten = \"127.0.0.1:9000\"\n",
       "f:1: unknown section [sever] (did you mean 'server'?)"},
      {"[saga]\nworkrs = 2\n", "unknown key 'workrs' in [saga] (did you mean 'workers'?)"},
      {"[[users]]\nname = \"x\"\ntoken = \"t\"\nadmn = true\n", "did you mean 'admin'?"},
      {"[[regions]]\nslug = \"a-1\"\ndatabase = {engine=\"sqlite\", dri=\"d\"}\n",
       "unknown key 'dri' in [[regions]] database (did you mean 'dir'?)"},
      {"[[regions]]\nslug = \"a-1\"\ndatabase = {engine=\"sqlite\", dir=\"d\"}\n"
       "blobs = {engine=\"s3\", endpoint=\"127.0.0.1:9000\", bucket=\"b\"}\n",
       "regions[0].blobs.endpoint must be an http:// or https:// URL"},
      {"[[regions]]\nslug = \"a-1\"\ndatabase = {engine=\"sqlite\", dir=\"d\"}\n"
       "blobs = {engine=\"s3\", endpoint=\"http://127.0.0.1:9000\"}\n",
       "regions[0].blobs.bucket is required"},
      {"[[regions]]\nslug = \"a-1\"\ndatabase = {engine=\"sqlite\", dir=\"d\", bucket=\"b\"}\n"
       "blobs = {engine=\"fs\", dir=\"b\"}\n",
       "unknown key 'bucket' in [[regions]] database"},
      {"[server]\nmax_blob_bytes = -1\n", "server.max_blob_bytes"},
      {"[[regions]]\nslug = \"a-1\"\ndatabase = {engine=\"fs\", dir=\"d\"}\n"
       "blobs = {engine=\"fs\", dir=\"b\"}\n",
       "'fs' is not a database engine"},
      {"[server]\nmax_connections = 0\n", "server.max_connections"},
      {"[saga]\ndefault_strategy = \"sideways\"\n", "saga.default_strategy"},
      {"[server\n", "f:1"},
      {"[[users]]\nname = \"x\"\ntoken = \"t\"\nrole = \"router\"\n", "users[0].role"},
      {"[[webhooks]]\nurl = \"ftp://x\"\nsecret = \"0123456789abcdef\"\n", "webhooks[0].url"},
      {"[[webhooks]]\nurl = \"http://x/h\"\nsecret = \"short\"\n", "webhooks[0].secret"},
      {"[[webhooks]]\nurl = \"http://x/h\"\nsecret = \"0123456789abcdef\"\n"
       "events = [\"migrations.*\"]\n",
       "'migrations.*' matches no event type"},
      {"[[webhooks]]\nurl = \"http://x/h\"\nsecret = \"0123456789abcdef\"\nretries = 3\n",
       "unknown key 'retries' in [[webhooks]]"},
      {"[[webhooks]]\nurl = \"http://x/h\"\nsecret = \"0123456789abcdef\"\n"
       "[[webhooks]]\nurl = \"http://x/h\"\nsecret = \"0123456789abcdef\"\n",
       "webhooks[1].name 'http://x/h' is repeated"},
      {"[[regions]]\nslug = \"a-1\"\nupstream = \"a b\"\n"
       "database = {engine=\"sqlite\", dir=\"d\"}\nblobs = {engine=\"fs\", dir=\"b\"}\n",
       "regions[0].upstream"},
  };
  for (const auto& c : cases) {
    auto r = ParseConfig(c.toml, "/tmp", "f");
    ASSERT_FALSE(r.ok()) << c.toml;
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos)
        << r.status().message() << " should mention " << c.expect;
  }
}

TEST(Config, WebhooksUpstreamsAndEdgeUsers) {
  auto r = ParseConfig(
      "[[users]]\nname = \"edge\"\ntoken = \"t\"\nrole = \"edge\"\n"
      "[[regions]]\nslug = \"a-1\"\nupstream = \"10.0.1.5:8080\"\n"
      "database = {engine=\"sqlite\", dir=\"d\"}\nblobs = {engine=\"fs\", dir=\"b\"}\n"
      "[[webhooks]]\nurl = \"https://hooks.example.com/rm\"\nsecret = \"0123456789abcdef\"\n"
      "events = [\"migration.cutover\", \"replica.*\"]\nmin_backoff_ms = 50\n",
      "/tmp", "f");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->users[0].role, "edge");
  EXPECT_EQ(r->regions[0].upstream, "10.0.1.5:8080");
  ASSERT_EQ(r->webhooks.size(), 1u);
  EXPECT_EQ(r->webhooks[0].name, "https://hooks.example.com/rm");  // defaults to the url
  EXPECT_EQ(r->webhooks[0].events, (std::vector<std::string>{"migration.cutover", "replica.*"}));
  EXPECT_EQ(r->webhooks[0].min_backoff_ms, 50);
  EXPECT_EQ(r->webhooks[0].give_up_after_seconds, 86400);  // a day
}

// The examples of docs/s3.md parse as they are written (a TOML inline table cannot span lines:
// the first version of that page had one that did).
TEST(Config, TheS3PageExampleParses) {
  std::ifstream in(REGIONMOVE_SOURCE_DIR "/docs/s3.md");
  ASSERT_TRUE(in.good());
  std::stringstream page;
  page << in.rdbuf();
  const std::string text = page.str();
  size_t start = text.find("```toml\n");
  ASSERT_NE(start, std::string::npos);
  start += 8;
  const std::string toml = text.substr(start, text.find("```", start) - start);
  auto c = ParseConfig(toml, "/tmp", "docs/s3.md");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->regions.size(), 1u);
  const EngineConfig& b = c->regions[0].blobs;
  EXPECT_EQ(b.engine, "s3");
  EXPECT_EQ(b.bucket, "acme-blobs-eu");
  EXPECT_EQ(b.prefix, "regionmove/");
  EXPECT_FALSE(b.path_style);
  EXPECT_EQ(b.dir, "/tmp/var/blob-index/eu-west-1");
}

// The first TOML block of a page after `heading`.
std::string TomlOf(const std::string& page, const std::string& heading) {
  std::ifstream in(REGIONMOVE_SOURCE_DIR "/docs/" + page);
  std::stringstream text;
  text << in.rdbuf();
  const std::string t = text.str();
  size_t start = t.find("```toml\n", t.find(heading));
  if (start == std::string::npos) return "";
  start += 8;
  return t.substr(start, t.find("```", start) - start);
}

TEST(Config, TheConfigPageAndTheWebhookExampleParse) {
  const std::string full = TomlOf("config.md", "## Complete example");
  ASSERT_FALSE(full.empty());
  auto c = ParseConfig(full, "/tmp", "docs/config.md");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->webhooks.size(), 1u);
  EXPECT_EQ(c->regions[0].upstream, "10.0.1.5:8080");
  const std::string hook = TomlOf("integration.md", "## Webhooks");
  ASSERT_FALSE(hook.empty());
  auto h = ParseConfig(hook, "/tmp", "docs/integration.md");
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->webhooks[0].name, "billing");
}

TEST(Config, AFileHoldsOnlyWhatItChanges) {
  ASSERT_OK_AND_ASSIGN(Config c,
                       ParseConfig("[server]\nlisten = \"127.0.0.1:9000\"\n", "/srv", "f"));
  EXPECT_EQ(c.listen, "127.0.0.1:9000");
  EXPECT_EQ(c.max_body_bytes, 64LL << 20);  // the default's
  ASSERT_EQ(c.regions.size(), 3u);          // the default's regions and users
  EXPECT_EQ(c.regions[0].database.dir, "/srv/var/regions/us-east-1/db");
  EXPECT_EQ(c.users[0].token_sha256, Sha256Hex("alice-dev-token"));
  // Given lists replace the default's whole.
  ASSERT_OK_AND_ASSIGN(Config one,
                       ParseConfig("[[regions]]\nslug = \"a-1\"\ndatabase = {engine=\"sqlite\", "
                                   "dir=\"d\"}\nblobs = {engine=\"fs\", dir=\"b\"}\n",
                                   "/srv", "f"));
  ASSERT_EQ(one.regions.size(), 1u);
  EXPECT_EQ(one.users.size(), 3u);
  ASSERT_OK(ParseConfig("", "/srv", "empty").status());
}

TEST(Config, TokenHashIsAcceptedAsIs) {
  std::string hash = Sha256Hex("secret");
  std::string toml = "[[users]]\nname = \"ops\"\nadmin = true\ntoken_sha256 = \"" + hash +
                     "\"\n[[regions]]\nslug = \"a-1\"\n"
                     "database = {engine=\"sqlite\", dir=\"/abs/db\"}\n"
                     "blobs = {engine=\"fs\", dir=\"b\"}\n";
  ASSERT_OK_AND_ASSIGN(Config c, ParseConfig(toml, "/etc/rm", "f"));
  EXPECT_EQ(c.users[0].token_sha256, hash);
  EXPECT_TRUE(c.users[0].admin);
  EXPECT_EQ(c.regions[0].database.dir, "/abs/db");
  EXPECT_EQ(c.regions[0].blobs.dir, "/etc/rm/var/b");
}

}  // namespace
}  // namespace regionmove
