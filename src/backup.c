#include "backup.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alert.h"
#include "api.h"
#include "apiparse.h"
#include "config.h"
#include "cron.h"
#include "hmac.h"
#include "http.h"
#include "log.h"
#include "pacing.h"
#include "session.h"
#include "util.h"
#include "wevent.h"

#define PREFIX "switchboard-backup-"
#define SUFFIX ".tar.gz"
#define FILE_MAX (256LL * 1024 * 1024) /* one auth file; more is not auth state */
#define CHUNK 65536
#define NAMES_MAX 100000

enum job_kind { JOB_CREATE, JOB_RESTORE };

/* one archive or restore; the thread writes only the result fields */
struct job {
    enum job_kind kind;
    struct http_req *req;  /* answered when done; NULL for the daily backup */
    char **names;          /* create: the sessions; restore: the wanted ones (NULL: all) */
    size_t nnames;
    char name[64];         /* the archive's file name */
    char path[PATH_MAX];   /* the archive */
    char work[PATH_MAX];   /* create: the temporary file; restore: the extraction dir */
    /* results */
    int ok;
    int refused;           /* restore: the archive is unsafe or damaged (else an I/O failure) */
    char err[300];
    json_t *manifest;      /* create */
    long long size;
    char **found;          /* restore: the sessions in the archive */
    size_t nfound;
};

static const struct config *cfg;
static struct event_base *evbase;
static char *backups_dir;
static struct job *running;
static pthread_t thread;
static int pipefd[2] = {-1, -1};
static struct event *done_ev;
static int daily_at = -1; /* minutes after local midnight, -1: off */

static void start_job(struct job *j);

/* ---- pure parts ---- */

int backup_name_ok(const char *n)
{
    size_t pl = strlen(PREFIX), sl = strlen(SUFFIX);
    if (strlen(n) != pl + 15 + sl || strncmp(n, PREFIX, pl) != 0 || strcmp(n + pl + 15, SUFFIX) != 0)
        return 0;
    for (size_t i = 0; i < 15; i++) {
        char c = n[pl + i];
        if (i == 8 ? c != '-' : (c < '0' || c > '9'))
            return 0;
    }
    return 1;
}

int backup_path_ok(const char *p)
{
    if (strncmp(p, "sessions/worker_", 16) != 0)
        return 0;
    const char *q = p + 16;
    size_t digits = strspn(q, "0123456789");
    if (digits == 0 || digits > 12 || q[digits] != '/' || !q[digits + 1])
        return 0;
    /* every part of the rest: not empty, not "." or "..", no control characters */
    const char *part = q + digits + 1;
    while (*part) {
        size_t l = strcspn(part, "/");
        if (l == 0 || (l == 1 && part[0] == '.') || (l == 2 && part[0] == '.' && part[1] == '.'))
            return 0;
        for (size_t i = 0; i < l; i++)
            if ((unsigned char)part[i] < 0x20 || part[i] == 0x7F || part[i] == '\\')
                return 0;
        part += l;
        if (*part == '/') {
            part++;
            if (!*part)
                return 0;
        }
    }
    return 1;
}

/* ---- the thread: create ---- */

