/*
 * profilis.h: C ABI of the Profilis writer (library profilis_ffi).
 *
 * Record request, function, database and custom timings as fixed-size
 * events into a Profilis ring file, the same file Rust and Python writers
 * use; `profilis-reader` drains it.
 *
 *   profilis_ring *ring;
 *   if (profilis_open("/dev/shm/app.ring", 17, 0, &ring) != PROFILIS_OK) {
 *       char msg[256];
 *       profilis_last_error(msg, sizeof msg);
 *       fprintf(stderr, "profilis: %s\n", msg);
 *   }
 *   uint32_t route;
 *   profilis_intern(ring, "/users/{id}", 11, &route);    // once per name
 *   profilis_span req;
 *   profilis_span_begin(route, NULL, &req);              // new trace
 *   ...                                                  // the work
 *   profilis_emit_req(ring, route, PROFILIS_METHOD_GET, 200,
 *                     profilis_mono_ns() - req.start_ns, 0, 512, &req.context);
 *   profilis_close(ring);
 *
 * Conventions
 * - Text is passed as a pointer and a length in bytes and must be UTF-8;
 *   it need not be NUL-terminated. A NULL pointer is accepted only with a
 *   length of 0 (the empty string).
 * - Every fallible function returns a profilis_status: 0 or positive when
 *   the call was carried out, negative for an error. After an error,
 *   profilis_last_error() gives a message (per thread).
 * - Names (routes, functions, redacted queries, metric and exception type
 *   names) are interned once with profilis_intern(); events carry the
 *   32-bit ids. The emit functions never copy text.
 * - Trace context is explicit: each emit takes a profilis_span_context
 *   pointer, or NULL for an event outside any trace.
 * - A profilis_ring handle may be used from many threads at once; close it
 *   once, after every other use.
 * - No function lets an error unwind into the caller; an internal failure
 *   returns PROFILIS_ERR_PANIC.
 *
 * Linking: `-lprofilis_ffi` against the cdylib (libprofilis_ffi.so), or the
 * staticlib (libprofilis_ffi.a) plus `-lpthread -ldl -lm`.
 */
#ifndef PROFILIS_H
#define PROFILIS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Version of the ABI this header describes; see profilis_abi_version(). */
#define PROFILIS_ABI_VERSION 3

/** Event kinds (profilis_event.kind). */
#define PROFILIS_KIND_REQ 1u
#define PROFILIS_KIND_FN 2u
#define PROFILIS_KIND_DB 3u
#define PROFILIS_KIND_CUSTOM 4u

/** Event flag (profilis_event.flags): the measured work failed. */
#define PROFILIS_FLAG_ERROR 1u

/** HTTP methods (profilis_event.method, profilis_emit_req). */
#define PROFILIS_METHOD_NONE 0u
#define PROFILIS_METHOD_GET 1u
#define PROFILIS_METHOD_POST 2u
#define PROFILIS_METHOD_PUT 3u
#define PROFILIS_METHOD_DELETE 4u
#define PROFILIS_METHOD_PATCH 5u
#define PROFILIS_METHOD_HEAD 6u
#define PROFILIS_METHOD_OPTIONS 7u
#define PROFILIS_METHOD_CONNECT 8u
#define PROFILIS_METHOD_TRACE 9u
#define PROFILIS_METHOD_OTHER 255u

/** Full-ring policies (profilis_open_options.policy). */
#define PROFILIS_POLICY_DROP_NEWEST 0u
#define PROFILIS_POLICY_OVERWRITE_OLDEST 1u

/** String id of "no string". */
#define PROFILIS_STR_NONE 0u
/** String id returned when the ring's string table is full. */
#define PROFILIS_STR_OVERFLOW 0xFFFFFFFFu

/** Length of a version-00 traceparent value, without a NUL. */
#define PROFILIS_TRACEPARENT_LEN 55

/** Result of a call. Non-negative: carried out; negative: an error. */
typedef enum profilis_status {
    /** Done. */
    PROFILIS_OK = 0,
    /** The ring was full: the event was not recorded (counted as dropped). */
    PROFILIS_DROPPED = 1,
    /** A required pointer was NULL. */
    PROFILIS_ERR_NULL = -1,
    /** Text was not valid UTF-8. */
    PROFILIS_ERR_UTF8 = -2,
    /** An argument was out of range, or a handle is not an open ring. */
    PROFILIS_ERR_INVALID = -3,
    /** The ring file could not be created or opened. */
    PROFILIS_ERR_OPEN = -4,
    /** The output buffer is too small; the needed length was reported. */
    PROFILIS_ERR_BUFFER_TOO_SMALL = -5,
    /** A traceparent value was malformed. */
    PROFILIS_ERR_TRACEPARENT = -6,
    /** An internal error was caught at the boundary. */
    PROFILIS_ERR_PANIC = -7
} profilis_status;

