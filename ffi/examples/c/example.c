/*
 * A C program writing into a Profilis ring through profilis.h: two HTTP
 * requests (one continuing an incoming traceparent, one failing with an
 * exception), a nested function span, a database query under its redacted
 * text, and a custom metric.
 *
 * Build and run (from the repository root, after `cargo build -p profilis-ffi`):
 *   cc -std=c11 -Wall -Wextra -Werror -I ffi/include ffi/examples/c/example.c \
 *      target/debug/libprofilis_ffi.a -lpthread -ldl -lm -o /tmp/profilis-example
 *   /tmp/profilis-example /dev/shm/example.ring
 *   cargo run -p profilis-reader -- /dev/shm/example.ring --once --console pretty
 */
#include "profilis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Exits with the library's message when a call fails. */
static void check(profilis_status status, const char *what) {
    if (status < 0) {
        char message[512];
        profilis_last_error(message, sizeof message);
        fprintf(stderr, "%s: %s (%s)\n", what, profilis_status_str(status), message);
        exit(1);
    }
    if (status != PROFILIS_OK) {
        fprintf(stderr, "%s: %s\n", what, profilis_status_str(status));
    }
}

static uint32_t intern(profilis_ring *ring, const char *text) {
    uint32_t id = 0;
    check(profilis_intern(ring, text, strlen(text), &id), "profilis_intern");
    return id;
}

/* Interns the redacted form of a query: no literal reaches the ring. */
static uint32_t intern_query(profilis_ring *ring, const char *sql) {
    size_t needed = 0;
    profilis_status status = profilis_redact_sql(sql, strlen(sql), NULL, 0, &needed);
    if (status != PROFILIS_ERR_BUFFER_TOO_SMALL && status != PROFILIS_OK) {
        check(status, "profilis_redact_sql (length)");
    }
    char *redacted = malloc(needed + 1);
    if (redacted == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    check(profilis_redact_sql(sql, strlen(sql), redacted, needed + 1, &needed),
          "profilis_redact_sql");
    uint32_t id = intern(ring, redacted);
    free(redacted);
    return id;
}

/* Something to time. */
static volatile uint64_t sink;
static void work(unsigned n) {
    for (unsigned i = 0; i < n; i++) {
        sink += i * 2654435761u;
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s RING_FILE\n", argv[0]);
        return 2;
    }
    if (profilis_abi_version() != PROFILIS_ABI_VERSION) {
        fprintf(stderr, "library ABI %u, header ABI %d\n", profilis_abi_version(),
                PROFILIS_ABI_VERSION);
        return 1;
    }

    profilis_open_options options = {0};
    options.capacity = 1024;
    options.service = "c-example";
    options.service_len = strlen(options.service);
    profilis_ring *ring = NULL;
    check(profilis_open_with(argv[1], strlen(argv[1]), &options, &ring), "profilis_open_with");

    uint32_t users_route = intern(ring, "/users/{id}");
    uint32_t orders_route = intern(ring, "/orders");
    uint32_t load_user = intern(ring, "load_user");
    uint32_t queue_depth = intern(ring, "queue_depth");
    uint32_t users_query =
        intern_query(ring, "SELECT id, name FROM users WHERE id = 42 AND email = 'ann@example.com'");

    /* Request 1 continues the caller's trace. */
    const char *incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    profilis_span_context caller;
    check(profilis_traceparent_parse(incoming, strlen(incoming), &caller),
          "profilis_traceparent_parse");
    profilis_span request;
    check(profilis_span_begin(users_route, &caller, &request), "profilis_span_begin");
    {
        profilis_span fn;
        check(profilis_span_begin(load_user, &request.context, &fn), "profilis_span_begin");
        work(100000);
        check(profilis_emit_db(ring, users_query, 250000, 1, &fn.context), "profilis_emit_db");
        check(profilis_span_end(ring, &fn, 0), "profilis_span_end");
    }
    char outgoing[PROFILIS_TRACEPARENT_LEN + 1];
    size_t outgoing_len = 0;
    check(profilis_traceparent_format(&request.context, outgoing, sizeof outgoing, &outgoing_len),
          "profilis_traceparent_format");
    check(profilis_emit_req(ring, users_route, PROFILIS_METHOD_GET, 200,
                            profilis_mono_ns() - request.start_ns, 0, 512, &request.context),
          "profilis_emit_req");
    printf("traceparent %s\n", outgoing);

    /* Request 2 fails with an exception: every field through profilis_record. */
    profilis_span failing;
    check(profilis_span_begin(orders_route, NULL, &failing), "profilis_span_begin");
    work(50000);
    const char *why = "payment service timed out after 3 attempts";
    profilis_event event = {0};
    event.kind = PROFILIS_KIND_REQ;
    event.flags = PROFILIS_FLAG_ERROR;
    event.method = PROFILIS_METHOD_POST;
    event.status = 500;
    event.name = orders_route;
    event.exception_type = intern(ring, "TimeoutError");
    /* With the stack the application formats itself, innermost last. */
    const char *stack = "main (example.c:60)\n"
                        "place_order (orders.c:41)\n"
                        "charge_card (payment.c:88)\n";
    check(profilis_message_with_stack(ring, why, strlen(why), stack, strlen(stack),
                                      &event.message),
          "profilis_message_with_stack");
    event.dur_ns = profilis_mono_ns() - failing.start_ns;
    event.value = 128; /* bytes in */
    event.value2 = 64; /* bytes out */
    check(profilis_record(ring, &event, &failing.context), "profilis_record");

    check(profilis_emit_fn(ring, load_user, 1234567, 1, NULL), "profilis_emit_fn");
    check(profilis_emit_custom(ring, queue_depth, 7.5, NULL), "profilis_emit_custom");

    profilis_counters counters;
    check(profilis_read_counters(ring, &counters), "profilis_read_counters");
    printf("claimed %llu dropped %llu\n", (unsigned long long)counters.claimed,
           (unsigned long long)counters.dropped);
    check(profilis_close(ring), "profilis_close");
    return 0;
}
