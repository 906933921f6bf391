/* Unit tests for what the runner backends share (src/runner.c): the worker log cap. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner.h"
#include "tap.h"
#include "util.h"

static char logp[128], oldp[136];

static void append(const char *data, size_t n)
{
    int fd = open(logp, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, data, n) != (ssize_t)n)
        CHECK(0, "append to %s", logp);
    if (fd >= 0)
        close(fd);
}

static long size_of(const char *path)
{
    struct stat st;
    return stat(path, &st) < 0 ? -1 : (long)st.st_size;
}

/* "<tag> 0000\n" "<tag> 0001\n" ...: n lines of 10 bytes, each one different */
static void append_lines(char tag, int n)
{
    char line[16];
    for (int i = 0; i < n; i++) {
        snprintf(line, sizeof line, "%c %07d\n", tag, i);
        append(line, 10);
    }
}

static void test_cap(void)
{
    runner_log_cap(logp, 100);
    CHECK_EQ_INT(size_of(logp), -1, "a missing log: nothing is created");
    CHECK_EQ_INT(size_of(oldp), -1, "a missing log: no .1");

    append_lines('a', 10);
    runner_log_cap(logp, 100);
    CHECK_EQ_INT(size_of(logp), 100, "a log of exactly the cap is left alone");
    CHECK_EQ_INT(size_of(oldp), -1, "and not rotated");

    append_lines('b', 25); /* 350 bytes in all */
    runner_log_cap(logp, 100);
    CHECK_EQ_INT(size_of(logp), 0, "an over-long log starts again");
    size_t len = 0;
    char *kept = util_read_file(oldp, 4096, &len);
    CHECK_EQ_INT(len, 100, "its newest 100 bytes are kept as .1");
    CHECK(kept && memcmp(kept, "b 0000015\n", 10) == 0 && memcmp(kept + 90, "b 0000024\n", 10) == 0,
          "the kept part is the newest lines, whole");
    free(kept);

    /* appended and capped again and again (a container's output at each exit): bounded */
    for (int round = 0; round < 20; round++) {
        append_lines((char)('c' + round), 37);
        runner_log_cap(logp, 100);
        CHECK(size_of(logp) <= 100 && size_of(oldp) <= 100, "round %d: live %ld and .1 %ld within the cap",
              round, size_of(logp), size_of(oldp));
    }
    kept = util_read_file(oldp, 4096, &len);
    CHECK(kept && len == 100 && memcmp(kept + 90, "v 0000036\n", 10) == 0, "the .1 holds the last round's end");
    free(kept);
}

int main(void)
{
    char dir[] = "/tmp/sb-runner-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "temp dir");
        return TAP_DONE();
    }
    snprintf(logp, sizeof logp, "%s/worker_1.log", dir);
    snprintf(oldp, sizeof oldp, "%s.1", logp);
    test_cap();
    unlink(logp);
    unlink(oldp);
    rmdir(dir);
    return TAP_DONE();
}
