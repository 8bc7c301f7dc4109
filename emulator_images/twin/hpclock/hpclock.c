/* libhpclock: the twin's device clock, as seen by firmware processes.
 *
 * Why not libfaketime: it scales every wait by a constant rate, so a 20 s
 * network timeout becomes 0.7 ms at 28800x and ordinary firmware gives up
 * before the fakenet answers (docs/device-clock.md).  Here device time runs
 * at the real rate, and the controller in the twin (twinrt/clockd.py) jumps
 * it forward only while every firmware thread is idle: blocked in a timed
 * wait (registered in the slot table below) or in a wait on nothing in
 * flight.  A waiter whose device deadline the jump reaches is woken at once.
 *
 * What this library does:
 *  - clock reads (clock_gettime, gettimeofday, time, timespec_get) add the
 *    shared advance: one clock for every process, never backwards;
 *  - timed waits (nanosleep, clock_nanosleep, usleep, sleep, poll, ppoll,
 *    select, pselect, epoll_wait, epoll_pwait, sem_timedwait, sem_clockwait,
 *    pthread_cond_timedwait, pthread_cond_clockwait) turn their timeout into
 *    a device deadline, register it, and wait in real time for what is left,
 *    re-checking whenever the controller moves the clock;
 *  - a poll-type wait on a TCP socket that awaits an answer (SYN sent, data
 *    unacknowledged, or sent after the last receive) or on a UDP socket is
 *    flagged as a network exchange in flight, which keeps the device busy.
 * Without the clock files (before the firmware starts) every call passes
 * straight through.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "hpclock.h"

#define CLOCK_FILE "/run/honeyphone/hpclock.clock"
#define SLOTS_FILE "/run/honeyphone/hpclock.slots"
#define HP_SIGNAL (SIGRTMAX - 2)
#define NS 1000000000LL
#define SLICE_NS (500LL * 1000000LL)     /* safety net: a lost wake-up costs at most this */
#define COND_SLICE_NS (10LL * 1000000LL) /* condition variables cannot be interrupted */
#define SEM_SLICE_NS (20LL * 1000000LL)

#define HP_F_TCP 1 /* a polled TCP socket awaits its answer */
#define HP_F_UDP 2 /* a polled UDP socket */

#define EXPORT __attribute__((visibility("default")))

