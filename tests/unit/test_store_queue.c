/* Unit tests of the store (a real SQLite store in a temp file): the queue order
 * (store_message_head: the oldest message that may go; a retry whose back-off is over
 * keeps its place in the order of acceptance; a retry still held back holds back only
 * itself), and after-commit callbacks (what a callback queues after writing waits for
 * its own batch's commit). */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model.h"
#include "store.h"
#include "tap.h"

#define NOW 1800000000000LL

static struct message msgs[6];

static void add(int i, int64_t session_id)
{
    struct message *m = &msgs[i];
    memset(m, 0, sizeof *m);
    snprintf(m->public_id, sizeof m->public_id, "msg_test%d", i);
    m->tenant_id = 1;
    m->session_id = session_id;
    snprintf(m->to, sizeof m->to, "97250000000%u", (unsigned)i % 10);
    snprintf(m->text, sizeof m->text, "text %d", i);
    m->status = MS_QUEUED;
    m->created_at = NOW - 100000 + i;
    m->expires_at = NOW + 86400000;
    CHECK_EQ_INT(store_message_insert(m), STORE_OK, "insert message %d", i);
}

/* message i: a retry that may go from not_before (0: never tried), or finished */
static void set(int i, enum msg_status st, int64_t not_before)
{
    msgs[i].status = st;
    msgs[i].not_before = not_before;
    CHECK_EQ_INT(store_message_save(&msgs[i]), STORE_OK, "save message %d", i);
}

/* the head of session 1 at now is message want (-1: none) */
static void head_is(int64_t now, int want, const char *what)
{
    static struct message h;
    int rc = store_message_head(1, now, &h);
    if (want < 0) {
        CHECK_EQ_INT(rc, STORE_NOTFOUND, "%s: no head", what);
        return;
    }
    CHECK_EQ_INT(rc, STORE_OK, "%s: a head", what);
    CHECK_EQ_STR(rc == STORE_OK ? h.public_id : "", msgs[want].public_id, "%s", what);
}

/* after-commit: a callback of batch 1 writes (opening batch 2) and queues another */
static int second_ran, second_saw_batch;

static void second(void *arg, int ok)
{
    second_ran++;
    second_saw_batch = store_in_batch();
}

static void first(void *arg, int ok)
{
    set(5, MS_SENT, 0); /* a write: batch 2 opens */
    store_after_commit(second, NULL);
}

static void test_after_commit(void)
{
    add(5, 3);
    store_after_commit(first, NULL);
    CHECK_EQ_INT(store_flush(), 0, "batch 1 commits");
    CHECK(store_in_batch(), "the callback's write opened batch 2");
    CHECK_EQ_INT(second_ran, 0, "what it queued waits for batch 2's commit");
    CHECK_EQ_INT(store_flush(), 0, "batch 2 commits");
    CHECK_EQ_INT(second_ran, 1, "then it runs, once");
    CHECK_EQ_INT(second_saw_batch, 0, "with its batch committed");
}

int main(void)
{
    char dir[] = "/tmp/sb-queue-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "temp dir");
    char path[64];
    snprintf(path, sizeof path, "%s/store.db", dir);
    struct event_base *base = event_base_new();
    event_base_priority_init(base, 3);
    char err[256] = "";
    if (store_open(base, path, 0, err, sizeof err) < 0) {
        CHECK(0, "store_open: %s", err);
        return TAP_DONE();
    }

    head_is(NOW, -1, "an empty queue");
    for (int i = 0; i < 4; i++)
        add(i, 1);
    add(4, 2); /* another session's message is never this session's head */
    head_is(NOW, 0, "the oldest first");

    /* 0 failed and waits 60 s: the next one goes meanwhile, and 0 goes first once due,
     * ahead of the messages accepted after it */
    set(0, MS_QUEUED, NOW + 60000);
    head_is(NOW, 1, "a held retry lets the next one go");
    head_is(NOW + 59999, 1, "still held a ms before its time");
    head_is(NOW + 60000, 0, "a due retry keeps its place in the order of acceptance");

    /* a due retry younger than the oldest untried message waits its turn */
    set(0, MS_SENT, 0);
    set(2, MS_QUEUED, NOW + 1000);
    head_is(NOW + 5000, 1, "an older untried message before a younger due retry");
    set(1, MS_SENT, 0);
    head_is(NOW + 5000, 2, "then the due retry, before the younger untried one");

    /* only retries left, none due: the one that may go first, whatever its id */
    set(3, MS_QUEUED, NOW + 2000);
    set(2, MS_QUEUED, NOW + 9000);
    head_is(NOW, 3, "of two held retries the one due first");
    set(3, MS_QUEUED, NOW + 9000);
    head_is(NOW, 2, "held retries due at the same time: the older");
    set(2, MS_CANCELLED, 0);
    set(3, MS_FAILED, 0);
    head_is(NOW, -1, "nothing queued");
    CHECK_EQ_INT(store_flush(), 0, "the batch commits");
    test_after_commit();

    store_close();
    event_base_free(base);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK_EQ_INT(system(cmd), 0, "temp dir removed");
    return TAP_DONE();
}