static void fail(struct job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct job *j, const char *fmt, ...)
{
    if (!j->err[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(j->err, sizeof j->err, fmt, ap);
        va_end(ap);
    }
    j->ok = 0;
}

static int add_file(struct job *j, struct archive *a, const char *full, const char *apath, json_t *files)
{
    struct stat st;
    int fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > FILE_MAX) {
        if (fd >= 0)
            close(fd);
        return 0; /* gone meanwhile, or not a plain file: not auth state */
    }
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, apath);
    archive_entry_set_size(e, st.st_size);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0600);
    archive_entry_set_mtime(e, st.st_mtime, 0);
    int rc = archive_write_header(a, e);
    archive_entry_free(e);
    if (rc != ARCHIVE_OK) {
        close(fd);
        fail(j, "cannot write the archive: %s", archive_error_string(a));
        return -1;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    char *buf = xmalloc(CHUNK);
    long long left = st.st_size;
    while (left > 0) {
        ssize_t n = read(fd, buf, left < CHUNK ? (size_t)left : CHUNK);
        if (n <= 0) {
            /* shrank while read: pad to the size the header promised */
            memset(buf, 0, CHUNK);
            n = left < CHUNK ? (ssize_t)left : CHUNK;
        }
        EVP_DigestUpdate(md, buf, (size_t)n);
        if (archive_write_data(a, buf, (size_t)n) < 0) {
            fail(j, "cannot write the archive: %s", archive_error_string(a));
            break;
        }
        left -= n;
    }
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dl = 0;
    EVP_DigestFinal_ex(md, d, &dl);
    EVP_MD_CTX_free(md);
    free(buf);
    close(fd);
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    for (unsigned int i = 0; i < dl; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    json_array_append_new(files, json_pack("{s:s,s:I,s:s}", "path", apath + strlen("sessions/"), "size",
                                           (json_int_t)st.st_size, "sha256", hex));
    return j->ok ? 0 : -1;
}

/* every plain file under dir, as sessions/<rel> */
static int add_tree(struct job *j, struct archive *a, const char *dir, const char *rel, json_t *files, long long *bytes)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return 0;
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(dp)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char full[PATH_MAX], ap[PATH_MAX];
        struct stat st;
        if (snprintf(full, sizeof full, "%s/%s", dir, de->d_name) >= (int)sizeof full ||
            snprintf(ap, sizeof ap, "%s/%s", rel, de->d_name) >= (int)sizeof ap || lstat(full, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            rc = add_tree(j, a, full, ap, files, bytes);
        } else if (S_ISREG(st.st_mode)) {
            rc = add_file(j, a, full, ap, files);
            *bytes += st.st_size;
        }
    }
    closedir(dp);
    return rc;
}

