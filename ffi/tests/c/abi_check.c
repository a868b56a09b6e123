/*
 * Calls every function of profilis.h, on its success and error paths, and
 * prints the layout of every struct and the value of every constant for the
 * Rust side to compare (tests/c_abi.rs). Compiled with -Werror, so a
 * declaration that drifts from its use fails the build.
 *
 * Usage: abi_check RING_FILE MISSING_DIR_RING_FILE
 * Prints "layout ..." and "const ..." lines, then "checks N" on success;
 * prints "FAIL ..." and exits 1 on the first failed check.
 */
#include "profilis.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int checks = 0;

#define EXPECT(cond)                                                                  \
    do {                                                                              \
        checks++;                                                                     \
        if (!(cond)) {                                                                \
            char msg_[256];                                                           \
            profilis_last_error(msg_, sizeof msg_);                                   \
            printf("FAIL line %d: %s (last error: %s)\n", __LINE__, #cond, msg_);    \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

#define LAYOUT(type) printf("layout %s size %zu align %zu\n", #type, sizeof(type), _Alignof(type))
#define FIELD(type, field) printf("field %s.%s %zu\n", #type, #field, offsetof(type, field))
#define CONST(name) printf("const %s %lld\n", #name, (long long)(name))

static void print_layouts(void) {
    LAYOUT(profilis_span_context);
    FIELD(profilis_span_context, trace_id_high);
    FIELD(profilis_span_context, trace_id_low);
    FIELD(profilis_span_context, span_id);
    FIELD(profilis_span_context, parent_span_id);
    FIELD(profilis_span_context, sampled);
    LAYOUT(profilis_span);
    FIELD(profilis_span, context);
    FIELD(profilis_span, start_ns);
    FIELD(profilis_span, name);
    FIELD(profilis_span, reserved);
    LAYOUT(profilis_event);
    FIELD(profilis_event, dur_ns);
    FIELD(profilis_event, ts_mono_ns);
    FIELD(profilis_event, value);
    FIELD(profilis_event, value2);
    FIELD(profilis_event, kind);
    FIELD(profilis_event, flags);
    FIELD(profilis_event, method);
    FIELD(profilis_event, status);
    FIELD(profilis_event, name);
    FIELD(profilis_event, exception_type);
    FIELD(profilis_event, message);
    FIELD(profilis_event, reserved);
    LAYOUT(profilis_counters);
    FIELD(profilis_counters, claimed);
    FIELD(profilis_counters, dropped);
    FIELD(profilis_counters, dropped_full);
    FIELD(profilis_counters, overwritten);
    FIELD(profilis_counters, received);
    FIELD(profilis_counters, abandoned);
    FIELD(profilis_counters, torn);
    FIELD(profilis_counters, in_flight);
    FIELD(profilis_counters, process_dropped);
    FIELD(profilis_counters, strings_overflow);
    FIELD(profilis_counters, messages_lost);
    FIELD(profilis_counters, messages_unread);
    FIELD(profilis_counters, names_unresolved);
    FIELD(profilis_counters, repairs);
    LAYOUT(profilis_open_options);
    FIELD(profilis_open_options, capacity);
    FIELD(profilis_open_options, policy);
    FIELD(profilis_open_options, reserved);
    FIELD(profilis_open_options, service);
    FIELD(profilis_open_options, service_len);
    LAYOUT(profilis_status);

    CONST(PROFILIS_ABI_VERSION);
    CONST(PROFILIS_KIND_REQ);
    CONST(PROFILIS_KIND_FN);
    CONST(PROFILIS_KIND_DB);
    CONST(PROFILIS_KIND_CUSTOM);
    CONST(PROFILIS_FLAG_ERROR);
    CONST(PROFILIS_METHOD_NONE);
    CONST(PROFILIS_METHOD_GET);
    CONST(PROFILIS_METHOD_POST);
    CONST(PROFILIS_METHOD_PUT);
    CONST(PROFILIS_METHOD_DELETE);
    CONST(PROFILIS_METHOD_PATCH);
    CONST(PROFILIS_METHOD_HEAD);
    CONST(PROFILIS_METHOD_OPTIONS);
    CONST(PROFILIS_METHOD_CONNECT);
    CONST(PROFILIS_METHOD_TRACE);
    CONST(PROFILIS_METHOD_OTHER);
    CONST(PROFILIS_POLICY_DROP_NEWEST);
    CONST(PROFILIS_POLICY_OVERWRITE_OLDEST);
    CONST(PROFILIS_STR_NONE);
    CONST(PROFILIS_STR_OVERFLOW);
    CONST(PROFILIS_TRACEPARENT_LEN);
    CONST(PROFILIS_OK);
    CONST(PROFILIS_DROPPED);
    CONST(PROFILIS_ERR_NULL);
    CONST(PROFILIS_ERR_UTF8);
    CONST(PROFILIS_ERR_INVALID);
    CONST(PROFILIS_ERR_OPEN);
    CONST(PROFILIS_ERR_BUFFER_TOO_SMALL);
    CONST(PROFILIS_ERR_TRACEPARENT);
    CONST(PROFILIS_ERR_PANIC);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s RING_FILE MISSING_DIR_RING_FILE\n", argv[0]);
        return 2;
    }
    print_layouts();
    const char *path = argv[1];
    const char *bad_path = argv[2];
    char buf[256];
    const char bad_utf8[] = {'a', (char)0xff, 'b'};

    EXPECT(profilis_abi_version() == PROFILIS_ABI_VERSION);
    EXPECT(strcmp(profilis_status_str(PROFILIS_OK), "ok") == 0);
    EXPECT(strlen(profilis_status_str(-1234)) > 0);
    EXPECT(profilis_mono_ns() > 0);

    /* Opening. */
    profilis_ring *ring = NULL;
    EXPECT(profilis_open(path, strlen(path), 0, NULL) == PROFILIS_ERR_NULL);
    EXPECT(profilis_last_error(NULL, 0) > 0);
    EXPECT(profilis_last_error(buf, sizeof buf) == strlen(buf));
    EXPECT(strstr(buf, "out") != NULL);
    EXPECT(profilis_open(NULL, 5, 0, &ring) == PROFILIS_ERR_NULL);
    EXPECT(profilis_open(bad_utf8, sizeof bad_utf8, 0, &ring) == PROFILIS_ERR_UTF8);
    EXPECT(profilis_open(bad_path, strlen(bad_path), 0, &ring) == PROFILIS_ERR_OPEN);
    profilis_last_error(buf, sizeof buf);
    EXPECT(strstr(buf, "missing") != NULL);
    EXPECT(profilis_open(path, strlen(path), 1000, &ring) == PROFILIS_ERR_INVALID);
    profilis_last_error(buf, sizeof buf);
    EXPECT(strstr(buf, "capacity") != NULL);
    profilis_open_options options = {0};
    options.policy = 7;
    EXPECT(profilis_open_with(path, strlen(path), &options, &ring) == PROFILIS_ERR_INVALID);
    options.policy = PROFILIS_POLICY_DROP_NEWEST;
    options.capacity = 64;
    options.service = "abi-check";
    options.service_len = 9;
    EXPECT(profilis_open_with(path, strlen(path), &options, &ring) == PROFILIS_OK);
    EXPECT(ring != NULL);
    profilis_ring *second = NULL;
    EXPECT(profilis_open(path, strlen(path), 0, &second) == PROFILIS_OK);
    EXPECT(profilis_close(second) == PROFILIS_OK);
    EXPECT(profilis_close(NULL) == PROFILIS_OK);

    /* Interning and messages. */
    uint32_t id = 0, again = 0, msg = 0;
    EXPECT(profilis_intern(NULL, "x", 1, &id) == PROFILIS_ERR_NULL);
    EXPECT(profilis_intern(ring, "x", 1, NULL) == PROFILIS_ERR_NULL);
    EXPECT(profilis_intern(ring, NULL, 1, &id) == PROFILIS_ERR_NULL);
    EXPECT(profilis_intern(ring, bad_utf8, sizeof bad_utf8, &id) == PROFILIS_ERR_UTF8);
    EXPECT(profilis_intern(ring, "abi_fn", 6, &id) == PROFILIS_OK);
    EXPECT(profilis_intern(ring, "abi_fn and more", 6, &again) == PROFILIS_OK);
    EXPECT(id != PROFILIS_STR_NONE && id == again);
    EXPECT(profilis_message(ring, NULL, 3, &msg) == PROFILIS_ERR_NULL);
    EXPECT(profilis_message(ring, bad_utf8, sizeof bad_utf8, &msg) == PROFILIS_ERR_UTF8);
    EXPECT(profilis_message(ring, "boom", 4, &msg) == PROFILIS_OK && msg != 0);
    EXPECT(profilis_message_with_stack(ring, "boom", 4, NULL, 3, &msg) == PROFILIS_ERR_NULL);
    EXPECT(profilis_message_with_stack(ring, "boom", 4, bad_utf8, sizeof bad_utf8, &msg) ==
           PROFILIS_ERR_UTF8);
    EXPECT(profilis_message_with_stack(ring, "boom", 4, "main\n", 5, NULL) == PROFILIS_ERR_NULL);
    EXPECT(profilis_message_with_stack(ring, "boom", 4, NULL, 0, &msg) == PROFILIS_OK && msg != 0);
    EXPECT(profilis_message_with_stack(ring, "boom", 4, "main\n", 5, &msg) == PROFILIS_OK &&
           msg != 0);

    /* Emits. */
    profilis_span_context none = {0};
    EXPECT(profilis_emit_fn(NULL, id, 10, 0, NULL) == PROFILIS_ERR_NULL);
    EXPECT(profilis_emit_fn(ring, id, 10, 0, NULL) == PROFILIS_OK);
    EXPECT(profilis_emit_fn(ring, id, 10, 1, &none) == PROFILIS_OK);
    EXPECT(profilis_emit_req(ring, id, 99, 200, 10, 0, 0, NULL) == PROFILIS_ERR_INVALID);
    EXPECT(profilis_emit_req(ring, id, PROFILIS_METHOD_GET, 70000, 10, 0, 0, NULL) ==
           PROFILIS_ERR_INVALID);
    EXPECT(profilis_emit_req(ring, id, PROFILIS_METHOD_OTHER, 404, 10, 1, 2, NULL) == PROFILIS_OK);
    EXPECT(profilis_emit_db(ring, id, 10, 3, NULL) == PROFILIS_OK);
    EXPECT(profilis_emit_custom(ring, id, -1.5, NULL) == PROFILIS_OK);
    profilis_event event = {0};
    EXPECT(profilis_record(ring, NULL, NULL) == PROFILIS_ERR_NULL);
    EXPECT(profilis_record(ring, &event, NULL) == PROFILIS_ERR_INVALID); /* kind 0 */
    event.kind = PROFILIS_KIND_FN;
    event.flags = 0x80;
    EXPECT(profilis_record(ring, &event, NULL) == PROFILIS_ERR_INVALID);
    event.flags = PROFILIS_FLAG_ERROR;
    event.reserved = 1;
    EXPECT(profilis_record(ring, &event, NULL) == PROFILIS_ERR_INVALID);
    event.reserved = 0;
    event.name = id;
    event.message = msg;
    EXPECT(profilis_record(ring, &event, NULL) == PROFILIS_OK);

    /* Spans. */
    profilis_span root, child;
    EXPECT(profilis_span_begin(id, NULL, NULL) == PROFILIS_ERR_NULL);
    EXPECT(profilis_span_begin(id, NULL, &root) == PROFILIS_OK);
    EXPECT(root.context.trace_id_high != 0 || root.context.trace_id_low != 0);
    EXPECT(root.context.span_id != 0 && root.context.parent_span_id == 0);
    EXPECT(root.context.sampled == 1);
    EXPECT(profilis_span_begin(id, &root.context, &child) == PROFILIS_OK);
    EXPECT(child.context.trace_id_high == root.context.trace_id_high);
    EXPECT(child.context.trace_id_low == root.context.trace_id_low);
    EXPECT(child.context.parent_span_id == root.context.span_id);
    EXPECT(profilis_span_end(ring, NULL, 0) == PROFILIS_ERR_NULL);
    EXPECT(profilis_span_end(ring, &child, 1) == PROFILIS_OK);
    EXPECT(profilis_span_end(ring, &root, 0) == PROFILIS_OK);

    /* Counters: 64 slots; fill the ring until it refuses. */
    profilis_counters counters;
    EXPECT(profilis_read_counters(ring, NULL) == PROFILIS_ERR_NULL);
    EXPECT(profilis_read_counters(NULL, &counters) == PROFILIS_ERR_NULL);
    EXPECT(profilis_read_counters(ring, &counters) == PROFILIS_OK);
    EXPECT(counters.claimed == 8 && counters.dropped == 0 && counters.in_flight == 8);
    int dropped = 0;
    for (int i = 0; i < 100; i++) {
        if (profilis_emit_fn(ring, id, 1, 0, NULL) == PROFILIS_DROPPED) {
            dropped++;
        }
    }
    EXPECT(dropped == 100 - (64 - 8));
    EXPECT(profilis_read_counters(ring, &counters) == PROFILIS_OK);
    EXPECT(counters.claimed == 108 && counters.dropped_full == (uint64_t)dropped);
    EXPECT(counters.process_dropped == (uint64_t)dropped && counters.in_flight == 64);

    /* Redaction. */
    const char *sql = "SELECT * FROM t WHERE a = 42 AND b = 'secret'";
    size_t needed = 0;
    EXPECT(profilis_redact_sql(NULL, 4, buf, sizeof buf, &needed) == PROFILIS_ERR_NULL);
    EXPECT(profilis_redact_sql(bad_utf8, sizeof bad_utf8, buf, sizeof buf, &needed) ==
           PROFILIS_ERR_UTF8);
    EXPECT(profilis_redact_sql(sql, strlen(sql), NULL, 0, &needed) ==
           PROFILIS_ERR_BUFFER_TOO_SMALL);
    EXPECT(needed > 0 && needed < strlen(sql));
    char small[4] = {'x', 'x', 'x', 'x'};
    EXPECT(profilis_redact_sql(sql, strlen(sql), small, sizeof small, NULL) ==
           PROFILIS_ERR_BUFFER_TOO_SMALL);
    EXPECT(small[0] == 'x');
    EXPECT(profilis_redact_sql(sql, strlen(sql), buf, sizeof buf, &needed) == PROFILIS_OK);
    EXPECT(strlen(buf) == needed);
    EXPECT(strstr(buf, "secret") == NULL && strstr(buf, "42") == NULL);
    printf("redacted %s\n", buf);

    /* Message redaction, rules and patterns (process-wide). */
    const char *text = "card 4111 1111 1111 1111 of ann@example.com: 'x'";
    EXPECT(profilis_redact_message(text, strlen(text), buf, sizeof buf, &needed) == PROFILIS_OK);
    EXPECT(strcmp(buf, "card ? of ?: ?") == 0);
    EXPECT(profilis_redact_set_message_rules("phones", 6) == PROFILIS_ERR_INVALID);
    EXPECT(profilis_redact_set_message_rules("emails", 6) == PROFILIS_OK);
    EXPECT(profilis_redact_message(text, strlen(text), buf, sizeof buf, NULL) == PROFILIS_OK);
    EXPECT(strcmp(buf, "card 4111 1111 1111 1111 of ?: 'x'") == 0);
    EXPECT(profilis_redact_set_message_rules("all", 3) == PROFILIS_OK);
    EXPECT(profilis_redact_add_message_pattern("(", 1) == PROFILIS_ERR_INVALID);
    char why[256];
    EXPECT(profilis_last_error(why, sizeof why) > 0 && strstr(why, "invalid redaction pattern"));
    const char *tenant = "tenant-[a-z]+";
    EXPECT(profilis_redact_add_message_pattern(tenant, strlen(tenant)) == PROFILIS_OK);
    const char *quota = "tenant-acme over quota";
    EXPECT(profilis_redact_message(quota, strlen(quota), buf, sizeof buf, NULL) == PROFILIS_OK);
    EXPECT(strcmp(buf, "? over quota") == 0);
    const char *schema = "\\btenant_\\w+";
    const char *query = "SELECT * FROM tenant_acme.orders WHERE id = 7";
    EXPECT(profilis_redact_add_sql_pattern(schema, strlen(schema)) == PROFILIS_OK);
    EXPECT(profilis_redact_sql(query, strlen(query), buf, sizeof buf, NULL) == PROFILIS_OK);
    EXPECT(strcmp(buf, "SELECT * FROM ?.orders WHERE id = ?") == 0);
    EXPECT(profilis_redact_clear_patterns() == PROFILIS_OK);
    EXPECT(profilis_redact_sql(query, strlen(query), buf, sizeof buf, NULL) == PROFILIS_OK);
    EXPECT(strcmp(buf, "SELECT * FROM tenant_acme.orders WHERE id = ?") == 0);

    /* Traceparent. */
    const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    profilis_span_context parent;
    EXPECT(profilis_traceparent_parse(tp, strlen(tp), NULL) == PROFILIS_ERR_NULL);
    EXPECT(profilis_traceparent_parse("00-zz", 5, &parent) == PROFILIS_ERR_TRACEPARENT);
    EXPECT(profilis_traceparent_parse(tp, strlen(tp), &parent) == PROFILIS_OK);
    EXPECT(parent.trace_id_high == 0x4bf92f3577b34da6ull);
    EXPECT(parent.trace_id_low == 0xa3ce929d0e0e4736ull);
    EXPECT(parent.span_id == 0x00f067aa0ba902b7ull && parent.sampled == 1);
    char header[PROFILIS_TRACEPARENT_LEN + 1];
    size_t header_len = 0;
    EXPECT(profilis_traceparent_format(&none, header, sizeof header, &header_len) ==
           PROFILIS_ERR_INVALID);
    EXPECT(profilis_traceparent_format(&parent, header, PROFILIS_TRACEPARENT_LEN - 1,
                                       &header_len) == PROFILIS_ERR_BUFFER_TOO_SMALL);
    EXPECT(header_len == PROFILIS_TRACEPARENT_LEN);
    EXPECT(profilis_traceparent_format(&parent, header, sizeof header, &header_len) ==
           PROFILIS_OK);
    EXPECT(strcmp(header, tp) == 0);

    EXPECT(profilis_close(ring) == PROFILIS_OK);
    printf("checks %d\n", checks);
    return 0;
}
