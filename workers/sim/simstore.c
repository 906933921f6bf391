#include "simstore.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim.h"
#include "util.h"

#define SIMSTORE_CREDS_MAX 4096 /* a valid creds file is well under 100 bytes */

static uint64_t simstore_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/* Slot holding id, or the empty slot where it would go. */
static size_t simstore_slot(char *const *slots, size_t cap, const char *id)
{
    size_t i = (size_t)simstore_hash(id) & (cap - 1);
    while (slots[i] && strcmp(slots[i], id) != 0)
        i = (i + 1) & (cap - 1);
    return i;
}

static void simstore_set_grow(struct simstore *st)
{
    size_t ncap = st->cap ? st->cap * 2 : 64;
    char **nslots = xcalloc(ncap, sizeof *nslots);
    for (size_t i = 0; i < st->cap; i++)
        if (st->slots[i])
            nslots[simstore_slot(nslots, ncap, st->slots[i])] = st->slots[i];
    free(st->slots);
    st->slots = nslots;
    st->cap = ncap;
}

/* Remembers id (copied); a repeat is ignored. */
static void simstore_set_add(struct simstore *st, const char *id)
{
    if ((st->count + 1) * 2 > st->cap)
        simstore_set_grow(st);
    size_t i = simstore_slot(st->slots, st->cap, id);
    if (st->slots[i])
        return;
    st->slots[i] = xstrdup(id);
    st->count++;
}

