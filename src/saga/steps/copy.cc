// copying_blobs and copying_runtime.
#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "common/log.h"
#include "saga/steps/steps.h"

namespace regionmove::steps {

using nlohmann::json;

namespace {

constexpr int kPage = 64;

struct PageResult {
  int64_t bytes = 0;
  int copied = 0;
  int copied_server_side = 0;  // of `copied`: by the storage server, without the bytes here
  int skipped = 0;
  std::vector<BlobInfo> staged;  // copied into dest, to publish
  Status status;
};

// Streams one blob into dest unless dest already has the same content; the SHA-256 dest
// computes as it writes must be the one the source recorded (one read, one write, one hash).
Status CopyOne(RegionPlane* src, RegionPlane* dst, const std::string& app, const BlobInfo& info,
               std::optional<BlobInfo>* staged, bool* server_side) {
  ASSIGN_OR_RETURN(auto have, dst->blobs->Stat(app, info.key));
  if (have && have->sha256 == info.sha256) return Status::Ok();
  // Two stores that share a storage server copy there (the bytes never come through here).
  ASSIGN_OR_RETURN(auto copied,
                   dst->blobs->StageCopy(app, info, src->blobs->CopySource(app, info)));
  if (copied) {
    *staged = std::move(*copied);
    *server_side = true;
    return Status::Ok();
  }
  BlobInfo cur;
  ASSIGN_OR_RETURN(auto content, src->blobs->Open(app, info.key, &cur));
  ASSIGN_OR_RETURN(BlobInfo put,
                   dst->blobs->Stage(app, info.key, *content, cur.content_type, cur.sha256));
  if (put.sha256 != cur.sha256 || put.size != cur.size) {
    return Corruption("blob " + info.key + " does not verify after copy");
  }
  *staged = std::move(put);
  return Status::Ok();
}

// The page's blobs, copied by a few threads at once and published in dest together.
// `on_blob(bytes of the page so far)` runs after each blob, one call at a time; an error from it
// stops the page (an abort, a lost lease).
PageResult CopyPage(RegionPlane* src, RegionPlane* dst, const std::string& app,
                    const std::vector<BlobInfo>& page,
                    const std::function<Status(int64_t)>& on_blob) {
  PageResult out;
  std::mutex mu;
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  auto work = [&] {
    for (size_t i = next++; i < page.size() && !stop; i = next++) {
      std::optional<BlobInfo> staged;
      bool server_side = false;
      Status s = CopyOne(src, dst, app, page[i], &staged, &server_side);
      std::lock_guard<std::mutex> lock(mu);
      if (s.ok()) {
        (staged ? out.copied : out.skipped)++;
        out.copied_server_side += server_side;
        if (staged) out.staged.push_back(std::move(*staged));
        out.bytes += page[i].size;
        s = on_blob(out.bytes);
      }
      if (!s.ok()) {
        if (out.status.ok()) out.status = s;
        stop = true;
      }
    }
  };
  std::vector<std::thread> threads;
  int n = std::min<int>(dst->blobs->CopyStreams(), static_cast<int>(page.size()));
  for (int t = 1; t < n; ++t) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  if (out.status.ok() && !out.staged.empty()) out.status = dst->blobs->Publish(app, out.staged);
  return out;
}

bool Empty(const RuntimeSnapshot& s) {
  return s.functions.empty() && s.env.empty() && s.cron.empty() && s.domains.empty();
}

}  // namespace

Status CopyBlobs(const StepDeps& deps, StepContext& ctx) {
  const Migration& m = ctx.migration();
  RegionPlane* src = Source(deps, m);
  RegionPlane* dst = Dest(deps, m);
  json res = Resources(ctx);
  ASSIGN_OR_RETURN(int64_t total, src->blobs->SizeBytes(m.app_id));
  if (!res.value("blobs_done", false)) {
    // Resumes after the last page recorded in the manifest cursor.
    std::string cursor = res.value("blob_cursor", "");
    int64_t done = res.value("blob_bytes", int64_t{0});
    // The total is known before the first byte moves; progress follows every blob.
    RETURN_IF_ERROR(ctx.ReportProgress(done, std::max(done, total)));
    while (true) {
      ASSIGN_OR_RETURN(auto page, src->blobs->List(m.app_id, "", cursor, kPage));
      if (page.empty()) break;
      PageResult r = CopyPage(src, dst, m.app_id, page, [&](int64_t page_bytes) {
        return ctx.ReportProgress(done + page_bytes, std::max(done + page_bytes, total));
      });
      RETURN_IF_ERROR(r.status);
      done += r.bytes;
      cursor = page.back().key;
      res["blob_cursor"] = cursor;
      res["blob_bytes"] = done;
      res["blobs_copied"] = res.value("blobs_copied", 0) + r.copied;
      res["blobs_skipped"] = res.value("blobs_skipped", 0) + r.skipped;
      if (r.copied_server_side > 0) {
        res["blobs_copied_server_side"] =
            res.value("blobs_copied_server_side", 0) + r.copied_server_side;
      }
      // The cursor of a full page is recorded at once (a retry resumes after it); a short one
      // is the last, recorded with the step's end.
      if (page.size() == static_cast<size_t>(kPage)) {
        RETURN_IF_ERROR(SaveResources(ctx, res));
      } else {
        KeepResources(ctx, res);
      }
      RETURN_IF_ERROR(deps.Fault("copying_blobs.after_page"));
      RETURN_IF_ERROR(ctx.ReportProgress(done, std::max(done, total)));
    }
  }
  // Dest keeps nothing the source does not have (a replica's blobs deleted since the cutover).
  std::string after;
  int deleted = 0;
  while (true) {
    ASSIGN_OR_RETURN(auto page, dst->blobs->List(m.app_id, "", after, 256));
    if (page.empty()) break;
    for (const auto& b : page) {
      ASSIGN_OR_RETURN(auto there, src->blobs->Stat(m.app_id, b.key));
      if (!there) {
        Status s = dst->blobs->Delete(m.app_id, b.key);
        if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
        ++deleted;
      }
    }
    after = page.back().key;
    RETURN_IF_ERROR(ctx.Checkpoint());
  }
  // Content a crashed attempt staged and never published (nothing else writes to dest).
  ASSIGN_OR_RETURN(int64_t strays, dst->blobs->RemoveUnpublished(m.app_id));
  res["blobs_done"] = true;
  res["blobs_deleted"] = res.value("blobs_deleted", 0) + deleted;
  if (strays > 0) res["blob_strays_removed"] = res.value("blob_strays_removed", 0) + strays;
  KeepResources(ctx, res);
  return Status::Ok();
}

Status CopyRuntime(const StepDeps& deps, StepContext& ctx) {
  const Migration& m = ctx.migration();
  RegionPlane* src = Source(deps, m);
  RegionPlane* dst = Dest(deps, m);
  json res = Resources(ctx);
  // After a crash past the archiving, the source's rows are the archived ones.
  ASSIGN_OR_RETURN(RuntimeSnapshot snap, src->runtime->Snapshot(m.app_id, false));
  if (Empty(snap)) {
    ASSIGN_OR_RETURN(snap, src->runtime->Snapshot(m.app_id, true));
  }
  res["dest_runtime_written"] = true;
  RETURN_IF_ERROR(SaveResources(ctx, res));
  RETURN_IF_ERROR(dst->runtime->ReplaceLive(m.app_id, snap));
  RETURN_IF_ERROR(dst->runtime->DeleteAll(m.app_id, RuntimeStore::Which::kArchived, ctx.epoch()));
  ASSIGN_OR_RETURN(RuntimeSnapshot check, dst->runtime->Snapshot(m.app_id, false));
  if (!(check == snap)) return Corruption("runtime rows in " + m.dest_region + " do not verify");
  res["runtime"] = {{"functions", snap.functions.size()},
                    {"env", snap.env.size()},
                    {"cron", snap.cron.size()},
                    {"domains", snap.domains.size()}};
  res["source_runtime_archived"] = true;
  RETURN_IF_ERROR(SaveResources(ctx, res));
  return src->runtime->SetArchived(m.app_id, true);
}

}  // namespace regionmove::steps
