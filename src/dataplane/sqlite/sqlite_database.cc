#include "dataplane/sqlite/sqlite_database.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>

#include "common/hash.h"
#include "common/json_limits.h"
#include "common/sync.h"
#include "common/zstd_file.h"

namespace regionmove {

namespace fs = std::filesystem;
using nlohmann::json;
using sqlite::Db;
using sqlite::Stmt;

namespace {

constexpr const char* kInternalSchema = R"sql(
CREATE TABLE IF NOT EXISTS _rm_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS _rm_changelog (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS _rm_columns (
  table_name TEXT NOT NULL, column_name TEXT NOT NULL, type TEXT NOT NULL, ord INTEGER NOT NULL,
  PRIMARY KEY (table_name, column_name));
)sql";

// Tables that are region-local: never captured, never part of a digest.
bool IsLocalTable(std::string_view name) {
  return name == "_rm_meta" || name == "_rm_changelog" || name == sqlite::kFenceTokenTable ||
         name == SqliteDatabase::kTouchedTable || name.rfind("sqlite_", 0) == 0;
}

int SessionFilter(void*, const char* table) { return IsLocalTable(table) ? 0 : 1; }

std::string Quote(std::string_view ident) { return "\"" + std::string(ident) + "\""; }

const char* SqlType(const std::string& type) {
  if (type == "integer" || type == "boolean") return "INTEGER";
  if (type == "real") return "REAL";
  if (type == "bytes") return "BLOB";
  return "TEXT";
}

Result<std::string> Meta(Db* db, const char* key) {
  ASSIGN_OR_RETURN(Stmt q, db->Prepare("SELECT value FROM _rm_meta WHERE key = ?"));
  ASSIGN_OR_RETURN(bool row, q.Bind(1, key).Step());
  return row ? q.Text(0) : std::string();
}

Status SetMeta(Db* db, const char* key, const std::string& value) {
  ASSIGN_OR_RETURN(Stmt q, db->Prepare("INSERT INTO _rm_meta(key, value) VALUES (?, ?) "
                                       "ON CONFLICT(key) DO UPDATE SET value = excluded.value"));
  return q.Bind(1, key).Bind(2, value).Run();
}

Status BindValue(Stmt& s, int i, const ColumnSpec& col, const json& v) {
  RETURN_IF_ERROR(CheckValue(col, v));
  const std::string& t = col.type;
  if (v.is_null()) {
    s.BindNull(i);
  } else if (t == "text" || t == "timestamp") {
    s.Bind(i, v.get_ref<const std::string&>());
  } else if (t == "integer") {
    s.Bind(i, v.get<int64_t>());
  } else if (t == "real") {
    s.Bind(i, v.get<double>());
  } else if (t == "boolean") {
    s.Bind(i, v.get<bool>());
  } else if (t == "json") {
    s.Bind(i, DumpJson(v));
  } else if (t == "bytes") {
    std::string raw;
    Base64Decode(v.get_ref<const std::string&>(), &raw);
    s.BindBlob(i, raw.data(), raw.size());
  }
  return Status::Ok();
}

json ReadValue(const Stmt& s, int i, const std::string& type) {
  if (s.IsNull(i)) return nullptr;
  if (type == "integer") return s.Int(i);
  if (type == "real") return s.Real(i);
  if (type == "boolean") return s.Int(i) != 0;
  if (type == "bytes") return Base64Encode(s.Blob(i));
  if (type == "json") {
    json parsed = json::parse(s.Text(i), nullptr, /*allow_exceptions=*/false);
    return parsed.is_discarded() ? json(s.Text(i)) : parsed;
  }
  return s.Text(i);
}

std::string SelectList(const std::vector<ColumnSpec>& cols) {
  std::string sql = "id";
  for (const auto& c : cols) sql += ", " + Quote(c.name);
  return sql;
}

json ReadRow(const Stmt& s, const std::vector<ColumnSpec>& cols) {
  json row = json::object();
  row["id"] = s.Text(0);
  for (size_t i = 0; i < cols.size(); ++i) {
    row[cols[i].name] = ReadValue(s, static_cast<int>(i + 1), cols[i].type);
  }
  return row;
}

int64_t FileSize(const std::string& path) {
  std::error_code ec;
  auto n = fs::file_size(path, ec);
  return ec ? 0 : static_cast<int64_t>(n);
}

void RemoveDbFiles(const std::string& path) {
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path + suffix, ec);
}

// The database's files and what an interrupted restore of it may have left.
void RemoveDbAndLeftovers(const std::string& path) {
  RemoveDbFiles(path);
  RemoveDbFiles(path + ".restore");
}

// An exclusive lock on the app's lock file (dir/.locks/<app>), across processes, held while
// the object lives: destructive actions that replace or remove the database file take it, so
// their token check and their action are one step for every process.
class AppFileLock {
 public:
  static Result<AppFileLock> Take(const std::string& db_path) {
    fs::path p(db_path);
    fs::path dir = p.parent_path() / ".locks";
    std::error_code ec;
    fs::create_directories(dir, ec);
    std::string lock_path = (dir / p.stem()).string();
    int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return Unavailable("open " + lock_path + ": " + std::strerror(errno));
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno != EINTR) {
        ::close(fd);
        return Unavailable("lock " + lock_path + ": " + std::strerror(errno));
      }
    }
    return AppFileLock(fd);
  }
  AppFileLock(AppFileLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  AppFileLock(const AppFileLock&) = delete;
  ~AppFileLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }

 private:
  explicit AppFileLock(int fd) : fd_(fd) {}
  int fd_;
};

