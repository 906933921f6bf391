/* runner-process: each worker is a child process in its own process group, with the
 * SPEC §5 environment and nothing else of the daemon's (the master secret and the API
 * key stay here). Children are reaped on SIGCHLD; workers left by a killed daemon are
 * found through /proc by their SWITCHBOARD_INSTANCE mark and watched with a pidfd. */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "ports.h"
#include "runner.h"
#include "util.h"

#define MAX_ARGS 32

struct proc {
    int pid;
    int port;                /* its WORKER_LISTEN port */
    char session[SESSION_NAME_MAX];
    char *log_path;
    int pidfd;               /* adopted, not our child: -1 for children */
    struct event *pidfd_ev;
    struct event *kill_ev;   /* SIGKILL after the grace period */
    struct proc *next;
    struct runner_process *rp;
};

struct runner_process {
    struct runner base;
    struct event_base *evbase;
    char *argv_store;
    char *argv[MAX_ARGS + 1];
    char *instance_id;
    long log_max;
    struct ports ports;
    runner_exit_cb cb;
    void *cb_arg;
    struct event *sigchld_ev;
    struct proc *procs;
    int nprocs;
};

static struct proc *find_pid(struct runner_process *rp, int pid)
{
    for (struct proc *p = rp->procs; p; p = p->next)
        if (p->pid == pid)
            return p;
    return NULL;
}

static void proc_remove(struct runner_process *rp, struct proc *x)
{
    for (struct proc **pp = &rp->procs; *pp; pp = &(*pp)->next) {
        if (*pp == x) {
            *pp = x->next;
            break;
        }
    }
    rp->nprocs--;
    ports_mark(&rp->ports, x->port, 0);
    if (x->pidfd_ev)
        event_free(x->pidfd_ev);
    if (x->pidfd >= 0)
        close(x->pidfd);
    if (x->kill_ev)
        event_free(x->kill_ev);
    free(x->log_path);
    free(x);
}

static void report_exit(struct runner_process *rp, struct proc *x, int code, int signo)
{
    char session[SESSION_NAME_MAX];
    memcpy(session, x->session, sizeof session);
    int pid = x->pid;
    proc_remove(rp, x);
    log_info("runner", "worker exited session=%s pid=%d code=%d signal=%d", session, pid, code, signo);
    rp->cb(session, code, signo, NULL, rp->cb_arg);
}

static void sigchld_cb(evutil_socket_t sig, short what, void *arg)
{
    struct runner_process *rp = arg;
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            break;
        struct proc *x = find_pid(rp, pid);
        if (!x)
            continue;
        if (WIFEXITED(status))
            report_exit(rp, x, WEXITSTATUS(status), 0);
        else if (WIFSIGNALED(status))
            report_exit(rp, x, -1, WTERMSIG(status));
    }
}

static void pidfd_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proc *x = arg;
    /* not our child: the exit status is not ours to read */
    report_exit(x->rp, x, -1, 0);
}

static void kill_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proc *x = arg;
    log_warn("runner", "worker did not stop in time, killing session=%s pid=%d", x->session, x->pid);
    kill(-x->pid, SIGKILL);
    kill(x->pid, SIGKILL);
}

/* process start time in clock ticks since boot (field 22 of /proc/pid/stat) */
static int64_t proc_starttime(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    char *buf = util_read_file(path, 4096, NULL);
    if (!buf)
        return 0;
    int64_t v = 0;
    char *p = strrchr(buf, ')');
    if (p) {
        /* after ")": field 3 is state; starttime is field 22 */
        int field = 2;
        for (char *q = p + 1; *q; q++) {
            if (*q == ' ') {
                field++;
                if (field == 22) {
                    v = strtoll(q + 1, NULL, 10);
                    break;
                }
            }
        }
    }
    free(buf);
    return v;
}

