// The conformance suite of the BlobStore port.
#include <sys/resource.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "common/hash.h"
#include "conformance/dataplane_conformance.h"

namespace regionmove::testing {
namespace {

const std::string kApp = "app_aaaaaaaaaaaa";

std::string RandomBytes(Rng& rng, size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng.Next();
    for (size_t j = 0; j < 8 && i + j < n; ++j) s[i + j] = static_cast<char>(v >> (j * 8));
  }
  return s;
}

// The sizes of many apps at once (a region's usage) are what each app's size is alone.
TEST_P(BlobStoreConformance, SizesOfManyAppsAreEachAppsSize) {
  ASSERT_OK_AND_ASSIGN(auto bs, GetParam().open(dir_.path(), &rng_));
  const std::string other = "app_bbbbbbbbbbbb", absent = "app_zzzzzzzzzzzz";
  ASSERT_OK(bs->Put(kApp, "a", std::string(1000, 'a'), "").status());
  ASSERT_OK(bs->Put(kApp, "b", std::string(24, 'b'), "").status());
  ASSERT_OK(bs->Put(other, "c", std::string(7, 'c'), "").status());
  ASSERT_OK_AND_ASSIGN(auto sizes, bs->SizesBytes({kApp, other, absent}));
  EXPECT_EQ(sizes.size(), 3u);
  EXPECT_EQ(sizes[kApp], 1024);
  EXPECT_EQ(sizes[other], 7);
  EXPECT_EQ(sizes[absent], 0);
  ASSERT_OK_AND_ASSIGN(auto one, bs->SizesBytes({other}));
  EXPECT_EQ(one.size(), 1u);  // only the apps asked for
  EXPECT_EQ(one[other], 7);
}

TEST_P(BlobStoreConformance, PutGetStatDelete) {
  ASSERT_OK_AND_ASSIGN(auto bs, GetParam().open(dir_.path(), &rng_));
  std::string big = RandomBytes(rng_, 3 * 1024 * 1024 + 17);
  ASSERT_OK_AND_ASSIGN(BlobInfo put, bs->Put(kApp, "media/big.bin", big, "video/mp4"));
  EXPECT_EQ(put.size, static_cast<int64_t>(big.size()));
  EXPECT_EQ(put.sha256, Sha256Hex(big));
  BlobInfo info;
  ASSERT_OK_AND_ASSIGN(std::string got, bs->Get(kApp, "media/big.bin", &info));
  EXPECT_EQ(got, big);
  EXPECT_EQ(info.content_type, "video/mp4");
  ASSERT_OK_AND_ASSIGN(auto st, bs->Stat(kApp, "media/big.bin"));
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->sha256, put.sha256);
  // Overwrite replaces content and metadata.
  ASSERT_OK(bs->Put(kApp, "media/big.bin", "small", "text/plain").status());
  ASSERT_OK_AND_ASSIGN(std::string small, bs->Get(kApp, "media/big.bin", &info));
  EXPECT_EQ(small, "small");
  EXPECT_EQ(info.size, 5);
  ASSERT_OK_AND_ASSIGN(int64_t size, bs->SizeBytes(kApp));
  EXPECT_EQ(size, 5);
  ASSERT_OK(bs->Delete(kApp, "media/big.bin"));
  EXPECT_EQ(bs->Delete(kApp, "media/big.bin").code(), StatusCode::kNotFound);
  EXPECT_EQ(bs->Get(kApp, "media/big.bin", nullptr).status().code(), StatusCode::kNotFound);
  // Empty blobs are blobs.
  ASSERT_OK(bs->Put(kApp, "empty", "", "").status());
  ASSERT_OK_AND_ASSIGN(std::string empty, bs->Get(kApp, "empty", &info));
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(info.content_type, "application/octet-stream");
}

// Content streamed in by a reader that hands out odd-sized pieces: staged blobs stay invisible
// until published, a set is published at once, and the store's SHA-256 is of what it read.
class DrippingReader final : public BlobReader {
 public:
  explicit DrippingReader(std::string_view data) : data_(data) {}
  Result<size_t> Read(char* buf, size_t n) override {
    n = std::min({n, data_.size(), size_t{4093}});
    std::memcpy(buf, data_.data(), n);
    data_.remove_prefix(n);
    return n;
  }

 private:
  std::string_view data_;
};