static int (*r_clock_gettime)(clockid_t, struct timespec *);
static int (*r_nanosleep)(const struct timespec *, struct timespec *);
static int (*r_clock_nanosleep)(clockid_t, int, const struct timespec *, struct timespec *);
static int (*r_poll)(struct pollfd *, nfds_t, int);
static int (*r_ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
static int (*r_select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
static int (*r_pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *);
static int (*r_epoll_wait)(int, struct epoll_event *, int, int);
static int (*r_epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
static int (*r_sem_timedwait)(sem_t *, const struct timespec *);
static int (*r_sem_clockwait)(sem_t *, clockid_t, const struct timespec *);
static int (*r_cond_timedwait)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
static int (*r_cond_clockwait)(pthread_cond_t *, pthread_mutex_t *, clockid_t, const struct timespec *);

static volatile struct hp_clock *clk;
static struct hp_slots *slots;
static atomic_int state; /* 0: not tried, 1: trying, 2: active, 3: inactive (no clock files) */
static __thread int my_tid;
static __thread volatile sig_atomic_t woken;

static void resolve(void) {
    r_clock_gettime = dlsym(RTLD_NEXT, "clock_gettime");
    r_nanosleep = dlsym(RTLD_NEXT, "nanosleep");
    r_clock_nanosleep = dlsym(RTLD_NEXT, "clock_nanosleep");
    r_poll = dlsym(RTLD_NEXT, "poll");
    r_ppoll = dlsym(RTLD_NEXT, "ppoll");
    r_select = dlsym(RTLD_NEXT, "select");
    r_pselect = dlsym(RTLD_NEXT, "pselect");
    r_epoll_wait = dlsym(RTLD_NEXT, "epoll_wait");
    r_epoll_pwait = dlsym(RTLD_NEXT, "epoll_pwait");
    r_sem_timedwait = dlsym(RTLD_NEXT, "sem_timedwait");
    r_sem_clockwait = dlsym(RTLD_NEXT, "sem_clockwait");
    r_cond_timedwait = dlvsym(RTLD_NEXT, "pthread_cond_timedwait", "GLIBC_2.3.2");
    if (!r_cond_timedwait) r_cond_timedwait = dlsym(RTLD_NEXT, "pthread_cond_timedwait");
    r_cond_clockwait = dlsym(RTLD_NEXT, "pthread_cond_clockwait");
}

static int64_t real_ns(clockid_t id) {
    struct timespec ts;
    if (!r_clock_gettime) resolve();
    if (r_clock_gettime(id, &ts) != 0) {
        /* raw syscall as a last resort */
        syscall(SYS_clock_gettime, id, &ts);
    }
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static void on_wake(int sig) {
    (void)sig;
    woken = 1;
}

static void *map_file(const char *path, size_t len, int prot) {
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, (prot & PROT_WRITE) ? O_RDWR | O_CLOEXEC : O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    void *p = mmap(NULL, len, prot, MAP_SHARED, fd, 0);
    syscall(SYS_close, fd);
    return p == MAP_FAILED ? NULL : p;
}

/* Active once both files exist; tried again on later calls until they do
 * (an adb shell may start before the firmware's clock). */
static int active(void) {
    int s = atomic_load_explicit(&state, memory_order_acquire);
    if (s == 2) return 1;
    if (s == 1) return 0;
    int expect = s;
    if (!atomic_compare_exchange_strong(&state, &expect, 1)) return atomic_load(&state) == 2;
    if (!r_clock_gettime) resolve();
    volatile struct hp_clock *c = map_file(CLOCK_FILE, sizeof(struct hp_clock), PROT_READ);
    struct hp_slots *sl = c ? map_file(SLOTS_FILE, sizeof(struct hp_slots), PROT_READ | PROT_WRITE) : NULL;
    if (!c || !sl || c->magic != HP_MAGIC || c->version != HP_VERSION) {
        if (c) munmap((void *)c, sizeof(struct hp_clock));
        if (sl) munmap(sl, sizeof(struct hp_slots));
        atomic_store(&state, 0); /* not yet: try again next time */
        return 0;
    }
    clk = c;
    slots = sl;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_wake;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(HP_SIGNAL, &sa, NULL);
    atomic_store_explicit(&state, 2, memory_order_release);
    return 1;
}

struct snap {
    int64_t skip, wall, since;
    double rate;
};

static void read_clock(struct snap *s) {
    for (;;) {
        uint32_t a = __atomic_load_n(&clk->seq, __ATOMIC_ACQUIRE);
        if (a & 1) continue;
        s->skip = clk->skip_ns;
        s->wall = clk->wall_offset_ns;
        s->rate = clk->fb_rate;
        s->since = clk->fb_since_ns;
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&clk->seq, __ATOMIC_RELAXED) == a) return;
    }
}

/* Device advance over real time at real monotonic time `mono`. */
static int64_t advance(const struct snap *s, int64_t mono) {
    int64_t a = s->skip;
    if (s->rate > 1.0 && mono > s->since) a += (int64_t)((s->rate - 1.0) * (double)(mono - s->since));
    return a;
}

static double cur_rate(const struct snap *s) { return s->rate > 1.0 ? s->rate : 1.0; }

static int64_t dev_mono(void) {
    struct snap s;
    read_clock(&s);
    int64_t m = real_ns(CLOCK_MONOTONIC);
    return m + advance(&s, m);
}

static int faked(clockid_t id) {
    return id == CLOCK_REALTIME || id == CLOCK_MONOTONIC || id == CLOCK_BOOTTIME || id == CLOCK_MONOTONIC_RAW ||
           id == CLOCK_REALTIME_COARSE || id == CLOCK_MONOTONIC_COARSE;
}

static int is_wall(clockid_t id) { return id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE; }

/* Device time of clock `id` in ns. */
static int64_t dev_ns(clockid_t id) {
    struct snap s;
    read_clock(&s);
    int64_t m = real_ns(CLOCK_MONOTONIC);
    int64_t adv = advance(&s, m);
    if (id == CLOCK_MONOTONIC) return m + adv;
    int64_t r = real_ns(id);
    return r + adv + (is_wall(id) ? s.wall : 0);
}

/* ---- clock reads ------------------------------------------------------ */

EXPORT int clock_gettime(clockid_t id, struct timespec *ts) {
    if (!r_clock_gettime) resolve();
    if (!faked(id) || !active()) return r_clock_gettime(id, ts);
    if (!ts) { errno = EFAULT; return -1; }
    int64_t v = dev_ns(id);
    ts->tv_sec = v / NS;
    ts->tv_nsec = v % NS;
    return 0;
}

EXPORT int gettimeofday(struct timeval *tv, void *tz) {
    (void)tz;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (tv) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return 0;
}

EXPORT time_t time(time_t *t) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (t) *t = ts.tv_sec;
    return ts.tv_sec;
}

EXPORT int timespec_get(struct timespec *ts, int base) {
    if (base != TIME_UTC) return 0;
    clock_gettime(CLOCK_REALTIME, ts);
    return base;
}

/* ---- the slot table ---------------------------------------------------- */

static int self_tid(void) {
    if (!my_tid) my_tid = (int)syscall(SYS_gettid);
    return my_tid;
}

static struct hp_slot *claim(int kind, int flags, int64_t deadline) {
    int tid = self_tid();
    unsigned n = slots->nslots < HP_NSLOTS ? slots->nslots : HP_NSLOTS;
    if (!n) return NULL;
    for (unsigned k = 0; k < n; k++) {
        struct hp_slot *sl = &slots->slot[((unsigned)tid + k) % n];
        int32_t zero = 0;
        if (__atomic_compare_exchange_n(&sl->tid, &zero, -1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
            sl->pid = (int32_t)getpid();
            sl->kind = kind;
            sl->flags = flags;
            sl->deadline_ns = deadline;
            sl->since_real_ns = real_ns(CLOCK_MONOTONIC);
            __atomic_store_n(&sl->tid, tid, __ATOMIC_RELEASE);
            __atomic_add_fetch(&slots->seq, 1, __ATOMIC_ACQ_REL);
            __atomic_add_fetch(&slots->doorbell, 1, __ATOMIC_ACQ_REL);
            if (__atomic_load_n(&slots->ctl_waiting, __ATOMIC_ACQUIRE))
                syscall(SYS_futex, &slots->doorbell, FUTEX_WAKE, 1, NULL, NULL, 0);
            return sl;
        }
    }
    return NULL; /* table full: the wait still works, in real time */
}

static void release(struct hp_slot *sl) {
    if (!sl) return;
    __atomic_store_n(&sl->tid, 0, __ATOMIC_RELEASE);
    __atomic_add_fetch(&slots->seq, 1, __ATOMIC_ACQ_REL);
}

/* Real time to wait now for a device deadline, capped at `cap`. */
static int64_t real_left(int64_t deadline, int64_t cap) {
    struct snap s;
    read_clock(&s);
    int64_t m = real_ns(CLOCK_MONOTONIC);
    int64_t left = deadline - (m + advance(&s, m));
    if (left <= 0) return 0;
    int64_t r = (int64_t)((double)left / cur_rate(&s));
    if (r < 1000) r = 1000;
    return r < cap ? r : cap;
}

static struct timespec ts_of(int64_t ns) {
    struct timespec t = {ns / NS, ns % NS};
    return t;
}

/* Saturating: `sleep infinity` asks for INT64_MAX seconds; ~73 years is forever enough. */
#define FOREVER_S ((int64_t)(INT64_MAX / NS / 4))
static int64_t ns_of(const struct timespec *t) {
    if (t->tv_sec >= FOREVER_S) return FOREVER_S * NS;
    return (int64_t)t->tv_sec * NS + t->tv_nsec;
}

/* A device deadline (device CLOCK_MONOTONIC) for an absolute time on clock `id`. */
static int64_t deadline_abs(clockid_t id, const struct timespec *abs) {
    if (id == CLOCK_MONOTONIC) return ns_of(abs);
    return dev_mono() + (ns_of(abs) - dev_ns(id));
}

/* ---- network classification ------------------------------------------- */

static int classify_fd(int fd) {
    int type = 0, dom = 0;
    socklen_t l = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) != 0) return 0;
    l = sizeof dom;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) != 0) return 0;
    if (dom != AF_INET && dom != AF_INET6) return 0;
    if (type == SOCK_DGRAM) return HP_F_UDP;
    if (type != SOCK_STREAM) return 0;
    struct tcp_info ti;
    l = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) != 0) return 0;
    if (ti.tcpi_state == 2 /* SYN_SENT */ || ti.tcpi_state == 3 /* SYN_RECV */) return HP_F_TCP;
    if (ti.tcpi_state != 1 /* ESTABLISHED */) return 0;
    if (ti.tcpi_unacked > 0) return HP_F_TCP;
    /* sent at or after the last answer ("ms ago" counters; a tie is awaiting,
     * as a TLS client that answers the server's flight within the same ms) */
    if (ti.tcpi_last_data_sent <= ti.tcpi_last_data_recv) return HP_F_TCP;
    /* data moved within the last second (a TLS 1.3 request answered so far
     * only by session tickets): the wait is part of an exchange */
    if (ti.tcpi_last_data_sent < 1000 || ti.tcpi_last_data_recv < 1000) return HP_F_TCP;
    return 0;
}

