/* runner: what the backends share. The worker log cap lives here so that every way a
 * worker's output reaches its log file (a child's stdout, a container's last output)
 * is held to the same WORKER_LOG_MAX_BYTES. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "runner.h"

void runner_log_cap(const char *path, long max)
{
    struct stat st;
    if (stat(path, &st) < 0 || st.st_size <= max)
        return;
    /* keep the newest part as .1 and start the live file again; the worker's
     * O_APPEND writes then land at the new end */
    char old[4096];
    snprintf(old, sizeof old, "%s.1", path);
    int in = open(path, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return;
    off_t from = st.st_size > max ? st.st_size - max : 0;
    int outfd = open(old, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (outfd >= 0) {
        /* exactly the newest max bytes measured: the worker may write on meanwhile */
        char buf[65536];
        while (from < st.st_size) {
            size_t want = (size_t)(st.st_size - from) < sizeof buf ? (size_t)(st.st_size - from) : sizeof buf;
            ssize_t n = pread(in, buf, want, from);
            if (n <= 0 || write(outfd, buf, (size_t)n) != n)
                break;
            from += n;
        }
        close(outfd);
    }
    close(in);
    if (truncate(path, 0) < 0)
        log_warn("runner", "cannot truncate worker log %s", path);
}
