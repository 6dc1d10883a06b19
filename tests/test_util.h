#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include "common/status.h"

namespace regionmove::testing {

// A fresh directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Lowercase hex unique to this process and call, for names in stores that outlive a test run
// (an S3 bucket or prefix): a seeded Rng gives the same names in every run.
inline std::string UniqueName() {
  static std::atomic<uint64_t> calls{0};
  static const uint64_t seed = (uint64_t{std::random_device{}()} << 32) ^ uint64_t(::getpid());
  char buf[40];
  std::snprintf(buf, sizeof buf, "%016llx%llx", static_cast<unsigned long long>(seed),
                static_cast<unsigned long long>(calls++));
  return buf;
}

// The local S3 server of scripts/s3-local (REGIONMOVE_S3_ENDPOINT to use another).
inline std::string S3TestEndpoint() {
  const char* e = std::getenv("REGIONMOVE_S3_ENDPOINT");
  return e ? e : "http://127.0.0.1:4569";
}

inline TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "regionmove-test-XXXXXX").string();
  path_ = mkdtemp(tmpl.data());
}
inline TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace regionmove::testing

namespace regionmove::testing {
inline ::testing::AssertionResult IsOk(const ::regionmove::Status& s) {
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << s.ToString();
}
}  // namespace regionmove::testing

#define ASSERT_OK(expr) ASSERT_TRUE(::regionmove::testing::IsOk(expr))
#define EXPECT_OK(expr) EXPECT_TRUE(::regionmove::testing::IsOk(expr))
// Unwraps a Result<T> into `lhs`, failing the test on error.
#define ASSERT_OK_AND_ASSIGN(lhs, expr)                                                           \
  auto RM_CONCAT(rm_r_, __LINE__) = (expr);                                                       \
  ASSERT_TRUE(RM_CONCAT(rm_r_, __LINE__).ok()) << RM_CONCAT(rm_r_, __LINE__).status().ToString(); \
  lhs = std::move(RM_CONCAT(rm_r_, __LINE__)).value()