static int classify_pollfds(const struct pollfd *fds, nfds_t n) {
    int f = 0;
    for (nfds_t i = 0; i < n && i < 256; i++)
        if (fds[i].fd >= 0) f |= classify_fd(fds[i].fd);
    return f;
}

static int classify_fdset(int nfds, const fd_set *r, const fd_set *w) {
    int f = 0;
    for (int fd = 0; fd < nfds && fd < FD_SETSIZE; fd++)
        if ((r && FD_ISSET(fd, r)) || (w && FD_ISSET(fd, w))) f |= classify_fd(fd);
    return f;
}

/* The fds in an epoll set, from /proc/self/fdinfo (no epoll_ctl bookkeeping needed). */
static int classify_epoll(int epfd) {
    char path[64], buf[4096];
    int n = 0, f = 0;
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", epfd);
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t len = syscall(SYS_read, fd, buf, sizeof buf - 1);
    syscall(SYS_close, fd);
    if (len <= 0) return 0;
    buf[len] = 0;
    for (char *p = buf; (p = strstr(p, "tfd:")) && n < 256; n++) {
        p += 4;
        f |= classify_fd((int)strtol(p, &p, 10));
    }
    return f;
}

/* ---- sleeps: woken through the gen futex -------------------------------- */

/* 0 when the deadline passed, EINTR when a signal of the program's interrupted it. */
static int sleep_until(int64_t deadline, int64_t *left_out) {
    struct hp_slot *sl = claim(HP_SLEEP, 0, deadline);
    int rc = 0;
    for (;;) {
        uint32_t g = __atomic_load_n(&clk->gen, __ATOMIC_ACQUIRE);
        int64_t w = real_left(deadline, SLICE_NS);
        if (w <= 0) break;
        struct timespec t = ts_of(w);
        long r = syscall(SYS_futex, &clk->gen, FUTEX_WAIT, g, &t, NULL, 0);
        if (r == -1 && errno == EINTR && !woken) {
            rc = EINTR;
            break;
        }
        woken = 0;
    }
    release(sl);
    if (left_out) {
        int64_t l = deadline - dev_mono();
        *left_out = l > 0 ? l : 0;
    }
    return rc;
}