/** An open ring (opaque). */
typedef struct profilis_ring profilis_ring;

/** Where an event sits in a trace. All zero: no trace. */
typedef struct profilis_span_context {
    /** High 64 bits of the 128-bit W3C trace id. */
    uint64_t trace_id_high;
    /** Low 64 bits of the trace id. */
    uint64_t trace_id_low;
    /** Id of the current span (0: none). */
    uint64_t span_id;
    /** Id of the parent span (0: a root span). */
    uint64_t parent_span_id;
    /** Non-zero when the trace is sampled. */
    uint8_t sampled;
} profilis_span_context;

/** A started span; keep it and pass it to profilis_span_end(). */
typedef struct profilis_span {
    /** The span's own context; pass &span.context to events inside it. */
    profilis_span_context context;
    /** CLOCK_MONOTONIC ns when it began (see profilis_mono_ns()). */
    uint64_t start_ns;
    /** Interned name, recorded as the FN event's name. */
    uint32_t name;
    /** Zero. */
    uint32_t reserved;
} profilis_span;

/** Every field of an event, for profilis_record(). */
typedef struct profilis_event {
    /** Duration in ns. */
    uint64_t dur_ns;
    /** CLOCK_MONOTONIC ns at the end of the work; 0 means now. */
    uint64_t ts_mono_ns;
    /** DB rows, REQ bytes in, or CUSTOM value as the bits of a double. */
    uint64_t value;
    /** REQ bytes out. */
    uint64_t value2;
    /** PROFILIS_KIND_*. */
    uint32_t kind;
    /** PROFILIS_FLAG_ERROR or 0. */
    uint32_t flags;
    /** PROFILIS_METHOD_* for requests, 0 otherwise. */
    uint32_t method;
    /** HTTP status for requests (at most 65535), 0 otherwise. */
    uint32_t status;
    /** Interned name: route template, function, redacted query, metric. */
    uint32_t name;
    /** Interned exception type name, 0 for none. */
    uint32_t exception_type;
    /** Reference from profilis_message(), 0 for none. */
    uint32_t message;
    /** Zero. */
    uint32_t reserved;
} profilis_event;

/** The ring's counters as writers see them. */
typedef struct profilis_counters {
    /** Emit attempts by every writer: events written or begun plus refusals. */
    uint64_t claimed;
    /** Events lost to a full ring (dropped_full + overwritten). */
    uint64_t dropped;
    /** Part of dropped: refused because the writer's lane was full (or no
     *  lane could be had). */
    uint64_t dropped_full;
    /** Part of dropped: overwritten before they were read. */
    uint64_t overwritten;
    /** Delivered to the consumer, as of its last commit. */
    uint64_t received;
    /** Events whose writer died between the first and the last store. */
    uint64_t abandoned;
    /** Records rejected by validation. */
    uint64_t torn;
    /** Written or begun, not yet consumed. */
    uint64_t in_flight;
    /** Events this process could not place (ring full). */
    uint64_t process_dropped;
    /** Interning requests that got PROFILIS_STR_OVERFLOW. */
    uint64_t strings_overflow;
    /** Exception messages lost to contention for a message slot. */
    uint64_t messages_lost;
    /** Message texts the consumer found overwritten before it read them. */
    uint64_t messages_unread;
    /** Name ids the consumer could not resolve to text. */
    uint64_t names_unresolved;
    /** Lanes the consumer found holding impossible positions and reset. */
    uint64_t repairs;
} profilis_counters;

/** How to create a ring that does not exist yet. */
typedef struct profilis_open_options {
    /** Event slots, a power of two; 0 for the default (262144, or
     *  PROFILIS_CAPACITY). */
    uint64_t capacity;
    /** PROFILIS_POLICY_DROP_NEWEST (default) or PROFILIS_POLICY_OVERWRITE_OLDEST. */
    uint32_t policy;
    /** Zero. */
    uint32_t reserved;
    /** Service name recorded for this process (UTF-8), NULL for none. */
    const char *service;
    /** Length of service in bytes. */
    size_t service_len;
} profilis_open_options;