TEST_P(BlobStoreConformance, StagedBlobsAppearWhenPublished) {
  ASSERT_OK_AND_ASSIGN(auto bs, GetParam().open(dir_.path(), &rng_));
  ASSERT_OK(bs->Put(kApp, "b", "old b", "text/plain").status());
  std::vector<std::string> contents = {RandomBytes(rng_, 2 * 1024 * 1024 + 5), "new b", ""};
  std::vector<BlobInfo> staged;
  for (size_t i = 0; i < contents.size(); ++i) {
    DrippingReader in(contents[i]);
    std::string key = std::string(1, static_cast<char>('a' + i));
    ASSERT_OK_AND_ASSIGN(BlobInfo info, bs->Stage(kApp, key, in, "application/x-test"));
    EXPECT_EQ(info.key, key);
    EXPECT_EQ(info.size, static_cast<int64_t>(contents[i].size()));
    EXPECT_EQ(info.sha256, Sha256Hex(contents[i]));
    staged.push_back(info);
  }
  // Nothing staged shows yet: "b" is still the old version, "a" and "c" are absent.
  ASSERT_OK_AND_ASSIGN(auto listed, bs->List(kApp, "", "", 10));
  ASSERT_EQ(listed.size(), 1u);
  ASSERT_OK_AND_ASSIGN(std::string b, bs->Get(kApp, "b", nullptr));
  EXPECT_EQ(b, "old b");
  EXPECT_EQ(bs->Get(kApp, "a", nullptr).status().code(), StatusCode::kNotFound);
  ASSERT_OK(bs->Publish(kApp, staged));
  ASSERT_OK_AND_ASSIGN(listed, bs->List(kApp, "", "", 10));
  ASSERT_EQ(listed.size(), 3u);
  for (size_t i = 0; i < contents.size(); ++i) {
    BlobInfo info;
    ASSERT_OK_AND_ASSIGN(std::string got, bs->Get(kApp, staged[i].key, &info));
    EXPECT_EQ(got, contents[i]);
    EXPECT_EQ(info.content_type, "application/x-test");
  }
  ASSERT_OK_AND_ASSIGN(int64_t size, bs->SizeBytes(kApp));
  EXPECT_EQ(size, static_cast<int64_t>(contents[0].size() + contents[1].size()));
  // Content staged before its namespace was deleted (an abort's clean-up) is not published.
  DrippingReader again(contents[1]);
  ASSERT_OK_AND_ASSIGN(BlobInfo restaged, bs->Stage(kApp, "b", again, "text/plain"));
  ASSERT_OK(bs->DeleteNamespace(kApp));
  EXPECT_FALSE(bs->Publish(kApp, {restaged}).ok());
  EXPECT_EQ(bs->Get(kApp, "b", nullptr).status().code(), StatusCode::kNotFound);
  // A writer dropped before Finish leaves nothing behind; one that finishes stays invisible.
  {
    ASSERT_OK_AND_ASSIGN(auto w, bs->StartStage(kApp, "dropped", "", ""));
    ASSERT_OK(w->Write("partial", 7));
  }
  ASSERT_OK_AND_ASSIGN(listed, bs->List(kApp, "", "", 10));
  EXPECT_TRUE(listed.empty());
}

// What a crash between Stage and Publish leaves is found and removed; published blobs stay.
TEST_P(BlobStoreConformance, UnpublishedContentIsRemoved) {
  ASSERT_OK_AND_ASSIGN(auto bs, GetParam().open(dir_.path(), &rng_));
  ASSERT_OK(bs->Put(kApp, "kept/1", "one", "").status());
  ASSERT_OK(bs->Put(kApp, "kept/2", "two", "").status());
  ASSERT_OK(bs->Put(kApp, "kept/2", "two, again", "").status());  // the first version is gone
  ASSERT_OK(bs->Put("app_bbbbbbbbbbbb", "other", "another app's", "").status());
  for (const char* key : {"lost/a", "lost/b", "kept/1"}) {
    StringBlobReader in(std::string("staged ") + key);
    ASSERT_OK(bs->Stage(kApp, key, in, "").status());
  }
  ASSERT_OK_AND_ASSIGN(int64_t removed, bs->RemoveUnpublished(kApp));
  EXPECT_EQ(removed, 3);
  ASSERT_OK_AND_ASSIGN(removed, bs->RemoveUnpublished(kApp));
  EXPECT_EQ(removed, 0);
  ASSERT_OK_AND_ASSIGN(std::string one, bs->Get(kApp, "kept/1", nullptr));
  EXPECT_EQ(one, "one");
  ASSERT_OK_AND_ASSIGN(std::string two, bs->Get(kApp, "kept/2", nullptr));
  EXPECT_EQ(two, "two, again");
  ASSERT_OK_AND_ASSIGN(std::string other, bs->Get("app_bbbbbbbbbbbb", "other", nullptr));
  EXPECT_EQ(other, "another app's");
}