EXPORT int nanosleep(const struct timespec *req, struct timespec *rem) {
    if (!r_nanosleep) resolve();
    if (!req || !active()) return r_nanosleep(req, rem);
    if (req->tv_nsec < 0 || req->tv_nsec >= NS || req->tv_sec < 0) { errno = EINVAL; return -1; }
    int64_t left;
    int rc = sleep_until(dev_mono() + ns_of(req), &left);
    if (rc) {
        if (rem) *rem = ts_of(left);
        errno = rc;
        return -1;
    }
    return 0;
}

EXPORT int clock_nanosleep(clockid_t id, int flags, const struct timespec *req, struct timespec *rem) {
    if (!r_clock_nanosleep) resolve();
    if (!req || !faked(id) || !active()) return r_clock_nanosleep(id, flags, req, rem);
    if (req->tv_nsec < 0 || req->tv_nsec >= NS) return EINVAL;
    int64_t deadline = (flags & TIMER_ABSTIME) ? deadline_abs(id, req) : dev_mono() + ns_of(req);
    int64_t left;
    int rc = sleep_until(deadline, &left);
    if (rc && rem && !(flags & TIMER_ABSTIME)) *rem = ts_of(left);
    return rc;
}

EXPORT int usleep(useconds_t us) {
    struct timespec t = {us / 1000000, (long)(us % 1000000) * 1000};
    return nanosleep(&t, NULL);
}