// sqlite::CheckFenceTokenOnly on the database file at `path` (nothing to check when there is
// no file), for actions that replace or remove it: the file that replaces it records the token.
// A file without a -wal file (no connection has opened it since it was made: the placeholder
// that a move's restore replaces) is read as it is on disk; opening it the usual way would
// create its -wal and -shm files only for the action to delete them, and on ext4 each file
// made among many recently deleted ones costs more than the read. Any doubt (an error) reads
// it the usual way. REQUIRES: the AppFileLock.
Status CheckFileToken(const std::string& path, const std::string& app_id, int64_t token) {
  if (token <= 0 || !fs::exists(path)) return Status::Ok();
  if (!fs::exists(path + "-wal")) {
    auto db = Db::OpenImmutable(path);
    Status checked = db.ok() ? sqlite::CheckFenceTokenOnly(db->get(), app_id, token) : db.status();
    if (checked.ok() || checked.code() == StatusCode::kConflict) return checked;
  }
  ASSIGN_OR_RETURN(auto db, Db::Open(path));
  return sqlite::CheckFenceTokenOnly(db.get(), app_id, token);
}

}  // namespace

Result<std::unique_ptr<SqliteDatabase>> SqliteDatabase::Open(const std::string& dir, Rng* rng) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Permanent("cannot create database directory " + dir + ": " + ec.message());
  return std::unique_ptr<SqliteDatabase>(new SqliteDatabase(dir, rng));
}

SqliteDatabase::~SqliteDatabase() = default;

std::string SqliteDatabase::PathFor(const std::string& app_id) const {
  return dir_ + "/" + app_id + ".sqlite3";
}

Result<std::shared_ptr<SqliteDatabase::Conn>> SqliteDatabase::GetConn(const std::string& app_id) {
  std::string path = PathFor(app_id);
  struct stat st {};
  bool exists = ::stat(path.c_str(), &st) == 0;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = conns_.find(app_id);
  if (it != conns_.end()) {
    // A cached connection is only good while the file is the one it opened: another process
    // may have dropped it or restored a new one in its place.
    if (exists && it->second->inode == static_cast<uint64_t>(st.st_ino)) {
      it->second->last_used = ++tick_;
      return it->second;
    }
    conns_.erase(it);  // in-flight users keep their shared_ptr; the next call reopens
  }
  if (!exists) return NotFound("app " + app_id + " has no database in this region");
  auto conn = std::make_shared<Conn>();
  ASSIGN_OR_RETURN(conn->db, Db::Open(path));
  conn->inode = static_cast<uint64_t>(st.st_ino);
  conn->last_used = ++tick_;
  if (conns_.size() >= kMaxOpenConns) {
    // In-flight users keep theirs alive through their shared_ptr; it closes when they finish.
    auto lru = std::min_element(conns_.begin(), conns_.end(), [](const auto& a, const auto& b) {
      return a.second->last_used < b.second->last_used;
    });
    conns_.erase(lru);
  }
  conns_[app_id] = conn;
  return conn;
}

size_t SqliteDatabase::open_connections() {
  std::lock_guard<std::mutex> lock(mu_);
  return conns_.size();
}

void SqliteDatabase::ForgetConn(const std::string& app_id) {
  std::shared_ptr<Conn> conn;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = conns_.find(app_id);
    if (it == conns_.end()) return;
    conn = it->second;
    conns_.erase(it);
  }
  auto drain = LockIdle(*conn);  // waits for the operation in flight
  conn->db.reset();
}

std::unique_lock<std::mutex> SqliteDatabase::LockIdle(Conn& conn) {
  std::unique_lock<std::mutex> lock(conn.mu);
  conn.batch_done.wait(lock, [&] { return !conn.batch_open; });
  return lock;
}

Result<const std::string*> SqliteDatabase::EmptyImage() {
  if (!empty_image_.empty()) return &empty_image_;
  const std::string tmp = ScratchPath(dir_ + "/.empty.sqlite3");
  {
    ASSIGN_OR_RETURN(auto db, Db::Open(tmp));
    Status made = db->Exec(std::string("BEGIN;") + kInternalSchema +
                           "COMMIT; PRAGMA wal_checkpoint(TRUNCATE);");
    if (!made.ok()) {
      db.reset();
      RemoveDbFiles(tmp);
      return made;
    }
  }
  std::ifstream in(tmp, std::ios::binary);
  std::stringstream image;
  image << in.rdbuf();
  RemoveDbFiles(tmp);
  if (!in || image.str().empty()) return Unavailable("cannot read back " + tmp);
  empty_image_ = image.str();
  return &empty_image_;
}

Status SqliteDatabase::Create(const std::string& app_id) {
  const std::string path = PathFor(app_id);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fs::exists(path)) {
      // A copy of an empty database made once per process (WAL mode, the internal schema):
      // one file created and two fsyncs, where SQLite creating it would make and delete a
      // rollback journal to switch to WAL, then a WAL and its shared-memory file, with eight
      // fsyncs. A file another process created meanwhile is kept.
      ASSIGN_OR_RETURN(const std::string* image, EmptyImage());
      return CreateFileOnce(path, *image, 0644);
    }
  }
  return WithConnection(app_id, [](Db* db) { return db->Exec(kInternalSchema); });
}

Status SqliteDatabase::Drop(const std::string& app_id, int64_t token) {
  std::string path = PathFor(app_id);
  ASSIGN_OR_RETURN(AppFileLock file_lock, AppFileLock::Take(path));
  RETURN_IF_ERROR(CheckFileToken(path, app_id, token));
  ForgetConn(app_id);
  RemoveDbAndLeftovers(path);
  return Status::Ok();
}

Result<bool> SqliteDatabase::Exists(const std::string& app_id) {
  return fs::exists(PathFor(app_id));
}

Result<int64_t> SqliteDatabase::SizeBytes(const std::string& app_id) {
  std::string p = PathFor(app_id);
  return FileSize(p) + FileSize(p + "-wal");
}