static void create_archive(struct job *j)
{
    const char *sdir = session_sessions_dir();
    struct archive *a = archive_write_new();
    j->ok = 1;
    j->manifest = json_array();
    archive_write_add_filter_gzip(a);
    archive_write_set_format_pax_restricted(a);
    if (archive_write_open_filename(a, j->work) != ARCHIVE_OK) {
        fail(j, "cannot create the archive: %s", archive_error_string(a));
        archive_write_free(a);
        return;
    }
    for (size_t i = 0; i < j->nnames && j->ok; i++) {
        char dir[PATH_MAX], rel[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/%s", sdir, j->names[i]);
        snprintf(rel, sizeof rel, "sessions/%s", j->names[i]);
        json_t *files = json_array();
        long long bytes = 0;
        add_tree(j, a, dir, rel, files, &bytes);
        json_array_append_new(j->manifest, json_pack("{s:s,s:I,s:o}", "sessionId", j->names[i], "bytes",
                                                     (json_int_t)bytes, "files", files));
    }
    if (j->ok) {
        char at[40];
        util_iso8601(util_now_ms(), at, sizeof at);
        json_t *m = json_pack("{s:i,s:s,s:O}", "version", 1, "createdAt", at, "sessions", j->manifest);
        char *text = json_dumps(m, JSON_INDENT(2));
        json_decref(m);
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, "manifest.json");
        archive_entry_set_size(e, (la_int64_t)strlen(text));
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0600);
        archive_entry_set_mtime(e, time(NULL), 0);
        if (archive_write_header(a, e) != ARCHIVE_OK || archive_write_data(a, text, strlen(text)) < 0)
            fail(j, "cannot write the manifest: %s", archive_error_string(a));
        archive_entry_free(e);
        free(text);
    }
    if (archive_write_close(a) != ARCHIVE_OK)
        fail(j, "cannot finish the archive: %s", archive_error_string(a));
    archive_write_free(a);
    if (!j->ok)
        return;
    /* complete and on disk before it gets its real name */
    int fd = open(j->work, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fsync(fd) < 0 || fstat(fd, &st) < 0) {
        fail(j, "cannot sync the archive: %s", strerror(errno));
    } else if (rename(j->work, j->path) < 0) {
        fail(j, "cannot rename the archive: %s", strerror(errno));
    } else {
        j->size = st.st_size;
        int dfd = open(backups_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    if (fd >= 0)
        close(fd);
}

/* ---- the thread: restore ---- */

static int wanted(const struct job *j, const char *session)
{
    if (!j->names)
        return 1;
    for (size_t i = 0; i < j->nnames; i++)
        if (strcmp(j->names[i], session) == 0)
            return 1;
    return 0;
}

static void note_found(struct job *j, const char *session)
{
    for (size_t i = 0; i < j->nfound; i++)
        if (strcmp(j->found[i], session) == 0)
            return;
    j->found = xrealloc(j->found, (j->nfound + 1) * sizeof *j->found);
    j->found[j->nfound++] = xstrdup(session);
}

static int extract_file(struct job *j, struct archive *a, const char *dest)
{
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", dest);
    char *slash = strrchr(parent, '/');
    if (slash)
        *slash = '\0';
    if (util_mkdirs(parent, 0700) < 0) {
        fail(j, "cannot create a directory: %s", strerror(errno));
        return -1;
    }
    int fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        fail(j, "cannot write a restored file: %s", strerror(errno));
        return -1;
    }
    const void *buf;
    size_t len;
    la_int64_t off;
    int rc;
    while ((rc = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
        if (write(fd, buf, len) != (ssize_t)len) {
            fail(j, "cannot write a restored file: %s", strerror(errno));
            close(fd);
            return -1;
        }
    }
    close(fd);
    if (rc != ARCHIVE_EOF) {
        fail(j, "the archive is damaged: %s", archive_error_string(a));
        return -1;
    }
    return 0;
}

static void restore_archive(struct job *j)
{
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    j->ok = 1;
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    if (archive_read_open_filename(a, j->path, CHUNK) != ARCHIVE_OK) {
        j->refused = 1;
        fail(j, "cannot read the archive: %s", archive_error_string(a));
        archive_read_free(a);
        return;
    }
    int rc;
    while (j->ok && (rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        const char *p = archive_entry_pathname(e);
        if (!p || strcmp(p, "manifest.json") == 0)
            continue;
        if (archive_entry_filetype(e) == AE_IFDIR)
            continue;
        if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e) || archive_entry_symlink(e)) {
            j->refused = 1;
            fail(j, "the archive holds a link or a special file (%.200s): refused", p);
            break;
        }
        if (!backup_path_ok(p) || archive_entry_size(e) > FILE_MAX) {
            j->refused = 1;
            fail(j, "the archive holds an unsafe path (%.200s): refused", p);
            break;
        }
        char session[40];
        const char *rest = p + strlen("sessions/");
        size_t sl = strcspn(rest, "/");
        snprintf(session, sizeof session, "%.*s", (int)sl, rest);
        if (!wanted(j, session))
            continue;
        char dest[PATH_MAX];
        if (snprintf(dest, sizeof dest, "%s/%s", j->work, rest) >= (int)sizeof dest) {
            fail(j, "a path is too long (%.200s)", p);
            break;
        }
        if (extract_file(j, a, dest) < 0)
            break;
        note_found(j, session);
    }
    if (j->ok && rc != ARCHIVE_EOF) {
        j->refused = 1;
        fail(j, "the archive is damaged: %s", archive_error_string(a));
    }
    archive_read_free(a);
}

static void *thread_main(void *arg)
{
    struct job *j = arg;
    if (j->kind == JOB_CREATE)
        create_archive(j);
    else
        restore_archive(j);
    char c = 1;
    while (write(pipefd[1], &c, 1) < 0 && errno == EINTR)
        ;
    return NULL;
}

/* ---- the loop's side ---- */

static void free_job(struct job *j)
{
    for (size_t i = 0; i < j->nnames; i++)
        free(j->names[i]);
    free(j->names);
    for (size_t i = 0; i < j->nfound; i++)
        free(j->found[i]);
    free(j->found);
    json_decref(j->manifest);
    free(j);
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* the backups, oldest first (their names sort by time); caller frees */
static char **list_backups(size_t *n)
{
    *n = 0;
    DIR *dp = opendir(backups_dir);
    if (!dp)
        return NULL;
    char **v = NULL;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL && *n < NAMES_MAX) {
        if (!backup_name_ok(de->d_name))
            continue;
        v = xrealloc(v, (*n + 1) * sizeof *v);
        v[(*n)++] = xstrdup(de->d_name);
    }
    closedir(dp);
    if (*n)
        qsort(v, *n, sizeof *v, name_cmp);
    return v;
}

