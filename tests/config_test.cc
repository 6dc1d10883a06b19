#include "config/config.h"

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
      {"", "[[regions]]"},
      {"[server\n", "default:1"},
  };
  for (const auto& c : cases) {
    auto r = ParseConfig(c.toml, "/tmp", "default");
    ASSERT_FALSE(r.ok()) << c.toml;
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos)
        << r.status().message() << " should mention " << c.expect;
  }
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
