#pragma once

#include <cstdio>
#include <string>

#include "domain/migration.h"

namespace regionmove {

// Live progress of one migration for people: on a terminal one redrawn line with step i/11,
// its label, a bar for bytes and an ETA; otherwise one plain line per step change.
// Not thread-safe.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(FILE* out);
  // Shows the migration's current state; `now_ms` for elapsed time and ETA.
  void Update(const Migration& m, int64_t now_ms);
  // Ends the live line (on a terminal).
  void Finish(const Migration& m, int64_t now_ms);

 private:
  FILE* out_;
  bool tty_;
  std::string last_key_;
  size_t last_width_ = 0;
  int last_index_ = -1;  // highest step index printed (plain mode)
};

std::string HumanBytes(int64_t bytes);

}  // namespace regionmove