int simstore_id_valid(const char *id, size_t len)
{
    if (len == 0 || len > SIMSTORE_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

int simstore_sent_has(const struct simstore *st, const char *id)
{
    if (!st->cap)
        return 0;
    return st->slots[simstore_slot(st->slots, st->cap, id)] != NULL;
}

/* A rename or unlink is durable only once the directory itself is synced. */
static int simstore_sync_dir(const struct simstore *st)
{
    int fd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int simstore_write_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads sent.log into the set. A last line without its newline is a write
 * that crashed before fsync returned, so it was never acknowledged: cut it
 * off, or the next append would glue two ids together. */
static int simstore_load_sent(struct simstore *st)
{
    int fd = open(st->sentlog_path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;

    char buf[4096];
    char line[SIMSTORE_ID_MAX + 1];
    size_t ll = 0;
    int toolong = 0;
    off_t pos = 0, good_end = 0;
    unsigned long skipped = 0;
    int rc = -1;

    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto out;
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            char c = buf[i];
            pos++;
            if (c != '\n') {
                if (ll < SIMSTORE_ID_MAX)
                    line[ll++] = c;
                else
                    toolong = 1;
                continue;
            }
            good_end = pos;
            line[ll] = '\0';
            if (!toolong && simstore_id_valid(line, ll))
                simstore_set_add(st, line);
            else
                skipped++;
            ll = 0;
            toolong = 0;
        }
    }
    if (pos != good_end) {
        sim_log("warn", "sent.log ends with a torn line, cutting it bytes=%lld",
                (long long)(pos - good_end));
        if (ftruncate(fd, good_end) < 0 || fsync(fd) < 0)
            goto out;
    }
    if (skipped)
        sim_log("warn", "sent.log has unusable lines skipped=%lu", skipped);
    rc = 0;
out:
    close(fd);
    return rc;
}

int simstore_open(struct simstore *st, const char *dir)
{
    memset(st, 0, sizeof *st);
    st->sent_fd = -1;
    if (util_mkdirs(dir, 0700) < 0) {
        sim_log("error", "cannot create AUTH_DIR errno=%d", errno);
        return -1;
    }
    st->dir = xstrdup(dir);
    st->creds_path = xasprintf("%s/sim-creds.json", dir);
    st->sentlog_path = xasprintf("%s/sent.log", dir);
    if (simstore_load_sent(st) < 0) {
        sim_log("error", "cannot read sent.log errno=%d", errno);
        return -1;
    }
    st->sent_fd = open(st->sentlog_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (st->sent_fd < 0) {
        sim_log("error", "cannot open sent.log errno=%d", errno);
        return -1;
    }
    /* a freshly created sent.log must survive a crash as an entry too */
    if (simstore_sync_dir(st) < 0) {
        sim_log("error", "cannot sync AUTH_DIR errno=%d", errno);
        return -1;
    }
    return 0;
}

void simstore_close(struct simstore *st)
{
    if (st->sent_fd >= 0)
        close(st->sent_fd);
    for (size_t i = 0; i < st->cap; i++)
        free(st->slots[i]);
    free(st->slots);
    free(st->dir);
    free(st->creds_path);
    free(st->sentlog_path);
    memset(st, 0, sizeof *st);
    st->sent_fd = -1;
}

int simstore_sent_add(struct simstore *st, const char *id)
{
    size_t len = strlen(id);
    if (!simstore_id_valid(id, len) || st->sent_fd < 0)
        return -1;
    char line[SIMSTORE_ID_MAX + 1];
    memcpy(line, id, len);
    line[len] = '\n';
    /* one write() per line: with O_APPEND the line lands whole or, after a
     * crash, as a torn tail that the next start cuts off */
    if (simstore_write_all(st->sent_fd, line, len + 1) < 0 || fsync(st->sent_fd) < 0) {
        sim_log("error", "cannot append to sent.log errno=%d", errno);
        return -1;
    }
    simstore_set_add(st, id);
    return 0;
}

int simstore_creds_load(struct simstore *st, char *phone, size_t outlen, int64_t *linked_at_ms)
{
    size_t len = 0;
    json_t *root = NULL;
    int rc = -1;
    char *text = util_read_file(st->creds_path, SIMSTORE_CREDS_MAX, &len);
    if (!text) {
        if (errno == ENOENT)
            return 0;
        sim_log("warn", "cannot read sim-creds.json errno=%d", errno);
        return -1;
    }
    if (len >= SIMSTORE_CREDS_MAX)
        goto bad;
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(root))
        goto bad;
    json_t *jp = json_object_get(root, "phoneNumber");
    json_t *jt = json_object_get(root, "linkedAt");
    if (!json_is_string(jp) || !json_is_integer(jt) || json_integer_value(jt) < 0)
        goto bad;
    if (strlen(json_string_value(jp)) != json_string_length(jp) ||
        util_phone_normalize(json_string_value(jp), phone, outlen) < 0)
        goto bad;
    *linked_at_ms = (int64_t)json_integer_value(jt);
    rc = 1;
    goto out;
bad:
    sim_log("warn", "sim-creds.json is not valid, treating the sim as not linked");
out:
    json_decref(root);
    free(text);
    return rc;
}

int simstore_creds_save(struct simstore *st, const char *phone, int64_t linked_at_ms)
{
    int rc = -1;
    char *text = NULL;
    json_t *root = json_pack("{s:s, s:I}", "phoneNumber", phone, "linkedAt", (json_int_t)linked_at_ms);
    if (!root)
        goto out;
    text = json_dumps(root, JSON_COMPACT);
    if (!text)
        goto out;
    if (util_write_file_atomic(st->creds_path, text, strlen(text), 0600) < 0 ||
        simstore_sync_dir(st) < 0) {
        sim_log("error", "cannot write sim-creds.json errno=%d", errno);
        goto out;
    }
    rc = 0;
out:
    free(text);
    json_decref(root);
    return rc;
}

int simstore_creds_remove(struct simstore *st)
{
    if (unlink(st->creds_path) < 0) {
        if (errno == ENOENT)
            return 0;
        sim_log("error", "cannot remove sim-creds.json errno=%d", errno);
        return -1;
    }
    if (simstore_sync_dir(st) < 0) {
        sim_log("error", "cannot sync AUTH_DIR errno=%d", errno);
        return -1;
    }
    return 0;
}