EXPORT unsigned int sleep(unsigned int s) {
    struct timespec t = {s, 0}, rem = {0, 0};
    if (nanosleep(&t, &rem) == 0) return 0;
    return (unsigned int)rem.tv_sec + (rem.tv_nsec > 0);
}

/* ---- poll-type waits: woken by HP_SIGNAL ------------------------------- */

/* The mask to wait with: the caller's (or the current one) without HP_SIGNAL. */
static void wait_mask(const sigset_t *given, sigset_t *out) {
    if (given) *out = *given;
    else pthread_sigmask(SIG_BLOCK, NULL, out);
    sigdelset(out, HP_SIGNAL);
}

struct pollwait {
    struct hp_slot *sl;
    sigset_t old, mask;
    int flags;
    int64_t real_deadline; /* network waits time out in real time */
};

static void pw_begin(struct pollwait *pw, int flags, int64_t deadline, const sigset_t *given) {
    sigset_t blk;
    sigemptyset(&blk);
    sigaddset(&blk, HP_SIGNAL);
    pthread_sigmask(SIG_BLOCK, &blk, &pw->old); /* a wake-up now stays pending until the wait */
    wait_mask(given ? given : &pw->old, &pw->mask);
    woken = 0;
    pw->flags = flags;
    pw->real_deadline = real_ns(CLOCK_MONOTONIC) + (deadline - dev_mono());
    pw->sl = claim(HP_POLL, flags, deadline);
}

/* Real time to wait now.  A wait on a network exchange in flight (a TCP
 * answer, a UDP socket) runs on real time: the device is busy while it
 * lasts, so device time is real time anyway, except under the fallback's
 * acceleration, which must not shorten a network timeout. */
static int64_t pw_left(const struct pollwait *pw, int64_t deadline) {
    if (pw->flags & (HP_F_TCP | HP_F_UDP)) {
        int64_t left = pw->real_deadline - real_ns(CLOCK_MONOTONIC);
        if (left <= 0) return 0;
        if (left < 1000) left = 1000;
        return left < SLICE_NS ? left : SLICE_NS;
    }
    return real_left(deadline, SLICE_NS);
}

static void pw_end(struct pollwait *pw) {
    release(pw->sl);
    pthread_sigmask(SIG_SETMASK, &pw->old, NULL);
}

/* After an EINTR: 1 when it was our wake-up (wait again), 0 when it was the program's signal. */
static int ours(void) {
    if (woken) {
        woken = 0;
        return 1;
    }
    return 0;
}