// A copy names the SHA-256 it expects: content that hashes otherwise is refused and leaves
// nothing (one part or several).
TEST_P(BlobStoreConformance, ContentThatDoesNotHashAsExpectedIsRefused) {
  ASSERT_OK_AND_ASSIGN(auto bs, GetParam().open(dir_.path(), &rng_));
  for (size_t size : {size_t{100}, size_t{9} << 20}) {
    std::string data = RandomBytes(rng_, size);
    StringBlobReader bad(data);
    auto refused = bs->Stage(kApp, "k", bad, "", Sha256Hex("something else"));
    EXPECT_EQ(refused.status().code(), StatusCode::kCorruption) << size;
    StringBlobReader good(data);
    ASSERT_OK_AND_ASSIGN(BlobInfo ok, bs->Stage(kApp, "k", good, "", Sha256Hex(data)));
    ASSERT_OK(bs->Publish(kApp, {ok}));
    ASSERT_OK_AND_ASSIGN(int64_t strays, bs->RemoveUnpublished(kApp));
    EXPECT_EQ(strays, 0) << "the refused content left something behind (" << size << " bytes)";
    ASSERT_OK_AND_ASSIGN(std::string got, bs->Get(kApp, "k", nullptr));
    EXPECT_TRUE(got == data);
  }
}

// Reads from an offset: what a Range request of the API serves.
TEST_P(BlobStoreConformance, ReadsFromAnOffset) {
  ASSERT_OK_AND_ASSIGN(auto bs, GetParam().open(dir_.path(), &rng_));
  std::string data = RandomBytes(rng_, 3 * 1024 * 1024 + 17);
  ASSERT_OK(bs->Put(kApp, "big", data, "").status());
  for (int64_t offset :
       {int64_t{0}, int64_t{1}, int64_t{1 << 20}, int64_t(data.size() - 1), int64_t(data.size())}) {
    BlobInfo info;
    ASSERT_OK_AND_ASSIGN(auto r, bs->OpenAt(kApp, "big", offset, &info));
    EXPECT_EQ(info.size, static_cast<int64_t>(data.size()));
    std::string got;
    char buf[70000];
    while (true) {
      ASSERT_OK_AND_ASSIGN(size_t n, r->Read(buf, sizeof buf));
      if (n == 0) break;
      got.append(buf, n);
    }
    EXPECT_TRUE(got == data.substr(static_cast<size_t>(offset))) << "offset " << offset;
  }
  EXPECT_FALSE(bs->OpenAt(kApp, "big", static_cast<int64_t>(data.size()) + 1, nullptr).ok());
}

TEST_P(BlobStoreConformance, AStaleTokenCannotDeleteTheNamespace) {
  ASSERT_OK_AND_ASSIGN(auto bs, GetParam().open(dir_.path(), &rng_));
  ASSERT_OK(bs->DeleteNamespace(kApp, 7));  // a later migration cleaned and refilled it
  ASSERT_OK(bs->Put(kApp, "kept", "acknowledged", "").status());
  EXPECT_EQ(bs->DeleteNamespace(kApp, 5).reason(), "fenced");
  ASSERT_OK_AND_ASSIGN(std::string got, bs->Get(kApp, "kept", nullptr));
  EXPECT_EQ(got, "acknowledged");
  ASSERT_OK(bs->DeleteNamespace(kApp, 0));  // unchecked: callers serialised otherwise
}

TEST_P(BlobStoreConformance, KeysAreValidated) {
  ASSERT_OK_AND_ASSIGN(auto bs, GetParam().open(dir_.path(), &rng_));
  for (std::string bad :
       {std::string(""), std::string("/etc/passwd"), std::string("a/../b"), std::string(".."),
        std::string("x/.."), std::string("a\0b", 3), std::string(1025, 'k')}) {
    auto r = bs->Put(kApp, bad, "x", "");
    EXPECT_EQ(r.status().reason(), "invalid_key") << bad;
  }
  for (std::string ok : {std::string("a..b"), std::string("..a/b"), std::string("a/./b"),
                         std::string("dir/file.txt"), std::string(1024, 'k')}) {
    EXPECT_OK(bs->Put(kApp, ok, "x", "").status());
  }
}

