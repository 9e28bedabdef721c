/*
 * Preloaded into a PostgreSQL server (LD_PRELOAD), makes every fsync and fdatasync take SLOW_SYNC_US
 * microseconds longer: the WAL flush of a commit then waits as it would on a disk with that much more
 * latency (a network volume, say), while the server's CPU cost stays what it is. See run.sh.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

static long delay_us = -1;

static void wait_as_a_slower_disk(void) {
    if (delay_us < 0) {
        const char *v = getenv("SLOW_SYNC_US");
        delay_us = v == NULL ? 0 : atol(v);
    }
    if (delay_us > 0) {
        struct timespec t = {delay_us / 1000000, (delay_us % 1000000) * 1000};
        while (nanosleep(&t, &t) != 0) {
        }
    }
}

/* Waits, then calls the C library's own function name (found once, kept in *real). */
static int slower(const char *name, int (**real)(int), int fd) {
    if (*real == NULL) {
        *real = (int (*)(int))dlsym(RTLD_NEXT, name);
    }
    wait_as_a_slower_disk();
    return (*real)(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    return slower("fdatasync", &real, fd);
}

int fsync(int fd) {
    static int (*real)(int);
    return slower("fsync", &real, fd);
}
