#pragma once

#include <cstdio>
#include <string>

#include "common/text.h"  // HumanBytes, HumanUsd, HumanSeconds
#include "domain/migration.h"

namespace regionmove {

// Live progress of one migration for people: on a terminal one line, redrawn in place, that
// never wraps: step i/N and its label first, then (as the width allows) bytes, ETA and a bar;
// otherwise one plain line per step change. Not thread-safe.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(FILE* out);
  // Shows the migration's current state; `now_ms` for elapsed time and ETA.
  void Update(const Migration& m, int64_t now_ms);
  // Ends the live line (on a terminal).
  void Finish(const Migration& m, int64_t now_ms);
  // Ends the live line without a last update (Ctrl-C).
  void Interrupt();

 private:
  FILE* out_;
  bool tty_;
  bool open_line_ = false;  // a live line is on screen without its newline
  std::string last_key_;
  int last_index_ = -1;  // highest step index printed (plain mode)
};

// The live line for a terminal `width` columns wide, at most width - 1 columns (so that the
// cursor never wraps): exposed for tests.
std::string ProgressLine(const Migration& m, int64_t now_ms, int width);

// Columns of the terminal on `out` (COLUMNS when set, else the terminal's, else 80).
int TerminalWidth(FILE* out);

}  // namespace regionmove