static void free_names(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void rotate(void)
{
    size_t n;
    char **v = list_backups(&n);
    for (size_t i = 0; i + (size_t)cfg->max_backups < n; i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", backups_dir, v[i]);
        if (unlink(p) == 0)
            log_info("backup", "old backup removed name=%s", v[i]);
    }
    free_names(v, n);
}

static void create_done(struct job *j)
{
    if (!j->ok) {
        unlink(j->work);
        log_error("backup", "backup failed name=%s error=\"%s\"", j->name, j->err);
        char text[400];
        snprintf(text, sizeof text, "backup %s failed: %s", j->name, j->err);
        alert_raise(1, ALERT_BACKUP_FAILED, "backup", text);
        if (j->req)
            http_reply_error(j->req, 500, "BACKUP_FAILED", "%s", j->err);
        return;
    }
    log_info("backup", "backup written name=%s sessions=%zu bytes=%lld", j->name, j->nnames, j->size);
    rotate();
    if (j->req)
        http_reply_json(j->req, 201, json_pack("{s:s,s:I,s:O}", "name", j->name, "size", (json_int_t)j->size,
                                               "sessions", j->manifest));
}

static void skip(json_t *skipped, const char *session, const char *reason)
{
    json_array_append_new(skipped, json_pack("{s:s,s:s}", "sessionId", session, "reason", reason));
}

/* restored: every session whose auth dir is the archive's (now, or once its running
 * worker has stopped); restarted: those of them whose worker starts again on it */
static void restore_done(struct job *j)
{
    const char *sdir = session_sessions_dir();
    json_t *restored = json_array(), *restarted = json_array(), *skipped = json_array();
    if (j->ok) {
        for (size_t i = 0; i < j->nfound; i++) {
            struct session *s = session_find(j->found[i]);
            char src[PATH_MAX + 64];
            snprintf(src, sizeof src, "%s/%s", j->work, j->found[i]);
            if (!s) {
                skip(skipped, j->found[i], "no such session any more");
                continue;
            }
            char why[PATH_MAX + 200];
            enum session_restore rc = session_restore_auth(s, src, why, sizeof why);
            if (rc == SESSION_RESTORE_FAILED) {
                skip(skipped, s->name, why);
                continue;
            }
            json_array_append_new(restored, json_string(s->name));
            if (rc == SESSION_RESTORE_RESTARTED)
                json_array_append_new(restarted, json_string(s->name));
        }
        for (size_t i = 0; i < j->nnames; i++) {
            size_t k = 0;
            while (k < j->nfound && strcmp(j->found[k], j->names[i]) != 0)
                k++;
            if (k == j->nfound)
                skip(skipped, j->names[i], "not in the archive");
        }
        log_info("backup", "restore started name=%s sessions=%zu restarted=%zu skipped=%zu", j->name,
                 json_array_size(restored), json_array_size(restarted), json_array_size(skipped));
    }
    util_rmtree_below(sdir, j->work);
    if (!j->ok) {
        log_warn("backup", "restore refused name=%s error=\"%s\"", j->name, j->err);
        json_decref(restored);
        json_decref(restarted);
        json_decref(skipped);
        if (j->req) {
            if (j->refused)
                http_reply_error(j->req, 422, "RESTORE_REFUSED", "%s", j->err);
            else
                http_reply_error(j->req, 500, "RESTORE_FAILED", "%s", j->err);
        }
        return;
    }
    if (j->req)
        http_reply_json(j->req, 200, json_pack("{s:s,s:o,s:o,s:o}", "name", j->name, "restored", restored,
                                               "restarted", restarted, "skipped", skipped));
    else {
        json_decref(restored);
        json_decref(restarted);
        json_decref(skipped);
    }
}

static void job_finished(void)
{
    pthread_join(thread, NULL);
    struct job *j = running;
    running = NULL;
    if (j->kind == JOB_CREATE)
        create_done(j);
    else
        restore_done(j);
    free_job(j);
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
    char buf[16];
    while (read(fd, buf, sizeof buf) > 0)
        ;
    if (running)
        job_finished();
}

static void start_job(struct job *j)
{
    running = j;
    if (pthread_create(&thread, NULL, thread_main, j) != 0) {
        running = NULL;
        snprintf(j->err, sizeof j->err, "cannot start the backup thread");
        j->ok = 0;
        if (j->kind == JOB_CREATE)
            create_done(j);
        else if (j->req)
            http_reply_error(j->req, 500, "BACKUP_FAILED", "%s", j->err);
        free_job(j);
    }
}

struct names {
    char **v;
    size_t n;
};

static void add_session(struct session *s, void *arg)
{
    struct names *ns = arg;
    ns->v = xrealloc(ns->v, (ns->n + 1) * sizeof *ns->v);
    ns->v[ns->n++] = xstrdup(s->name);
}

static struct job *new_create_job(struct http_req *r)
{
    struct job *j = xcalloc(1, sizeof *j);
    j->kind = JOB_CREATE;
    j->req = r;
    struct names ns = {NULL, 0};
    session_each(add_session, &ns);
    j->names = ns.v;
    j->nnames = ns.n;
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(j->name, sizeof j->name, PREFIX "%Y%m%d-%H%M%S" SUFFIX, &tm);
    snprintf(j->path, sizeof j->path, "%s/%s", backups_dir, j->name);
    snprintf(j->work, sizeof j->work, "%s/.tmp-%s", backups_dir, j->name);
    return j;
}

static void create_backup(struct http_req *r)
{
    if (running) {
        http_reply_error(r, 409, "BACKUP_BUSY", "a backup or restore is in progress");
        return;
    }
    struct job *j = new_create_job(r);
    if (access(j->path, F_OK) == 0) {
        free_job(j);
        http_reply_error(r, 409, "BACKUP_BUSY", "a backup was made this second; try again");
        return;
    }
    start_job(j);
}

static void list(struct http_req *r)
{
    size_t n;
    char **v = list_backups(&n);
    json_t *arr = json_array();
    for (size_t i = n; i-- > 0;) {
        char p[PATH_MAX];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", backups_dir, v[i]);
        if (stat(p, &st) == 0)
            json_array_append_new(arr, json_pack("{s:s,s:I,s:o}", "name", v[i], "size", (json_int_t)st.st_size,
                                                 "createdAt", api_time((long long)st.st_mtime * 1000)));
    }
    free_names(v, n);
    http_reply_json(r, 200, json_pack("{s:o,s:i}", "backups", arr, "maxBackups", (int)cfg->max_backups));
}

/* the named backup's path, or -1 after answering 404 */
static int named(struct http_req *r, char *path, size_t len)
{
    const char *name = http_param(r, 0);
    snprintf(path, len, "%s/%s", backups_dir, name);
    if (!backup_name_ok(name) || access(path, R_OK) < 0) {
        http_reply_error(r, 404, "BACKUP_NOT_FOUND", "no backup %.80s", name);
        return -1;
    }
    return 0;
}

static void download(struct http_req *r)
{
    char path[PATH_MAX];
    if (named(r, path, sizeof path) < 0)
        return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        if (fd >= 0)
            close(fd);
        http_reply_error(r, 404, "BACKUP_NOT_FOUND", "no backup %.80s", http_param(r, 0));
        return;
    }
    char disp[160];
    snprintf(disp, sizeof disp, "attachment; filename=\"%s\"", http_param(r, 0));
    http_set_header(r, "Content-Disposition", disp);
    http_reply_file(r, fd, (size_t)st.st_size, "application/gzip");
}