/** Version of the ABI the library implements (PROFILIS_ABI_VERSION). */
uint32_t profilis_abi_version(void);

/** A static, NUL-terminated description of a status code. */
const char *profilis_status_str(int status);

/**
 * Copies this thread's last error message into out (NUL-terminated,
 * truncated to out_cap - 1 bytes) and returns its full length without the
 * NUL. Pass out = NULL to learn the length. Successful calls leave the
 * message unchanged.
 */
size_t profilis_last_error(char *out, size_t out_cap);

/** CLOCK_MONOTONIC in ns: the clock of event timestamps and span starts. */
uint64_t profilis_mono_ns(void);

/**
 * Opens the ring file at path[0..path_len), creating it with capacity
 * slots (a power of two; 0 for the default) if it does not exist. A NULL
 * or empty path opens the default ring: $PROFILIS_RING, or
 * $PROFILIS_DIR/profilis-<uid>.ring with /dev/shm as the default directory.
 * PROFILIS_CAPACITY, PROFILIS_POLICY and PROFILIS_SERVICE apply as in Rust.
 * On success *out holds a handle for profilis_close().
 * Errors: PROFILIS_ERR_NULL, PROFILIS_ERR_UTF8, PROFILIS_ERR_INVALID,
 * PROFILIS_ERR_OPEN (the message names the file and the cause).
 */
profilis_status profilis_open(const char *path, size_t path_len, uint64_t capacity,
                              profilis_ring **out);

/** Like profilis_open() with every creation option; options may be NULL. */
profilis_status profilis_open_with(const char *path, size_t path_len,
                                   const profilis_open_options *options,
                                   profilis_ring **out);

/**
 * Closes a handle (NULL is ignored). Every other call using it must have
 * returned; using it afterwards is undefined behaviour. Events recorded
 * stay in the ring file for the reader.
 */
profilis_status profilis_close(profilis_ring *ring);

/**
 * Interns text[0..len) (UTF-8, cut to 1024 bytes at a character boundary)
 * and writes its id to *out_id. Intern each name once and keep the id. A
 * full string table yields PROFILIS_STR_OVERFLOW (counted), not an error.
 */
profilis_status profilis_intern(const profilis_ring *ring, const char *text, size_t len,
                                uint32_t *out_id);

/**
 * Stores variable text such as an exception message (UTF-8; redacted as
 * profilis_redact_message() says, then cut to 240 bytes) and writes a
 * reference for profilis_event.message to *out_ref.
 * A reference of 0 means the text was lost to contention (counted).
 */
profilis_status profilis_message(const profilis_ring *ring, const char *text, size_t len,
                                 uint32_t *out_ref);

/**
 * Stores an exception message (as profilis_message) with a stack trace:
 * stack[0..stack_len) (UTF-8; NULL with 0 for none), text the caller
 * formats, outermost frame first ("most recent call last"). Past the
 * ring's bound (3600 bytes with the default 256 message slots) the outer
 * frames are cut, the first line and the innermost frames kept. A
 * reference of 0 means the message and its stack were lost to contention
 * (counted). For the error path only.
 */
profilis_status profilis_message_with_stack(const profilis_ring *ring, const char *text,
                                            size_t len, const char *stack, size_t stack_len,
                                            uint32_t *out_ref);

/**
 * Records one event with every field (exception type and message
 * included). ctx is its trace context, NULL for none.
 * Returns PROFILIS_OK or PROFILIS_DROPPED (ring full);
 * PROFILIS_ERR_INVALID for a bad kind, flag, method, status or reserved.
 */
profilis_status profilis_record(const profilis_ring *ring, const profilis_event *event,
                                const profilis_span_context *ctx);

/**
 * Records a request: route template id, PROFILIS_METHOD_*, HTTP status
 * (500 and above flag an error), duration, bytes in and out.
 */
profilis_status profilis_emit_req(const profilis_ring *ring, uint32_t route, uint32_t method,
                                  uint32_t status, uint64_t dur_ns, uint64_t bytes_in,
                                  uint64_t bytes_out, const profilis_span_context *ctx);

/** Records a function call: name id, duration, error non-zero if it failed. */
profilis_status profilis_emit_fn(const profilis_ring *ring, uint32_t name, uint64_t dur_ns,
                                 int error, const profilis_span_context *ctx);

/**
 * Records a database query: the id of its redacted text (see
 * profilis_redact_sql(); never intern raw SQL with values), duration, rows.
 */
profilis_status profilis_emit_db(const profilis_ring *ring, uint32_t query, uint64_t dur_ns,
                                 uint64_t rows, const profilis_span_context *ctx);