static int rp_start(struct runner *rn, const struct worker_spec *s, struct worker_state *out,
                    char *err, size_t errlen)
{
    struct runner_process *rp = rn->impl;
    int port = ports_take(&rp->ports);
    if (port < 0) {
        snprintf(err, errlen, "no free port in %d..%d on 127.0.0.1", rp->ports.min, rp->ports.max);
        return -1;
    }
    char listen[ADDR_MAX];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    /* the whole environment is built before fork: nothing allocates in the child */
    char *env[16];
    int ne = 0;
    const char *path = getenv("PATH");
    const char *home = getenv("HOME");
    const char *tz = getenv("TZ");
    env[ne++] = xasprintf("PATH=%s", path ? path : "/usr/local/bin:/usr/bin:/bin");
    if (home)
        env[ne++] = xasprintf("HOME=%s", home);
    if (tz)
        env[ne++] = xasprintf("TZ=%s", tz);
    env[ne++] = xasprintf("SESSION_ID=%s", s->session);
    env[ne++] = xasprintf("PROXY_URL=%s", s->proxy_url);
    env[ne++] = xasprintf("WEBHOOK_URL=%s", s->webhook_url);
    env[ne++] = xasprintf("WEBHOOK_SECRET=%s", s->worker_key);
    env[ne++] = xasprintf("AUTH_DIR=%s", s->auth_dir);
    env[ne++] = xasprintf("WORKER_LISTEN=%s", listen);
    env[ne++] = xasprintf("LOGIN_METHOD=%s", s->login_method);
    env[ne++] = xasprintf("PAIRING_PHONE=%s", s->pairing_phone);
    env[ne++] = xasprintf("SWITCHBOARD_INSTANCE=%s", rp->instance_id);
    env[ne] = NULL;

    int rc = -1;
    int logfd = open(s->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (logfd < 0) {
        snprintf(err, errlen, "cannot open the worker log %s: %s", s->log_path, strerror(errno));
        goto out;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork failed: %s", strerror(errno));
        close(logfd);
        goto out;
    }
    if (pid == 0) {
        setsid();
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        syscall(SYS_close_range, 3U, ~0U, 0U);
        execvpe(rp->argv[0], rp->argv, env);
        dprintf(2, "switchboard: cannot run worker command %s: %s\n", rp->argv[0], strerror(errno));
        _exit(127);
    }
    close(logfd);
    struct proc *x = xcalloc(1, sizeof *x);
    x->pid = pid;
    x->port = port;
    x->pidfd = -1;
    x->rp = rp;
    snprintf(x->session, sizeof x->session, "%s", s->session);
    x->log_path = xstrdup(s->log_path);
    x->next = rp->procs;
    rp->procs = x;
    rp->nprocs++;
    memset(out, 0, sizeof *out);
    snprintf(out->backend, sizeof out->backend, "process");
    out->pid = pid;
    out->ident = proc_starttime(pid);
    snprintf(out->address, sizeof out->address, "%s", listen);
    log_info("runner", "worker started session=%s pid=%d listen=%s", s->session, pid, listen);
    rc = 0;
out:
    if (rc < 0)
        ports_mark(&rp->ports, port, 0); /* no worker holds it */
    for (int i = 0; i < ne; i++)
        free(env[i]);
    return rc;
}

static int rp_stop(struct runner *rn, const char *session, const struct worker_state *w, long grace_ms)
{
    struct runner_process *rp = rn->impl;
    struct proc *x = find_pid(rp, w->pid);
    if (!x || strcmp(x->session, session) != 0)
        return -1;
    kill(-x->pid, SIGTERM);
    kill(x->pid, SIGTERM);
    if (!x->kill_ev) {
        x->kill_ev = evtimer_new(rp->evbase, kill_cb, x);
        struct timeval tv = {grace_ms / 1000, (grace_ms % 1000) * 1000};
        evtimer_add(x->kill_ev, &tv);
    }
    return 0;
}

static int rp_inspect(struct runner *rn, const struct worker_state *w)
{
    if (w->pid <= 0)
        return 0;
    if (kill(w->pid, 0) < 0 && errno == ESRCH)
        return 0;
    return w->ident == 0 || proc_starttime(w->pid) == w->ident;
}

/* the value of NAME in /proc/pid/environ, copied into out; 0 or -1 */
static int proc_env(int pid, const char *name, char *out, size_t outlen)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/environ", pid);
    size_t len = 0;
    char *buf = util_read_file(path, 64 * 1024, &len);
    if (!buf)
        return -1;
    size_t nl = strlen(name);
    int rc = -1;
    for (size_t i = 0; i < len;) {
        const char *e = buf + i;
        size_t el = strnlen(e, len - i);
        if (el > nl && strncmp(e, name, nl) == 0 && e[nl] == '=') {
            snprintf(out, outlen, "%s", e + nl + 1);
            rc = 0;
            break;
        }
        i += el + 1;
    }
    free(buf);
    return rc;
}

static int rp_scan(struct runner *rn, struct runner_found *out, int max)
{
    struct runner_process *rp = rn->impl;
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    char val[128];
    while ((de = readdir(d)) && n < max) {
        long pid;
        if (util_parse_long(de->d_name, 1, 1L << 30, &pid) < 0 || pid == getpid())
            continue;
        if (proc_env((int)pid, "SWITCHBOARD_INSTANCE", val, sizeof val) < 0 ||
            strcmp(val, rp->instance_id) != 0)
            continue;
        /* only the group leader: a worker's own children share its environment */
        if (getpgid((pid_t)pid) != (pid_t)pid)
            continue;
        struct runner_found *f = &out[n];
        memset(f, 0, sizeof *f);
        if (proc_env((int)pid, "SESSION_ID", f->session, sizeof f->session) < 0)
            continue;
        snprintf(f->w.backend, sizeof f->w.backend, "process");
        f->w.pid = (int)pid;
        f->w.ident = proc_starttime((int)pid);
        if (proc_env((int)pid, "WORKER_LISTEN", f->w.address, sizeof f->w.address) < 0)
            continue;
        n++;
    }
    closedir(d);
    return n;
}