static void restore(struct http_req *r)
{
    char path[PATH_MAX];
    if (named(r, path, sizeof path) < 0)
        return;
    if (running) {
        http_reply_error(r, 409, "BACKUP_BUSY", "a backup or restore is in progress");
        return;
    }
    size_t len;
    http_body(r, &len);
    json_t *body = len ? http_json_object(r) : json_object();
    if (!body)
        return;
    static const char *const keys[] = {"sessions", NULL};
    char err[200];
    json_t *want = json_object_get(body, "sessions");
    if (!apiparse_only_keys(body, keys, err, sizeof err) || (want && !json_is_array(want))) {
        json_decref(body);
        http_reply_error(r, 400, "INVALID_REQUEST", "the body may hold sessions: a list of session ids");
        return;
    }
    struct job *j = xcalloc(1, sizeof *j);
    j->kind = JOB_RESTORE;
    j->req = r;
    snprintf(j->name, sizeof j->name, "%s", http_param(r, 0));
    snprintf(j->path, sizeof j->path, "%s", path);
    if (want) {
        size_t i;
        json_t *v;
        j->names = xcalloc(json_array_size(want) + 1, sizeof *j->names);
        json_array_foreach(want, i, v) {
            int64_t n;
            if (!json_is_string(v) || wevent_session_num(json_string_value(v), &n) < 0) {
                json_decref(body);
                free_job(j);
                http_reply_error(r, 400, "INVALID_REQUEST", "sessions[%zu] must look like worker_7", i);
                return;
            }
            j->names[j->nnames++] = xstrdup(json_string_value(v));
        }
    }
    json_decref(body);
    char hex[17];
    hmac_random_hex(hex, 8);
    snprintf(j->work, sizeof j->work, "%s/.restore-%s", session_sessions_dir(), hex);
    start_job(j);
}