static int do_ppoll(struct pollfd *fds, nfds_t n, int64_t deadline, const sigset_t *given) {
    struct pollwait pw;
    pw_begin(&pw, classify_pollfds(fds, n), deadline, given);
    int r;
    for (;;) {
        int64_t w = pw_left(&pw, deadline);
        if (w <= 0) { r = 0; break; }
        struct timespec t = ts_of(w);
        r = r_ppoll(fds, n, &t, &pw.mask);
        if (r > 0 || (r < 0 && !(errno == EINTR && ours()))) break;
    }
    int e = errno;
    pw_end(&pw);
    errno = e;
    return r;
}

EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout) {
    if (!r_poll) resolve();
    if (timeout <= 0 || !active()) return r_poll(fds, n, timeout);
    return do_ppoll(fds, n, dev_mono() + (int64_t)timeout * 1000000LL, NULL);
}

EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *tmo, const sigset_t *mask) {
    if (!r_ppoll) resolve();
    if (!tmo || (tmo->tv_sec == 0 && tmo->tv_nsec == 0) || !active()) return r_ppoll(fds, n, tmo, mask);
    int sig = mask != NULL;
    sigset_t m;
    if (sig) m = *mask;
    return do_ppoll(fds, n, dev_mono() + ns_of(tmo), sig ? &m : NULL);
}

static int do_pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, int64_t deadline, const sigset_t *given) {
    fd_set r0, w0, e0;
    if (r) r0 = *r;
    if (w) w0 = *w;
    if (e) e0 = *e;
    struct pollwait pw;
    pw_begin(&pw, classify_fdset(nfds, r, w), deadline, given);
    int rc;
    for (;;) {
        int64_t left = pw_left(&pw, deadline);
        if (left <= 0) {
            if (r) FD_ZERO(r);
            if (w) FD_ZERO(w);
            if (e) FD_ZERO(e);
            rc = 0;
            break;
        }
        if (r) *r = r0;
        if (w) *w = w0;
        if (e) *e = e0;
        struct timespec t = ts_of(left);
        rc = r_pselect(nfds, r, w, e, &t, &pw.mask);
        if (rc > 0 || (rc < 0 && !(errno == EINTR && ours()))) break;
    }
    int err = errno;
    pw_end(&pw);
    errno = err;
    return rc;
}

EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv) {
    if (!r_select) resolve();
    if (!tv || (tv->tv_sec == 0 && tv->tv_usec == 0) || !active()) return r_select(nfds, r, w, e, tv);
    struct timespec rel = {tv->tv_sec, (long)tv->tv_usec * 1000};
    int64_t deadline = dev_mono() + ns_of(&rel);
    int rc = do_pselect(nfds, r, w, e, deadline, NULL);
    int64_t left = deadline - dev_mono(); /* Linux updates the timeout with what is left */
    if (left < 0) left = 0;
    tv->tv_sec = left / NS;
    tv->tv_usec = (left % NS) / 1000;
    return rc;
}

EXPORT int pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *tmo, const sigset_t *mask) {
    if (!r_pselect) resolve();
    if (!tmo || (tmo->tv_sec == 0 && tmo->tv_nsec == 0) || !active()) return r_pselect(nfds, r, w, e, tmo, mask);
    return do_pselect(nfds, r, w, e, dev_mono() + ns_of(tmo), mask);
}

static int do_epoll(int epfd, struct epoll_event *ev, int max, int64_t deadline, const sigset_t *given) {
    struct pollwait pw;
    pw_begin(&pw, classify_epoll(epfd), deadline, given);
    int r;
    for (;;) {
        int64_t left = pw_left(&pw, deadline);
        if (left <= 0) { r = 0; break; }
        int ms = (int)((left + 999999) / 1000000);
        r = r_epoll_pwait(epfd, ev, max, ms, &pw.mask);
        if (r > 0 || (r < 0 && !(errno == EINTR && ours()))) break;
    }
    int e = errno;
    pw_end(&pw);
    errno = e;
    return r;
}

EXPORT int epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout) {
    if (!r_epoll_wait) resolve();
    if (timeout <= 0 || !active()) return r_epoll_wait(epfd, ev, max, timeout);
    return do_epoll(epfd, ev, max, dev_mono() + (int64_t)timeout * 1000000LL, NULL);
}

