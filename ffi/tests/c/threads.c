/*
 * One profilis_ring handle shared by several threads, each recording spans
 * and events concurrently. Usage: threads RING_FILE THREADS EVENTS_PER_THREAD
 */
#include "profilis.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static profilis_ring *ring;
static uint32_t span_name, db_name;
static long per_thread;

static void *run(void *arg) {
    (void)arg;
    for (long i = 0; i < per_thread; i++) {
        profilis_span span;
        if (profilis_span_begin(span_name, NULL, &span) != PROFILIS_OK ||
            profilis_emit_db(ring, db_name, 1000, (uint64_t)i, &span.context) != PROFILIS_OK ||
            profilis_span_end(ring, &span, 0) != PROFILIS_OK) {
            char msg[256];
            profilis_last_error(msg, sizeof msg);
            fprintf(stderr, "thread failed: %s\n", msg);
            return (void *)1;
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s RING_FILE THREADS EVENTS_PER_THREAD\n", argv[0]);
        return 2;
    }
    int threads = atoi(argv[2]);
    per_thread = atol(argv[3]);
    if (threads < 1 || threads > 64 || per_thread < 1) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    if (profilis_open(argv[1], strlen(argv[1]), 1u << 16, &ring) != PROFILIS_OK ||
        profilis_intern(ring, "thread_span", 11, &span_name) != PROFILIS_OK ||
        profilis_intern(ring, "SELECT ?", 8, &db_name) != PROFILIS_OK) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    pthread_t ids[64];
    for (int t = 0; t < threads; t++) {
        if (pthread_create(&ids[t], NULL, run, NULL) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    }
    int failed = 0;
    for (int t = 0; t < threads; t++) {
        void *result = NULL;
        pthread_join(ids[t], &result);
        failed |= result != NULL;
    }
    profilis_counters counters;
    profilis_read_counters(ring, &counters);
    printf("claimed %llu dropped %llu\n", (unsigned long long)counters.claimed,
           (unsigned long long)counters.dropped);
    profilis_close(ring);
    return failed;
}