static int rp_adopt(struct runner *rn, const char *session, const struct worker_state *w,
                    const char *log_path)
{
    struct runner_process *rp = rn->impl;
    int fd = (int)syscall(SYS_pidfd_open, w->pid, 0);
    if (fd < 0)
        return -1;
    struct proc *x = xcalloc(1, sizeof *x);
    x->pid = w->pid;
    const char *colon = strrchr(w->address, ':');
    long port = 0;
    if (colon && util_parse_long(colon + 1, 1, 65535, &port) == 0) {
        x->port = (int)port;
        ports_mark(&rp->ports, x->port, 1);
    }
    x->pidfd = fd;
    x->rp = rp;
    snprintf(x->session, sizeof x->session, "%s", session);
    x->log_path = xstrdup(log_path); /* still its stdout: capped like a child's */
    x->pidfd_ev = event_new(rp->evbase, fd, EV_READ, pidfd_cb, x);
    event_add(x->pidfd_ev, NULL);
    x->next = rp->procs;
    rp->procs = x;
    rp->nprocs++;
    log_info("runner", "adopted running worker session=%s pid=%d", session, w->pid);
    return 0;
}

static void rp_kill_found(struct runner *rn, const struct worker_state *w, long grace_ms)
{
    if (!rp_inspect(rn, w))
        return;
    kill(-w->pid, SIGTERM);
    /* bounded wait at start-up only: a stray worker must be gone before its session
     * gets a new one, or two would share one auth directory */
    for (long waited = 0; waited < grace_ms; waited += 20) {
        if (!rp_inspect(rn, w))
            return;
        usleep(20 * 1000);
    }
    kill(-w->pid, SIGKILL);
    for (int i = 0; i < 100 && rp_inspect(rn, w); i++)
        usleep(10 * 1000);
}

static void rp_tick(struct runner *rn)
{
    struct runner_process *rp = rn->impl;
    for (struct proc *p = rp->procs; p; p = p->next)
        if (p->log_path)
            runner_log_cap(p->log_path, rp->log_max);
}

static int rp_count(struct runner *rn) { return ((struct runner_process *)rn->impl)->nprocs; }

static void rp_destroy(struct runner *rn)
{
    struct runner_process *rp = rn->impl;
    while (rp->procs)
        proc_remove(rp, rp->procs);
    if (rp->sigchld_ev)
        event_free(rp->sigchld_ev);
    ports_free(&rp->ports);
    free(rp->argv_store);
    free(rp->instance_id);
    free(rp);
}

struct runner *runner_process_new(struct event_base *base, const struct runner_process_opts *o,
                                  runner_exit_cb cb, void *arg, char *err, size_t errlen)
{
    struct runner_process *rp = xcalloc(1, sizeof *rp);
    rp->evbase = base;
    rp->cb = cb;
    rp->cb_arg = arg;
    rp->log_max = o->log_max_bytes;
    ports_init(&rp->ports, o->port_min, o->port_max);
    rp->instance_id = xstrdup(o->instance_id);
    rp->argv_store = xstrdup(o->command);
    int n = 0;
    for (char *p = rp->argv_store; *p;) {
        while (*p == ' ' || *p == '\t')
            *p++ = '\0';
        if (!*p)
            break;
        if (n == MAX_ARGS) {
            snprintf(err, errlen, "WORKER_COMMAND has more than %d words", MAX_ARGS);
            goto fail;
        }
        rp->argv[n++] = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
    }
    if (n == 0) {
        snprintf(err, errlen, "WORKER_COMMAND is empty");
        goto fail;
    }
    if (strchr(rp->argv[0], '/') && access(rp->argv[0], X_OK) < 0) {
        snprintf(err, errlen, "WORKER_COMMAND: %s is not an executable file", rp->argv[0]);
        goto fail;
    }
    rp->sigchld_ev = evsignal_new(base, SIGCHLD, sigchld_cb, rp);
    event_add(rp->sigchld_ev, NULL);
    rp->base = (struct runner){
        .name = "process",
        .start = rp_start,
        .stop = rp_stop,
        .inspect = rp_inspect,
        .scan = rp_scan,
        .adopt = rp_adopt,
        .kill_found = rp_kill_found,
        .tick = rp_tick,
        .count = rp_count,
        .destroy = rp_destroy,
        .impl = rp,
    };
    return &rp->base;
fail:
    ports_free(&rp->ports);
    free(rp->argv_store);
    free(rp->instance_id);
    free(rp);
    return NULL;
}