Status SqliteDatabase::WithConnection(const std::string& app_id,
                                      const std::function<Status(Db*)>& fn) {
  ASSIGN_OR_RETURN(auto conn, GetConn(app_id));
  auto lock = LockIdle(*conn);
  if (!conn->db) return Unavailable("database of " + app_id + " is being replaced");
  return fn(conn->db.get());
}

Status SqliteDatabase::WithWriteTxn(const std::string& app_id,
                                    const std::function<Status(Db*)>& fn) {
  return WithConnection(app_id, [&](Db* db) -> Status {
    ASSIGN_OR_RETURN(sqlite::Txn txn, sqlite::Txn::Begin(db));
    RETURN_IF_ERROR(fn(db));
    return txn.Commit();
  });
}

namespace {
// The most writes one batch takes: under a steady stream of writers a batch still ends.
constexpr int kMaxBatchWrites = 64;
}  // namespace

Status SqliteDatabase::Write(const std::string& app_id, Fenced fenced,
                             const std::function<Status(Db*, std::string*)>& fn) {
  ASSIGN_OR_RETURN(auto conn, GetConn(app_id));
  conn->arriving++;
  std::unique_lock<std::mutex> lock(conn->mu);
  conn->arriving--;
  // (No batch is open on a connection without a database: ForgetConn waits for it to end.)
  if (!conn->db) return Unavailable("database of " + app_id + " is being replaced");
  Db* db = conn->db.get();
  if (!conn->batch_open) {
    RETURN_IF_ERROR(db->Exec("BEGIN IMMEDIATE"));
    conn->batch_open = true;
    conn->batch_size = 0;
    conn->batch_id++;
  }
  const int64_t id = conn->batch_id;
  conn->batch_size++;
  Status s = db->Exec("SAVEPOINT rm_write");
  if (s.ok()) {
    s = WriteInSavepoint(db, app_id, fenced, fn);
    // A failed write undoes its own changes only; the batch goes on.
    if (!s.ok()) (void)db->Exec("ROLLBACK TO rm_write");
    Status released = db->Exec("RELEASE rm_write");
    if (s.ok()) s = released;
  }
  auto finish = [&](const Status& outcome) {
    if (!outcome.ok()) {
      conn->failed[id] = outcome;
      while (conn->failed.size() > 64) conn->failed.erase(conn->failed.begin());
    }
    conn->batch_open = false;
    conn->done_id = id;
    conn->batch_done.notify_all();
  };
  if (sqlite3_get_autocommit(db->raw())) {
    // An error rolled the whole transaction back, the batch's earlier writes with it: they all
    // fail, and the next writer begins a new batch.
    Status lost = Unavailable("the write's transaction was rolled back by an error" +
                              (s.ok() ? std::string() : ": " + s.message()));
    finish(lost);
    return s.ok() ? lost : s;
  }
  // Writers are waiting for the connection: the last of them commits.
  if (conn->arriving.load() > 0 && conn->batch_size < kMaxBatchWrites) {
    conn->batch_done.wait(lock, [&] { return conn->done_id >= id; });
    if (!s.ok()) return s;
    auto failed = conn->failed.find(id);
    return failed == conn->failed.end() ? Status::Ok() : failed->second;
  }
  Status committed = db->Exec("COMMIT");
  if (!committed.ok()) (void)db->Exec("ROLLBACK");
  finish(committed);
  return s.ok() ? committed : s;
}

Status SqliteDatabase::WriteInSavepoint(Db* db, const std::string& app_id, Fenced fenced,
                                        const std::function<Status(Db*, std::string*)>& fn) {
  if (fenced == Fenced::kRespect) {
    ASSIGN_OR_RETURN(std::string f, Meta(db, "fenced"));
    if (f == "1") {
      return Status(StatusCode::kUnavailable, "writes to app " + app_id + " are blocked",
                    "app_migrating");
    }
  }
  ASSIGN_OR_RETURN(std::string capture, Meta(db, "capture"));
  sqlite3_session* session = nullptr;
  if (capture == "1") {
    int rc = sqlite3session_create(db->raw(), "main", &session);
    if (rc != SQLITE_OK) return sqlite::FromCode(rc, db->raw(), "session create");
    sqlite3session_table_filter(session, SessionFilter, nullptr);
    rc = sqlite3session_attach(session, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3session_delete(session);
      return sqlite::FromCode(rc, db->raw(), "session attach");
    }
  }
  std::string ddl;
  Status s = fn(db, &ddl);
  if (s.ok() && session) {
    int n = 0;
    void* data = nullptr;
    int rc = sqlite3session_changeset(session, &n, &data);
    sqlite3session_delete(session);
    session = nullptr;
    if (rc != SQLITE_OK) {
      sqlite3_free(data);
      return sqlite::FromCode(rc, db->raw(), "session changeset");
    }
    // The change record commits in the same transaction as the write it records.
    auto log = [&](const char* kind, const void* p, size_t len) -> Status {
      ASSIGN_OR_RETURN(Stmt ins,
                       db->Prepare("INSERT INTO _rm_changelog(kind, payload) VALUES (?, ?)"));
      return ins.Bind(1, kind).BindBlob(2, p, len).Run();
    };
    if (!ddl.empty()) s = log("ddl", ddl.data(), ddl.size());
    if (s.ok() && n > 0) s = log("changeset", data, static_cast<size_t>(n));
    sqlite3_free(data);
  }
  if (session) sqlite3session_delete(session);
  return s;
}

Status SqliteDatabase::Fence(const std::string& app_id) {
  // Taking the connection and a write transaction drains the writes in flight.
  return Write(app_id, Fenced::kIgnore,
               [](Db* db, std::string*) { return SetMeta(db, "fenced", "1"); });
}

Status SqliteDatabase::Unfence(const std::string& app_id, int64_t token) {
  return Write(app_id, Fenced::kIgnore, [&app_id, token](Db* db, std::string*) -> Status {
    RETURN_IF_ERROR(sqlite::CheckFenceToken(db, app_id, token));
    return SetMeta(db, "fenced", "0");
  });
}

