#include "cli/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>

namespace regionmove {

int TerminalWidth(FILE* out) {
  if (const char* c = std::getenv("COLUMNS")) {
    const int n = std::atoi(c);
    if (n > 0) return n;
  }
  winsize ws{};
  if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

namespace {

// Display columns of UTF-8 text (every character here is one column wide).
int Columns(const std::string& s) {
  int n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// The first `cols` columns of `s`, ending in "…" when cut.
std::string Fit(const std::string& s, int cols) {
  if (Columns(s) <= cols) return s;
  if (cols <= 0) return "";
  std::string out;
  int n = 0;
  for (size_t i = 0; i < s.size() && n < cols - 1; ++i) {
    out += s[i];
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) ++n;
    while (i + 1 < s.size() && (static_cast<unsigned char>(s[i + 1]) & 0xC0) == 0x80) out += s[++i];
  }
  return out + "\u2026";
}

}  // namespace

std::string ProgressLine(const Migration& m, int64_t now_ms, int width) {
  const Plan& plan = m.plan();
  const int index = plan.Index(m.current_step);
  const std::string step =
      (index >= 0 ? std::to_string(index + 1) : "-") + "/" + std::to_string(plan.size()) + " ";
  std::string label =
      StepLabel(m.current_step, m.source_region, m.dest_region, m.reverse_path == "fast");
  if (m.status() == MigrationStatus::kAborting) label = "aborting: " + label;
  if (m.writes_blocked()) label += " (writes paused)";
  const int room = width - 1;  // the last column would wrap on some terminals
  std::string line = step + Fit(label, room - Columns(step));
  // What else fits, in order of importance: bytes, ETA, then a bar.
  const Progress& p = m.progress;
  if (p.bytes_total <= 0) return line;
  const std::string bytes = "  " + HumanBytes(p.bytes_done) + "/" + HumanBytes(p.bytes_total);
  std::string eta;
  if (p.bytes_done > 0 && m.step_started_at_ms > 0 && p.bytes_done < p.bytes_total) {
    const double elapsed = static_cast<double>(now_ms - m.step_started_at_ms) / 1000.0;
    eta = "  ETA " + HumanSeconds(elapsed * static_cast<double>(p.bytes_total - p.bytes_done) /
                                  static_cast<double>(p.bytes_done));
  }
  const int bar_width = 20;
  const int filled = static_cast<int>(bar_width * std::min(p.bytes_done, p.bytes_total) /
                                      std::max<int64_t>(1, p.bytes_total));
  const std::string bar = "  [" + std::string(static_cast<size_t>(filled), '#') +
                          std::string(static_cast<size_t>(bar_width - filled), '.') + "]";
  for (const std::string* part : {&bytes, static_cast<const std::string*>(&eta), &bar}) {
    if (Columns(line) + Columns(*part) <= room) line += *part;
  }
  return line;
}

ProgressPrinter::ProgressPrinter(FILE* out) : out_(out), tty_(isatty(fileno(out)) != 0) {}

void ProgressPrinter::Update(const Migration& m, int64_t now_ms) {
  const Plan& plan = m.plan();
  const int count = plan.size();
  const int index = plan.Index(m.current_step);
  if (!tty_) {
    // One line per step, including the ones that went by between two looks.
    std::string status(MigrationStatusName(m.status()));
    std::string step = index >= 0 ? std::to_string(index + 1) + "/" + std::to_string(count)
                                  : "-/" + std::to_string(count);
    int upto = index >= 0 ? index : plan.Index(m.stopped_at);
    for (int i = last_index_ + 1; i < upto; ++i) {
      Step s = plan.steps()[static_cast<size_t>(i)];
      std::fprintf(out_, "[%d/%d] running   %s\n", i + 1, count,
                   StepLabel(s, m.source_region, m.dest_region, m.reverse_path == "fast").c_str());
    }
    last_index_ = std::max(last_index_, upto - 1);
    std::string key = std::string(StepName(m.current_step)) + status;
    if (key == last_key_) return;
    last_key_ = key;
    if (index >= 0) last_index_ = std::max(last_index_, index);
    std::fprintf(out_, "[%s] %-9s %s\n", step.c_str(), status.c_str(),
                 StepLabel(m.current_step, m.source_region, m.dest_region, m.reverse_path == "fast")
                     .c_str());
    std::fflush(out_);
    return;
  }
  // Carriage return, the line, then erase what a longer previous line left.
  std::fprintf(out_, "\r%s\x1b[K", ProgressLine(m, now_ms, TerminalWidth(out_)).c_str());
  open_line_ = true;
  std::fflush(out_);
}

void ProgressPrinter::Finish(const Migration& m, int64_t now_ms) {
  Update(m, now_ms);
  Interrupt();
}

void ProgressPrinter::Interrupt() {
  if (open_line_) std::fprintf(out_, "\n");
  open_line_ = false;
  std::fflush(out_);
}

}  // namespace regionmove
