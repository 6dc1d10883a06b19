#pragma once

#include <gtest/gtest.h>

#include <filesystem>
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

inline TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "regionmove-test-XXXXXX").string();
  path_ = mkdtemp(tmpl.data());
}
inline TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace regionmove::testing

#define ASSERT_OK(expr)                          \
  do {                                           \
    const ::regionmove::Status& rm_s_ = (expr);  \
    ASSERT_TRUE(rm_s_.ok()) << rm_s_.ToString(); \
  } while (0)
#define EXPECT_OK(expr)                          \
  do {                                           \
    const ::regionmove::Status& rm_s_ = (expr);  \
    EXPECT_TRUE(rm_s_.ok()) << rm_s_.ToString(); \
  } while (0)
// Unwraps a Result<T> into `lhs`, failing the test on error.
#define ASSERT_OK_AND_ASSIGN(lhs, expr)                                                           \
  auto RM_CONCAT(rm_r_, __LINE__) = (expr);                                                       \
  ASSERT_TRUE(RM_CONCAT(rm_r_, __LINE__).ok()) << RM_CONCAT(rm_r_, __LINE__).status().ToString(); \
  lhs = std::move(RM_CONCAT(rm_r_, __LINE__)).value()