EXPORT int epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout, const sigset_t *mask) {
    if (!r_epoll_pwait) resolve();
    if (timeout <= 0 || !active()) return r_epoll_pwait(epfd, ev, max, timeout, mask);
    return do_epoll(epfd, ev, max, dev_mono() + (int64_t)timeout * 1000000LL, mask);
}

/* ---- semaphores and condition variables: slices ------------------------ */

static int sem_until(sem_t *sem, int64_t deadline) {
    struct hp_slot *sl = claim(HP_SEM, 0, deadline);
    int r;
    for (;;) {
        int64_t left = real_left(deadline, SEM_SLICE_NS);
        if (left <= 0) { errno = ETIMEDOUT; r = -1; break; }
        struct timespec abs = ts_of(real_ns(CLOCK_MONOTONIC) + left);
        r = r_sem_clockwait(sem, CLOCK_MONOTONIC, &abs);
        if (r == 0) break;
        if (errno == ETIMEDOUT || (errno == EINTR && ours())) continue;
        break;
    }
    int e = errno;
    release(sl);
    errno = e;
    return r;
}

EXPORT int sem_timedwait(sem_t *sem, const struct timespec *abs) {
    if (!r_sem_timedwait) resolve();
    if (!abs || !r_sem_clockwait || !active()) return r_sem_timedwait(sem, abs);
    if (abs->tv_nsec < 0 || abs->tv_nsec >= NS) { errno = EINVAL; return -1; }
    if (sem_trywait(sem) == 0) return 0;
    return sem_until(sem, deadline_abs(CLOCK_REALTIME, abs));
}

EXPORT int sem_clockwait(sem_t *sem, clockid_t id, const struct timespec *abs) {
    if (!r_sem_clockwait) resolve();
    if (!abs || !faked(id) || !active()) return r_sem_clockwait(sem, id, abs);
    if (abs->tv_nsec < 0 || abs->tv_nsec >= NS) { errno = EINVAL; return -1; }
    if (sem_trywait(sem) == 0) return 0;
    return sem_until(sem, deadline_abs(id, abs));
}

static int cond_until(pthread_cond_t *c, pthread_mutex_t *m, int64_t deadline) {
    struct hp_slot *sl = claim(HP_COND, 0, deadline);
    int r;
    for (;;) {
        int64_t left = real_left(deadline, COND_SLICE_NS);
        if (left <= 0) { r = ETIMEDOUT; break; }
        struct timespec abs = ts_of(real_ns(CLOCK_MONOTONIC) + left);
        r = r_cond_clockwait(c, m, CLOCK_MONOTONIC, &abs);
        if (r != ETIMEDOUT) break; /* signalled (or an error): the caller re-checks its predicate */
    }
    release(sl);
    return r;
}

/* glibc keeps a condition variable's clock in bit 1 of __wrefs (nptl/pthread_cond_common.c). */
static clockid_t cond_clock(pthread_cond_t *c) {
    return (c->__data.__wrefs & 2) ? CLOCK_MONOTONIC : CLOCK_REALTIME;
}

EXPORT int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *abs) {
    if (!r_cond_timedwait) resolve();
    if (!abs || !r_cond_clockwait || !active()) return r_cond_timedwait(c, m, abs);
    if (abs->tv_nsec < 0 || abs->tv_nsec >= NS) return EINVAL;
    return cond_until(c, m, deadline_abs(cond_clock(c), abs));
}

EXPORT int pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t id, const struct timespec *abs) {
    if (!r_cond_clockwait) resolve();
    if (!abs || !faked(id) || !active()) return r_cond_clockwait(c, m, id, abs);
    if (abs->tv_nsec < 0 || abs->tv_nsec >= NS) return EINVAL;
    return cond_until(c, m, deadline_abs(id, abs));
}

__attribute__((constructor)) static void hp_init(void) {
    resolve();
    active();
}
