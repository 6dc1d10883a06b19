// The test binaries' main: the engines are registered explicitly, as the regionmove binary does.
#include <gtest/gtest.h>

#include "dataplane/engines.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  regionmove::RegisterBuiltinEngines();
  return RUN_ALL_TESTS();
}
