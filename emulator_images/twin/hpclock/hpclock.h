/* The shared layout between the twin's clock controller (twinrt/clockd.py)
 * and the LD_PRELOAD shim (hpclock.c).  Two files under /run/honeyphone:
 *
 *   hpclock.clock  (0644, written by the controller only): the device clock.
 *   hpclock.slots  (0666): one slot per thread blocked in a timed wait.
 *
 * Device time = real time + advance, where advance grows only when the
 * controller jumps over idle time or runs the bounded fallback rate.  The
 * clock page is a seqlock: readers retry while `seq` is odd or changed.
 * Keep in step with twinrt/clocklayout.py.
 */
#ifndef HPCLOCK_H
#define HPCLOCK_H

#include <stdint.h>

#define HP_MAGIC 0x4b4c4348u /* "HCLK" */
#define HP_VERSION 1u
#define HP_NSLOTS 1024

struct hp_clock {
    uint32_t magic;
    uint32_t version;
    uint32_t seq;           /* seqlock: odd while the controller writes */
    uint32_t gen;           /* futex word: bumped (and woken) at every jump or rate change */
    int64_t skip_ns;        /* idle time jumped over, plus folded fallback time */
    int64_t wall_offset_ns; /* device wall clock minus real wall clock, excluding skip */
    double fb_rate;         /* > 1 while the fallback acceleration runs */
    int64_t fb_since_ns;    /* real CLOCK_MONOTONIC when the fallback started */
    int64_t start_real_ns;  /* real CLOCK_MONOTONIC when the clock started */
};

enum hp_kind {
    HP_SLEEP = 1, /* nanosleep family: woken through the `gen` futex */
    HP_POLL = 2,  /* poll/select/epoll: woken by HP_SIGNAL */
    HP_SEM = 3,   /* sem_timedwait family: signal, plus slices */
    HP_COND = 4,  /* pthread_cond_timedwait family: slices */
};

struct hp_slot {
    int32_t tid;           /* 0: free, -1: being filled, > 0: the waiting thread */
    int32_t pid;
    int32_t kind;
    int32_t flags;
    int64_t deadline_ns;   /* device CLOCK_MONOTONIC */
    int64_t since_real_ns; /* real CLOCK_MONOTONIC when the wait began */
};

struct hp_slots {
    uint32_t doorbell; /* futex word the controller sleeps on; bumped on every registration */
    uint32_t seq;      /* bumped on every registration and release */
    uint32_t nslots;
    uint32_t ctl_waiting;
    struct hp_slot slot[HP_NSLOTS];
};

#endif
