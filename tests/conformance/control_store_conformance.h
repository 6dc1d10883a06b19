#pragma once

#include <functional>
#include <memory>
#include <string>

#include "store/control_store.h"
#include "test_util.h"

namespace regionmove::testing {

// One engine under the control store conformance suite. `open(dir)` opens a handle on the
// store that lives in `dir` (or that `dir` names): calling it twice with the same dir gives two
// independent handles on one backing store, as two processes would have.
struct ControlStoreEngine {
  std::string name;
  std::function<Result<std::unique_ptr<ControlStore>>(const std::string& dir)> open;
};

inline void PrintTo(const ControlStoreEngine& e, std::ostream* os) { *os << e.name; }

class ControlStoreConformance : public ::testing::TestWithParam<ControlStoreEngine> {
 protected:
  void SetUp() override;
  std::unique_ptr<ControlStore> OpenAnother();

  TempDir dir_;
  std::unique_ptr<ControlStore> store_;
};

}  // namespace regionmove::testing
