#include "cli/progress.h"

#include <unistd.h>

namespace regionmove {

std::string HumanBytes(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

ProgressPrinter::ProgressPrinter(FILE* out) : out_(out), tty_(isatty(fileno(out)) != 0) {}

void ProgressPrinter::Update(const Migration& m, int64_t now_ms) {
  const Plan& plan = m.plan();
  const int count = plan.size();
  int index = plan.Index(m.current_step);
  std::string label =
      StepLabel(m.current_step, m.source_region, m.dest_region, m.reverse_path == "fast");
  std::string status(MigrationStatusName(m.status()));
  std::string step = index >= 0 ? std::to_string(index + 1) + "/" + std::to_string(count)
                                : "-/" + std::to_string(count);
  if (!tty_) {
    // One line per step, including the ones that went by between two looks.
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
    std::fprintf(out_, "[%s] %-9s %s\n", step.c_str(), status.c_str(), label.c_str());
    std::fflush(out_);
    return;
  }
  const Progress& p = m.progress;
  std::string bar;
  if (p.bytes_total > 0) {
    int width = 20;
    int filled = static_cast<int>(width * p.bytes_done / std::max<int64_t>(1, p.bytes_total));
    bar = "[" + std::string(static_cast<size_t>(std::min(filled, width)), '#') +
          std::string(static_cast<size_t>(width - std::min(filled, width)), '.') + "] " +
          HumanBytes(p.bytes_done) + "/" + HumanBytes(p.bytes_total);
    if (p.bytes_done > 0 && m.step_started_at_ms > 0 && p.bytes_done < p.bytes_total) {
      double elapsed = static_cast<double>(now_ms - m.step_started_at_ms) / 1000.0;
      double eta = elapsed * static_cast<double>(p.bytes_total - p.bytes_done) /
                   static_cast<double>(p.bytes_done);
      char e[32];
      std::snprintf(e, sizeof(e), " ETA %.0fs", eta);
      bar += e;
    }
  }
  std::string line = "  step " + step + "  " + label + (bar.empty() ? "" : "  " + bar);
  if (m.status() == MigrationStatus::kAborting) line += "  (aborting)";
  std::string pad = line.size() < last_width_ ? std::string(last_width_ - line.size(), ' ') : "";
  std::fprintf(out_, "\r%s%s", line.c_str(), pad.c_str());
  last_width_ = line.size();
  std::fflush(out_);
}

void ProgressPrinter::Finish(const Migration& m, int64_t now_ms) {
  Update(m, now_ms);
  if (tty_) std::fprintf(out_, "\n");
  std::fflush(out_);
}

}  // namespace regionmove