Result<bool> SqliteDatabase::IsFenced(const std::string& app_id) {
  bool fenced = false;
  RETURN_IF_ERROR(WithConnection(app_id, [&](Db* db) -> Status {
    ASSIGN_OR_RETURN(std::string f, Meta(db, "fenced"));
    fenced = f == "1";
    return Status::Ok();
  }));
  return fenced;
}

Status SqliteDatabase::WithWriteFence(const std::string& app_id,
                                      const std::function<Status()>& fn) {
  // The app database's write transaction is the lock that Fence() also takes.
  return Write(app_id, Fenced::kRespect, [&](Db*, std::string*) { return fn(); });
}

Status SqliteDatabase::SetCapture(const std::string& app_id, bool on) {
  return Write(app_id, Fenced::kIgnore, [on](Db* db, std::string*) -> Status {
    if (!on) RETURN_IF_ERROR(db->Exec("DELETE FROM _rm_changelog"));
    return SetMeta(db, "capture", on ? "1" : "0");
  });
}

namespace {

// Empties the WAL of the database `db` is connected to into its file (a TRUNCATE checkpoint,
// which holds the writer lock), waiting at most a moment for a writer or for readers of older
// snapshots; false when it could not. `db` goes back to the default busy timeout.
bool EmptyWal(Db* db) {
  sqlite3_busy_timeout(db->raw(), 100);
  auto q = db->Prepare("PRAGMA wal_checkpoint(TRUNCATE)");
  bool emptied = q.ok() && q->Step().ok() && q->Int(0) == 0;
  sqlite3_busy_timeout(db->raw(), 5000);
  return emptied;
}

// A copy of the snapshot of `src`'s open read transaction made with the backup API: in memory
// (`image`) when small, else in the scratch file `tmp` (no journal, no fsync: it is compressed
// and deleted right after). Progress is reported as the first half of `2 * total`.
Status BackupSnapshot(Db* src, int64_t bytes, int page_size, const std::string& tmp,
                      const ProgressFn& progress,
                      std::unique_ptr<unsigned char, void (*)(void*)>* image, int64_t* raw_bytes) {
  const bool in_memory = bytes <= SqliteDatabase::kInMemoryDumpBytes;
  sqlite3* dst = nullptr;
  int rc = sqlite3_open(in_memory ? ":memory:" : tmp.c_str(), &dst);
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> dst_guard(dst, sqlite3_close);
  if (rc != SQLITE_OK) return sqlite::FromCode(rc, dst, "open dump file");
  if (!in_memory) {
    rc = sqlite3_exec(dst, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF", nullptr, nullptr,
                      nullptr);
    if (rc != SQLITE_OK) return sqlite::FromCode(rc, dst, "set up dump file");
  }
  sqlite3_backup* b = sqlite3_backup_init(dst, "main", src->raw(), "main");
  if (!b) return sqlite::FromCode(sqlite3_errcode(dst), dst, "backup init");
  while (true) {
    rc = sqlite3_backup_step(b, 256);
    int64_t total = int64_t{sqlite3_backup_pagecount(b)} * page_size;
    int64_t done = total - int64_t{sqlite3_backup_remaining(b)} * page_size;
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED) {
      sqlite3_backup_finish(b);
      return sqlite::FromCode(rc, dst, "backup step");
    }
    if (progress) {
      Status s = progress(done, 2 * total);
      if (!s.ok()) {
        sqlite3_backup_finish(b);
        return s;
      }
    }
  }
  rc = sqlite3_backup_finish(b);
  if (rc != SQLITE_OK) return sqlite::FromCode(rc, dst, "backup finish");
  if (in_memory) {
    sqlite3_int64 size = 0;
    image->reset(sqlite3_serialize(dst, "main", &size, 0));
    if (!*image) return Unavailable("no memory for a database dump");
    *raw_bytes = size;
  }
  dst_guard.reset();
  if (!in_memory) *raw_bytes = FileSize(tmp);
  return Status::Ok();
}

}  // namespace

