// The live progress line of the CLI: it fits the terminal, dropping parts in order of importance.
#include <gtest/gtest.h>

#include "cli/progress.h"

namespace regionmove {
namespace {

int Columns(const std::string& s) {
  int n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

Migration CopyingRuntime() {
  Migration m;
  m.strategy = "offline";
  m.admitted = true;
  m.source_region = "us-east-1";
  m.dest_region = "ap-southeast-1";
  m.current_step = Step::kCopyingRuntime;
  m.step_started_at_ms = 1000;
  m.progress.bytes_done = 256LL << 20;
  m.progress.bytes_total = 1024LL << 20;
  return m;
}

TEST(ProgressLine, FitsEveryWidthAndKeepsTheStepFirst) {
  const Migration m = CopyingRuntime();
  for (int width = 20; width <= 200; ++width) {
    std::string line = ProgressLine(m, 11000, width);
    EXPECT_LE(Columns(line), width - 1) << width << ": " << line;
    EXPECT_EQ(line.rfind("7/11 ", 0), 0u) << line;
  }
}

TEST(ProgressLine, DropsTheBarFirstThenTheEtaThenCutsTheLabel) {
  const Migration m = CopyingRuntime();
  std::string wide = ProgressLine(m, 11000, 200);
  EXPECT_EQ(wide,
            "7/11 Copying functions, env vars, cron and domains to ap-southeast-1 (writes paused)"
            "  256.0 MiB/1.0 GiB  ETA 30 s  [#####...............]");
  std::string sixty = ProgressLine(m, 11000, 60);
  EXPECT_EQ(sixty, "7/11 Copying functions, env vars, cron and domains to ap-s\u2026");
  // Room for the label and the bytes, not the ETA and the bar.
  std::string mid = ProgressLine(m, 11000, 105);
  EXPECT_NE(mid.find("256.0 MiB/1.0 GiB"), std::string::npos) << mid;
  EXPECT_EQ(mid.find("ETA"), std::string::npos) << mid;
  EXPECT_EQ(mid.find('['), std::string::npos) << mid;
}

TEST(HumanUnits, RoundForPeople) {
  EXPECT_EQ(HumanUsd(4.76e-05), "< $0.01");
  EXPECT_EQ(HumanUsd(0), "$0.00");
  EXPECT_EQ(HumanUsd(12.345), "$12.35");
  EXPECT_EQ(HumanSeconds(0.044), "44 ms");
  EXPECT_EQ(HumanSeconds(2.54), "2.5 s");
  EXPECT_EQ(HumanSeconds(42.4), "42 s");
  EXPECT_EQ(HumanSeconds(185), "3 min 5 s");
}

}  // namespace
}  // namespace regionmove