/** Records a custom metric sample. */
profilis_status profilis_emit_custom(const profilis_ring *ring, uint32_t name, double value,
                                     const profilis_span_context *ctx);

/**
 * Begins a span: a child of parent (same trace, parent's span as its
 * parent), or the root of a new sampled trace when parent is NULL or has no
 * trace. Writes it to *out. Nothing is recorded until profilis_span_end().
 */
profilis_status profilis_span_begin(uint32_t name, const profilis_span_context *parent,
                                    profilis_span *out);

/**
 * Ends a span: records an FN event with its name and context and the time
 * since profilis_span_begin(); error non-zero flags a failure.
 */
profilis_status profilis_span_end(const profilis_ring *ring, const profilis_span *span,
                                  int error);

/**
 * Reads the ring's counters into *out: a consistent snapshot, for which
 * received + dropped + abandoned + torn + in_flight == claimed. Consumer-side
 * counts are as of its last commit. PROFILIS_ERR_INVALID (nothing written)
 * if the consumer's commits kept moving its state through a bounded number
 * of retries.
 */
profilis_status profilis_read_counters(const profilis_ring *ring, profilis_counters *out);

/**
 * Redacts the literals of an SQL statement sql[0..sql_len) (UTF-8):
 * numbers, strings, double-quoted text where a value can stand (SQLite
 * and MySQL read "..." as a string there) and IN lists become '?'. Writes the result to out
 * (NUL-terminated when out_cap leaves room for it) and its length without
 * the NUL to *out_len (out_len may be NULL). Returns
 * PROFILIS_ERR_BUFFER_TOO_SMALL, writing nothing to out, when out_cap is
 * below that length: call with out = NULL, out_cap = 0 to learn it.
 */
profilis_status profilis_redact_sql(const char *sql, size_t sql_len, char *out, size_t out_cap,
                                    size_t *out_len);

/**
 * Redacts a message text[0..len) (UTF-8) as profilis_message() stores it:
 * the built-in rules in force (by default digits, e-mail addresses and
 * '...' / "..." values become '?') and the message patterns. Output as
 * profilis_redact_sql().
 */
profilis_status profilis_redact_message(const char *text, size_t len, char *out, size_t out_cap,
                                        size_t *out_len);

/**
 * Chooses the built-in message rules, process-wide: rules[0..len) is "all"
 * (the default, or what PROFILIS_REDACT says), "off", or a comma-separated
 * list of "digits", "emails", "quoted". PROFILIS_ERR_INVALID for anything
 * else (the rules in force stay).
 */
profilis_status profilis_redact_set_message_rules(const char *rules, size_t len);

/**
 * Adds a regular expression pattern[0..len) (regex-lite syntax), process-
 * wide, whose matches in a message become '?' before it enters the ring.
 * PROFILIS_ERR_INVALID for a pattern that does not compile, is over 1024
 * bytes, or is one too many (64); profilis_last_error() says which.
 */
profilis_status profilis_redact_add_message_pattern(const char *pattern, size_t len);

/**
 * Adds a regular expression pattern[0..len), process-wide, whose matches in
 * the redacted text of an SQL statement become '?' (profilis_redact_sql()).
 * Errors as profilis_redact_add_message_pattern(). Call before the first
 * query you intern: an id interned earlier keeps the text it was given.
 */
profilis_status profilis_redact_add_sql_pattern(const char *pattern, size_t len);

/** Removes every message and SQL pattern (the built-in rules stay). */
profilis_status profilis_redact_clear_patterns(void);

/**
 * Parses a W3C traceparent header value text[0..len) into the context of
 * the remote parent span (span_id = its parent id, sampled = flag bit 0).
 * Continue the trace with profilis_span_begin(name, out, &span).
 * Returns PROFILIS_ERR_TRACEPARENT for a malformed value.
 */
profilis_status profilis_traceparent_parse(const char *text, size_t len,
                                           profilis_span_context *out);

/**
 * Writes ctx as a version-00 traceparent value (PROFILIS_TRACEPARENT_LEN
 * bytes, plus a NUL when out_cap is larger) for an outgoing request, and
 * the length to *out_len (may be NULL). ctx needs a trace id and a span id.
 */
profilis_status profilis_traceparent_format(const profilis_span_context *ctx, char *out,
                                            size_t out_cap, size_t *out_len);

#ifdef __cplusplus
}
#endif

#endif /* PROFILIS_H */