Result<SqliteDatabase::DumpArtifact> SqliteDatabase::Dump(const std::string& app_id,
                                                          const std::string& path,
                                                          const ProgressFn& progress,
                                                          std::vector<TableDigest>* digest) {
  std::string src_path = PathFor(app_id);
  if (!fs::exists(src_path)) return NotFound("app " + app_id + " has no database to dump");
  std::string tmp = path + ".raw";
  RemoveDbFiles(tmp);
  int64_t raw_bytes = 0;
  Result<int64_t> compressed = int64_t{0};
  std::string sha;
  {
    // A separate connection: reads of the app keep going while the dump runs. Its read
    // transaction, open for the whole dump, is the snapshot: writes that commit meanwhile
    // (an unfenced source) neither restart the dump nor show in it.
    ASSIGN_OR_RETURN(auto src, Db::Open(src_path));
    // Not for an online copy (`digest` asked, writes going on): emptying the WAL takes the
    // writer lock, which the app's writers would wait for.
    const bool emptied = !digest && EmptyWal(src.get());
    RETURN_IF_ERROR(src->Exec("BEGIN; SELECT count(*) FROM sqlite_master;"));
    int page_size = 4096;
    int64_t pages = 0;
    if (auto q = src->Prepare("PRAGMA page_size"); q.ok() && q->Step().ok()) {
      page_size = static_cast<int>(q->Int(0));
    }
    if (auto q = src->Prepare("PRAGMA page_count"); q.ok() && q->Step().ok()) pages = q->Int(0);
    const int64_t bytes = pages * page_size;
    // The database file is the snapshot when the WAL was emptied into it before the transaction
    // began and is still empty with it open (no commit came in between): the transaction then
    // reads the file alone, holding SQLite's read lock 0, which no checkpoint can pass, so the
    // file stays as it is until COMMIT. It is compressed as it is read, with no copy made
    // first. Otherwise (a reader of an older snapshot kept the WAL, or a write came in between)
    // the backup API copies the snapshot, and that copy is compressed.
    const bool file_is_snapshot =
        emptied && bytes > 0 && FileSize(src_path + "-wal") == 0 && FileSize(src_path) >= bytes;
    std::unique_ptr<unsigned char, void (*)(void*)> image(nullptr, sqlite3_free);
    if (file_is_snapshot) {
      raw_bytes = bytes;
    } else {
      RETURN_IF_ERROR(
          BackupSnapshot(src.get(), bytes, page_size, tmp, progress, &image, &raw_bytes));
    }
    // The digest of the snapshot (same read transaction) on a second thread while this one
    // compresses: the two passes overlap instead of adding up.
    std::future<Result<std::vector<TableDigest>>> digested;
    if (digest) {
      digested = std::async(std::launch::async, [&src] { return DigestOn(src.get(), {}); });
    }
    // The backup reported the first half of the progress; a dump of the file reports it all.
    const int64_t before = file_is_snapshot ? 0 : raw_bytes;
    const int64_t total = file_is_snapshot ? raw_bytes : 2 * raw_bytes;
    auto report = [&](int64_t n) { return progress ? progress(before + n, total) : Status::Ok(); };
    compressed =
        image ? ZstdCompressBuffer(std::string_view(reinterpret_cast<char*>(image.get()),
                                                    static_cast<size_t>(raw_bytes)),
                                   path, report, &sha)
              : ZstdCompressFile(file_is_snapshot ? src_path : tmp, path, report, &sha, raw_bytes);
    if (digest) {
      auto d = digested.get();
      if (!d.ok()) {
        RemoveDbFiles(tmp);
        return d.status();
      }
      *digest = std::move(*d);
    }
    RETURN_IF_ERROR(src->Exec("COMMIT"));
  }
  RemoveDbFiles(tmp);
  if (!compressed.ok()) return compressed.status();
  // Durable before the step records it: a crash after the record must find it whole.
  RETURN_IF_ERROR(SyncFile(path));
  RETURN_IF_ERROR(SyncDir(fs::path(path).parent_path().string()));
  return DumpArtifact{path, *compressed, raw_bytes, sha};
}

Status SqliteDatabase::Restore(const std::string& app_id, const DumpArtifact& artifact,
                               const ProgressFn& progress, int64_t token) {
  std::string final_path = PathFor(app_id);
  std::string tmp = final_path + ".restore";
  RemoveDbFiles(tmp);
  // The artifact's checksum is computed as it is read, once; nothing is renamed into place
  // unless it matches.
  std::string sha;
  auto n = ZstdDecompressFile(
      artifact.path, tmp,
      [&](int64_t done) { return progress ? progress(done, artifact.raw_bytes) : Status::Ok(); },
      &sha);
  if (n.ok() && sha != artifact.sha256) {
    n = Corruption("dump artifact " + artifact.path + " has checksum " + sha + ", expected " +
                   artifact.sha256);
  } else if (n.ok() && *n != artifact.raw_bytes) {
    n = Corruption("restored " + std::to_string(*n) + " bytes, expected " +
                   std::to_string(artifact.raw_bytes));
  }
  if (!n.ok()) {
    RemoveDbFiles(tmp);
    return n.status();
  }
  {
    // A later migration's worker may have restored (and unfenced) this database while this
    // one was paused: its token, checked under the app's file lock, refuses our rename.
    ASSIGN_OR_RETURN(AppFileLock file_lock, AppFileLock::Take(final_path));
    Status fenced = CheckFileToken(final_path, app_id, token);
    if (!fenced.ok()) {
      RemoveDbFiles(tmp);
      return fenced;
    }
    ForgetConn(app_id);
    std::lock_guard<std::mutex> lock(mu_);
    // The old file's WAL must not be replayed into the new one; the old file itself is
    // replaced by one atomic rename, so a reader sees the old or the new database, never none.
    std::error_code ec;
    for (const char* suffix : {"-wal", "-shm"}) fs::remove(final_path + suffix, ec);
    Status renamed = DurableRename(tmp, final_path);
    if (!renamed.ok()) {
      RemoveDbFiles(tmp);
      return renamed;
    }
  }
  // The copy starts fenced, with no change log of its own, and carries the restorer's token.
  return Write(app_id, Fenced::kIgnore, [&app_id, token](Db* db, std::string*) -> Status {
    RETURN_IF_ERROR(db->Exec(kInternalSchema));
    RETURN_IF_ERROR(sqlite::CheckFenceToken(db, app_id, token));
    RETURN_IF_ERROR(
        db->Exec("DELETE FROM _rm_changelog; DELETE FROM _rm_meta WHERE key = "
                 "'replica_position'; DROP TABLE IF EXISTS _rm_touched"));
    RETURN_IF_ERROR(SetMeta(db, "capture", "0"));
    return SetMeta(db, "fenced", "1");
  });
}

Result<json> SqliteDatabase::ExportCopy(const std::string& app_id, const std::string& stage,
                                        const ProgressFn& progress, const json& at) {
  // Unfenced or not, the snapshot is one read transaction: consistent, with the change log's
  // position inside it (the replicator starts a replica from there).
  std::vector<TableDigest> digest;
  ASSIGN_OR_RETURN(DumpArtifact a,
                   Dump(app_id, stage + ".db.zst", progress, at.is_null() ? nullptr : &digest));
  json state = {{"path", a.path},
                {"size_bytes", a.size_bytes},
                {"raw_bytes", a.raw_bytes},
                {"sha256", a.sha256}};
  if (!at.is_null()) state["digest"] = DigestToJson(digest);
  return state;
}