TEST_P(BlobStoreConformance, ListsInKeyOrderWithCursorAndPrefix) {
  ASSERT_OK_AND_ASSIGN(auto bs, GetParam().open(dir_.path(), &rng_));
  for (int i = 0; i < 30; ++i) {
    char key[32];
    std::snprintf(key, sizeof(key), "%s/%02d", i % 3 ? "img" : "doc", i);
    ASSERT_OK(bs->Put(kApp, key, std::to_string(i), "").status());
  }
  ASSERT_OK(bs->Put("app_bbbbbbbbbbbb", "img/99", "other app", "").status());
  std::string after;
  std::vector<std::string> keys;
  while (true) {
    ASSERT_OK_AND_ASSIGN(auto page, bs->List(kApp, "img/", after, 7));
    if (page.empty()) break;
    for (const auto& b : page) keys.push_back(b.key);
    after = page.back().key;
  }
  EXPECT_EQ(keys.size(), 20u);
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  for (const auto& k : keys) EXPECT_EQ(k.rfind("img/", 0), 0u);
  ASSERT_OK(bs->DeleteNamespace(kApp));
  ASSERT_OK_AND_ASSIGN(auto none, bs->List(kApp, "", "", 100));
  EXPECT_TRUE(none.empty());
  ASSERT_OK_AND_ASSIGN(auto others, bs->List("app_bbbbbbbbbbbb", "", "", 100));
  EXPECT_EQ(others.size(), 1u);
}

// Content that is never all in memory: a generated stream (xorshift) of `n` bytes.
class GeneratedReader final : public BlobReader {
 public:
  explicit GeneratedReader(int64_t n) : left_(n) {}
  Result<size_t> Read(char* buf, size_t n) override {
    n = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(n), left_)) & ~size_t{7};
    if (n == 0 && left_ > 0) n = static_cast<size_t>(left_);
    for (size_t i = 0; i < n; i += 8) {
      x_ ^= x_ << 13, x_ ^= x_ >> 7, x_ ^= x_ << 17;
      std::memcpy(buf + i, &x_, std::min<size_t>(8, n - i));
    }
    left_ -= static_cast<int64_t>(n);
    return n;
  }

 private:
  int64_t left_;
  uint64_t x_ = 88172645463325252ull;
};

int64_t PeakRssBytes() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;
}

// A blob of 1 GiB (REGIONMOVE_BIG_BLOB_MIB to change it) streams in and out with the process's
// peak memory flat: what a server and a move hold is a buffer, not the blob.
TEST_P(BlobStoreConformance, StreamsAGibibyteInAndOut) {
  const char* env = std::getenv("REGIONMOVE_BIG_BLOB_MIB");
  const int64_t size = (env ? std::atoll(env) : 1024) << 20;
  ASSERT_OK_AND_ASSIGN(auto bs, GetParam().open(dir_.path(), &rng_));
  const int64_t rss_before = PeakRssBytes();
  Sha256 expect;
  {
    GeneratedReader gen(size);
    std::vector<char> buf(1 << 20);
    while (true) {
      ASSERT_OK_AND_ASSIGN(size_t n, gen.Read(buf.data(), buf.size()));
      if (n == 0) break;
      expect.Update(buf.data(), n);
    }
  }
  const std::string sha = expect.HexDigest();
  GeneratedReader in(size);
  ASSERT_OK_AND_ASSIGN(BlobInfo staged, bs->Stage(kApp, "huge.bin", in, "video/mp4"));
  EXPECT_EQ(staged.size, size);
  EXPECT_EQ(staged.sha256, sha);
  ASSERT_OK(bs->Publish(kApp, {staged}));
  BlobInfo info;
  ASSERT_OK_AND_ASSIGN(auto out, bs->Open(kApp, "huge.bin", &info));
  EXPECT_EQ(info.size, size);
  Sha256 got;
  int64_t read = 0;
  std::vector<char> buf(1 << 20);
  while (true) {
    ASSERT_OK_AND_ASSIGN(size_t n, out->Read(buf.data(), buf.size()));
    if (n == 0) break;
    got.Update(buf.data(), n);
    read += static_cast<int64_t>(n);
  }
  EXPECT_EQ(read, size);
  EXPECT_EQ(got.HexDigest(), sha);
  const int64_t grown = PeakRssBytes() - rss_before;
  EXPECT_LT(grown, 64 << 20) << "peak RSS grew by " << (grown >> 20) << " MiB for a "
                             << (size >> 20) << " MiB blob";
  ASSERT_OK(bs->DeleteNamespace(kApp));
}

// Readers racing an overwrite see the old or the new content, never a mix.
TEST_P(BlobStoreConformance, OverwritesAreAtomic) {
  ASSERT_OK_AND_ASSIGN(auto bs, GetParam().open(dir_.path(), &rng_));
  std::string a(256 * 1024, 'a'), b(256 * 1024, 'b');
  ASSERT_OK(bs->Put(kApp, "k", a, "").status());
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < 40; ++i) EXPECT_OK(bs->Put(kApp, "k", i % 2 ? a : b, "").status());
    done = true;
  });
  int reads = 0;
  while (!done.load()) {
    BlobInfo info;
    auto got = bs->Get(kApp, "k", &info);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_TRUE(*got == a || *got == b);
    ++reads;
  }
  writer.join();
  EXPECT_GT(reads, 0);
}

}  // namespace
}  // namespace regionmove::testing