static const struct http_route routes[] = {
    {"POST", "/api/backups", AUTH_ADMIN, create_backup},
    {"GET", "/api/backups", AUTH_ADMIN, list},
    {"GET", "/api/backups/{name}", AUTH_ADMIN, download},
    {"POST", "/api/backups/{name}/restore", AUTH_ADMIN, restore},
    {NULL, NULL, 0, NULL},
};

void backup_register(void) { http_add_routes(routes); }

/* ---- the daily backup ---- */

static void daily_job(void)
{
    if (running) {
        log_warn("backup", "the daily backup is skipped: a backup or restore is in progress");
    } else {
        struct job *j = new_create_job(NULL);
        log_info("backup", "daily backup name=%s", j->name);
        start_job(j);
    }
}

/* what a crash in the middle of a backup (.tmp-*), of a restore's extraction or of the
 * session module's discarding of a directory (.restore-*) left behind; restored files
 * that wait for their session (<name>.restore) are the session module's */
static void remove_leftovers(const char *dir, const char *prefix)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return;
    struct dirent *de;
    size_t pl = strlen(prefix);
    while ((de = readdir(dp)) != NULL) {
        if (strncmp(de->d_name, prefix, pl) != 0)
            continue;
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (util_rmtree_below(dir, p) == 0 || unlink(p) == 0)
            log_info("backup", "removed a leftover of an interrupted job path=%s", de->d_name);
    }
    closedir(dp);
}

int backup_init(struct event_base *base, const struct config *c, char *err, size_t errlen)
{
    evbase = base;
    cfg = c;
    backups_dir = c->backups_dir[0] ? xstrdup(c->backups_dir) : xasprintf("%s/backups", c->data_dir);
    if (util_mkdirs(backups_dir, 0700) < 0) {
        snprintf(err, errlen, "backup: cannot create BACKUPS_DIR %s: %s", backups_dir, strerror(errno));
        return -1;
    }
    remove_leftovers(backups_dir, ".tmp-");
    remove_leftovers(session_sessions_dir(), ".restore-");
    if (pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) < 0) {
        snprintf(err, errlen, "backup: cannot create a pipe: %s", strerror(errno));
        return -1;
    }
    done_ev = event_new(base, pipefd[0], EV_READ | EV_PERSIST, done_cb, NULL);
    event_add(done_ev, NULL);
    if (c->backup_at[0]) {
        struct pacing_profile p;
        char both[40];
        snprintf(both, sizeof both, "%s-%s", c->backup_at, c->backup_at);
        if (pacing_profile_parse_hours(both, &p, err, errlen) == 0) /* checked by config_validate */
            daily_at = p.open_min;
    }
    if (daily_at >= 0)
        cron_daily("backup.daily", daily_at, daily_job);
    return 0;
}

void backup_shutdown(void)
{
    if (running)
        job_finished(); /* waits for the thread; answers its request */
    if (done_ev)
        event_free(done_ev);
    done_ev = NULL;
    for (int i = 0; i < 2; i++)
        if (pipefd[i] >= 0)
            close(pipefd[i]);
    pipefd[0] = pipefd[1] = -1;
    free(backups_dir);
    backups_dir = NULL;
}