Status SqliteDatabase::ImportCopy(const std::string& app_id, const std::string&, const json& state,
                                  const ProgressFn& progress, int64_t token) {
  if (!state.is_object() || !state.contains("path")) {
    return Permanent("the copy state of " + app_id + " names no snapshot file");
  }
  DumpArtifact a{state.value("path", ""), state.value("size_bytes", int64_t{0}),
                 state.value("raw_bytes", int64_t{0}), state.value("sha256", "")};
  if (!fs::exists(a.path)) return Corruption("the snapshot " + a.path + " is missing");
  return Restore(app_id, a, progress, token);
}

void SqliteDatabase::AppendValue(std::string* out, sqlite3_value* v) {
  // Only the accessor of the value's own type: another would convert it (parse a text as a
  // number), which costs more than the rest of the digest.
  const int type = sqlite3_value_type(v);
  out->push_back(static_cast<char>('0' + type));
  if (type == SQLITE_INTEGER) {
    int64_t i = sqlite3_value_int64(v);
    out->append(reinterpret_cast<const char*>(&i), sizeof(i));
  } else if (type == SQLITE_FLOAT) {
    double d = sqlite3_value_double(v);
    out->append(reinterpret_cast<const char*>(&d), sizeof(d));
  } else if (type != SQLITE_NULL) {
    const void* p = type == SQLITE_BLOB ? sqlite3_value_blob(v)
                                        : static_cast<const void*>(sqlite3_value_text(v));
    uint64_t len = static_cast<uint64_t>(sqlite3_value_bytes(v));
    out->append(reinterpret_cast<const char*>(&len), sizeof(len));
    if (len) out->append(static_cast<const char*>(p), len);
  }
}

namespace {

// One row's contribution to its table's digest: its values serialised (AppendValue), hashed.
void AddRow(MultisetHash& h, std::string& buf, int argc, sqlite3_value** argv) {
  buf.clear();
  for (int c = 0; c < argc; ++c) SqliteDatabase::AppendValue(&buf, argv[c]);
  h.Add(buf);
}

// The SQL aggregate rm_digest(col, ...): the MultisetHash of the rows as hex. Run inside the
// scan, it reads the values where the scan decoded them, without a call per column through
// the statement API (which costs about as much as the scan itself).
void DigestStep(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  // Zero-filled on the first row: an empty MultisetHash.
  auto* h = static_cast<MultisetHash*>(sqlite3_aggregate_context(ctx, sizeof(MultisetHash)));
  if (!h) return sqlite3_result_error_nomem(ctx);
  thread_local std::string buf;
  AddRow(*h, buf, argc, argv);
}
void DigestFinal(sqlite3_context* ctx) {
  auto* h = static_cast<MultisetHash*>(sqlite3_aggregate_context(ctx, 0));
  std::string hex = h ? h->HexDigest() : MultisetHash().HexDigest();
  sqlite3_result_text(ctx, hex.data(), static_cast<int>(hex.size()), SQLITE_TRANSIENT);
}

// Binds the values of an encoded key (SqliteDatabase::AppendValue, one per key column) to
// parameters 1..n of `q`; false when `key` is not such an encoding of `n` values.
bool BindKey(Stmt& q, std::string_view key, int n) {
  size_t pos = 0;
  for (int i = 1; i <= n; ++i) {
    if (pos >= key.size()) return false;
    int type = key[pos++] - '0';
    auto take = [&](void* dst, size_t len) {
      if (pos + len > key.size()) return false;
      std::memcpy(dst, key.data() + pos, len);
      pos += len;
      return true;
    };
    if (type == SQLITE_INTEGER || type == SQLITE_FLOAT) {
      int64_t v = 0;
      double d = 0;
      if (!take(type == SQLITE_INTEGER ? static_cast<void*>(&v) : static_cast<void*>(&d), 8)) {
        return false;
      }
      type == SQLITE_INTEGER ? q.Bind(i, v) : q.Bind(i, d);
    } else if (type == SQLITE_TEXT || type == SQLITE_BLOB) {
      uint64_t len = 0;
      if (!take(&len, sizeof(len)) || pos + len > key.size()) return false;
      std::string_view v = key.substr(pos, len);
      pos += len;
      type == SQLITE_TEXT ? q.Bind(i, v) : q.BindBlob(i, v.data(), v.size());
    } else if (type == SQLITE_NULL) {
      q.BindNull(i);
    } else {
      return false;
    }
  }
  return pos == key.size();
}

// Adds each row `rows` steps through to `h` and counts it in `d`.
Status HashRows(Stmt& rows, MultisetHash& h, std::string& buf, TableDigest* d) {
  sqlite3_stmt* st = rows.raw();
  std::vector<sqlite3_value*> values;
  while (true) {
    ASSIGN_OR_RETURN(bool row, rows.Step());
    if (!row) break;
    d->rows++;
    values.resize(static_cast<size_t>(sqlite3_column_count(st)));
    for (size_t c = 0; c < values.size(); ++c) {
      values[c] = sqlite3_column_value(st, static_cast<int>(c));
    }
    AddRow(h, buf, static_cast<int>(values.size()), values.data());
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<TableDigest>> SqliteDatabase::DigestOn(Db* db, const DigestScope& scope) {
  int rc = sqlite3_create_function_v2(db->raw(), "rm_digest", -1,
                                      SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY,
                                      nullptr, nullptr, DigestStep, DigestFinal, nullptr);
  if (rc != SQLITE_OK) return sqlite::FromCode(rc, db->raw(), "register rm_digest");
  std::vector<TableDigest> out;
  ASSIGN_OR_RETURN(Stmt tables, db->Prepare("SELECT name FROM sqlite_master WHERE type = "
                                            "'table' ORDER BY name"));
  std::vector<std::string> names;
  while (true) {
    ASSIGN_OR_RETURN(bool row, tables.Step());
    if (!row) break;
    if (!IsLocalTable(tables.Text(0))) names.push_back(tables.Text(0));
  }
  for (const auto& name : names) {
    auto keys = scope.keys.find(name);
    const bool whole = scope.whole || scope.tables.count(name) > 0;
    if (!whole && keys == scope.keys.end()) continue;  // untouched: not in a partial digest
    // The columns, and the primary key's in table order (the order a changeset gives them in).
    ASSIGN_OR_RETURN(Stmt info,
                     db->Prepare("SELECT name, pk FROM pragma_table_info(?) ORDER BY cid"));
    info.Bind(1, name);
    std::string columns, match;
    int key_columns = 0;
    while (true) {
      ASSIGN_OR_RETURN(bool row, info.Step());
      if (!row) break;
      columns += (columns.empty() ? "" : ", ") + Quote(info.Text(0));
      if (info.Int(1) > 0) {
        match += std::string(match.empty() ? "" : " AND ") + Quote(info.Text(0)) + " IS ?";
        ++key_columns;
      }
    }
    MultisetHash h;
    TableDigest d;
    d.table = name;
    d.app_table = name.rfind("_rm_", 0) != 0;  // _rm_columns: the data API's catalog
    std::string buf;
    if (whole) {
      // One scan in storage order (a sequential read of the table's pages: the digest does not
      // depend on the order), hashed inside SQLite by rm_digest.
      ASSIGN_OR_RETURN(Stmt rows, db->Prepare("SELECT count(*), rm_digest(" + columns + ") FROM " +
                                              Quote(name)));
      ASSIGN_OR_RETURN(bool row, rows.Step());
      if (!row) return Corruption("no digest of table " + name);
      d.rows = rows.Int(0);
      d.checksum = rows.Text(1);
      out.push_back(std::move(d));
      continue;
    }
    // The listed rows, one key lookup each, hashed alike.
    if (key_columns == 0) return Corruption("table " + name + " has no key to look rows up by");
    ASSIGN_OR_RETURN(Stmt rows,
                     db->Prepare("SELECT " + columns + " FROM " + Quote(name) + " WHERE " + match));
    for (const std::string& key : keys->second) {
      rows.Reset();
      if (!BindKey(rows, key, key_columns)) {
        return Corruption("a changed key of table " + name + " does not fit its primary key");
      }
      RETURN_IF_ERROR(HashRows(rows, h, buf, &d));
    }
    d.checksum = h.HexDigest();
    out.push_back(std::move(d));
  }
  // The schema: every object but the region-local ones, as created.
  ASSIGN_OR_RETURN(Stmt schema, db->Prepare("SELECT type, name, tbl_name, sql FROM sqlite_master "
                                            "ORDER BY type, name"));
  std::string text;
  while (true) {
    ASSIGN_OR_RETURN(bool row, schema.Step());
    if (!row) break;
    if (IsLocalTable(schema.Text(2))) continue;
    for (int c = 0; c < 4; ++c) text += schema.Text(c) + '\n';
  }
  out.push_back(TableDigest{"schema", 0, Sha256Hex(text), false});
  return out;
}

Result<std::vector<TableDigest>> SqliteDatabase::Digest(const std::string& app_id,
                                                        const DigestScope& scope) {
  std::vector<TableDigest> out;
  RETURN_IF_ERROR(WithConnection(app_id, [&](Db* db) -> Status {
    ASSIGN_OR_RETURN(out, DigestOn(db, scope));
    return Status::Ok();
  }));
  return out;
}

// ---------------------------------------------------------------- app data API

Result<std::vector<ColumnSpec>> SqliteDatabase::Columns(Db* db, const std::string& table) {
  ASSIGN_OR_RETURN(Stmt exists,
                   db->Prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"));
  ASSIGN_OR_RETURN(bool found, exists.Bind(1, table).Step());
  if (!found || !IsValidIdentifier(table)) return NotFound("table " + table + " not found");
  ASSIGN_OR_RETURN(Stmt q, db->Prepare("SELECT column_name, type FROM _rm_columns "
                                       "WHERE table_name = ? ORDER BY ord"));
  q.Bind(1, table);
  std::vector<ColumnSpec> cols;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    cols.push_back(ColumnSpec{q.Text(0), q.Text(1)});
  }
  return cols;
}

Status SqliteDatabase::CreateTable(const std::string& app_id, const TableSpec& spec) {
  RETURN_IF_ERROR(ValidateTableSpec(spec));
  std::string sql = "CREATE TABLE " + Quote(spec.name) + " (id TEXT PRIMARY KEY NOT NULL";
  for (const auto& c : spec.columns) sql += ", " + Quote(c.name) + " " + SqlType(c.type);
  sql += ")";
  return Write(app_id, Fenced::kRespect, [&](Db* db, std::string* ddl) -> Status {
    ASSIGN_OR_RETURN(Stmt exists,
                     db->Prepare("SELECT 1 FROM sqlite_master WHERE name = ? COLLATE NOCASE"));
    ASSIGN_OR_RETURN(bool found, exists.Bind(1, spec.name).Step());
    if (found) return Conflict("table " + spec.name + " exists", "table_exists");
    RETURN_IF_ERROR(db->Exec(sql));
    *ddl = sql;
    for (size_t i = 0; i < spec.columns.size(); ++i) {
      ASSIGN_OR_RETURN(Stmt ins, db->Prepare("INSERT INTO _rm_columns(table_name, column_name, "
                                             "type, ord) VALUES (?, ?, ?, ?)"));
      RETURN_IF_ERROR(ins.BindAll(spec.name, spec.columns[i].name, spec.columns[i].type,
                                  static_cast<int64_t>(i))
                          .Run());
    }
    return Status::Ok();
  });
}

Result<std::vector<TableSpec>> SqliteDatabase::ListTables(const std::string& app_id) {
  std::vector<TableSpec> out;
  RETURN_IF_ERROR(WithConnection(app_id, [&](Db* db) -> Status {
    ASSIGN_OR_RETURN(Stmt q, db->Prepare("SELECT name FROM sqlite_master WHERE type = 'table' "
                                         "ORDER BY name"));
    while (true) {
      ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      std::string name = q.Text(0);
      if (!IsValidIdentifier(name)) continue;
      TableSpec t;
      t.name = name;
      ASSIGN_OR_RETURN(t.columns, Columns(db, name));
      ASSIGN_OR_RETURN(Stmt count, db->Prepare("SELECT COUNT(*) FROM " + Quote(name)));
      ASSIGN_OR_RETURN(bool c, count.Step());
      t.row_count = c ? count.Int(0) : 0;
      out.push_back(std::move(t));
    }
    return Status::Ok();
  }));
  return out;
}

Result<json> SqliteDatabase::InsertRows(const std::string& app_id, const std::string& table,
                                        const json& rows_in) {
  json rows = rows_in.is_array() ? rows_in : json::array({rows_in});
  if (rows.empty()) return InvalidArgument("no rows given");
  json out = json::array();
  RETURN_IF_ERROR(Write(app_id, Fenced::kRespect, [&](Db* db, std::string*) -> Status {
    ASSIGN_OR_RETURN(auto cols, Columns(db, table));
    std::string sql = "INSERT INTO " + Quote(table) + " (" + SelectList(cols) + ") VALUES (?";
    for (size_t i = 0; i < cols.size(); ++i) sql += ", ?";
    sql += ")";
    ASSIGN_OR_RETURN(Stmt ins, db->Prepare(sql));
    for (auto& row : rows) {
      RETURN_IF_ERROR(NormalizeRow(table, cols, *rng_, &row));
      ins.Reset();
      ins.Bind(1, row["id"].get_ref<const std::string&>());
      for (size_t i = 0; i < cols.size(); ++i) {
        RETURN_IF_ERROR(BindValue(ins, static_cast<int>(i + 2), cols[i], row[cols[i].name]));
      }
      Status s = ins.Run();
      if (s.code() == StatusCode::kConflict) {
        return Conflict("row " + row["id"].get<std::string>() + " exists in " + table,
                        "row_exists");
      }
      RETURN_IF_ERROR(s);
      out.push_back(row);
    }
    return Status::Ok();
  }));
  return out;
}

Result<json> SqliteDatabase::GetRow(const std::string& app_id, const std::string& table,
                                    const std::string& id) {
  json out;
  RETURN_IF_ERROR(WithConnection(app_id, [&](Db* db) -> Status {
    ASSIGN_OR_RETURN(auto cols, Columns(db, table));
    ASSIGN_OR_RETURN(Stmt q, db->Prepare("SELECT " + SelectList(cols) + " FROM " + Quote(table) +
                                         " WHERE id = ?"));
    ASSIGN_OR_RETURN(bool row, q.Bind(1, id).Step());
    if (!row) return NotFound("row " + id + " not found in " + table);
    out = ReadRow(q, cols);
    return Status::Ok();
  }));
  return out;
}

Result<json> SqliteDatabase::UpdateRow(const std::string& app_id, const std::string& table,
                                       const std::string& id, const json& patch) {
  if (!patch.is_object()) return InvalidArgument("the body must be a JSON object");
  if (patch.contains("id")) return InvalidArgument("field 'id' cannot be changed");
  RETURN_IF_ERROR(Write(app_id, Fenced::kRespect, [&](Db* db, std::string*) -> Status {
    ASSIGN_OR_RETURN(auto cols, Columns(db, table));
    std::string sql = "UPDATE " + Quote(table) + " SET id = id";
    std::vector<std::pair<const ColumnSpec*, const json*>> sets;
    for (auto it = patch.begin(); it != patch.end(); ++it) {
      const ColumnSpec* c = FindColumn(cols, it.key());
      if (!c) return InvalidArgument("table " + table + " has no column '" + it.key() + "'");
      sql += ", " + Quote(c->name) + " = ?";
      sets.emplace_back(c, &*it);
    }
    sql += " WHERE id = ?";
    ASSIGN_OR_RETURN(Stmt upd, db->Prepare(sql));
    int i = 1;
    for (const auto& [c, v] : sets) RETURN_IF_ERROR(BindValue(upd, i++, *c, *v));
    upd.Bind(i, id);
    RETURN_IF_ERROR(upd.Run());
    if (db->Changes() == 0) return NotFound("row " + id + " not found in " + table);
    return Status::Ok();
  }));
  return GetRow(app_id, table, id);
}

Status SqliteDatabase::DeleteRow(const std::string& app_id, const std::string& table,
                                 const std::string& id) {
  return Write(app_id, Fenced::kRespect, [&](Db* db, std::string*) -> Status {
    RETURN_IF_ERROR(Columns(db, table).status());
    ASSIGN_OR_RETURN(Stmt del, db->Prepare("DELETE FROM " + Quote(table) + " WHERE id = ?"));
    RETURN_IF_ERROR(del.Bind(1, id).Run());
    if (db->Changes() == 0) return NotFound("row " + id + " not found in " + table);
    return Status::Ok();
  });
}

Result<json> SqliteDatabase::ListRows(const std::string& app_id, const std::string& table,
                                      const std::string& after, int limit) {
  json rows = json::array();
  RETURN_IF_ERROR(WithConnection(app_id, [&](Db* db) -> Status {
    ASSIGN_OR_RETURN(auto cols, Columns(db, table));
    ASSIGN_OR_RETURN(Stmt q, db->Prepare("SELECT " + SelectList(cols) + " FROM " + Quote(table) +
                                         " WHERE id > ? ORDER BY id LIMIT ?"));
    q.Bind(1, after).Bind(2, limit);
    while (true) {
      ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      rows.push_back(ReadRow(q, cols));
    }
    return Status::Ok();
  }));
  return rows;
}

}  // namespace regionmove
