"""Redaction of what goes into the ring: exception messages (digits,
e-mail addresses, quoted values and user patterns, on by default) and the
user's SQL patterns, checked in the JSONL the reader writes."""

from __future__ import annotations

import pytest

import profilis


@pytest.fixture
def restore_redaction():
    yield
    profilis.set_message_rules("all")
    profilis.clear_redaction_patterns()


def only(events, name):
    found = [e for e in events if e["name"] == name]
    assert len(found) == 1, (name, events)
    return found[0]


def test_exception_messages_are_redacted_by_default(drain, restore_redaction):
    assert profilis.message_rules() == "all"
    error = ValueError("card 4111 1111 1111 1111 of ann@example.com refused: 'insufficient funds'")
    assert profilis.emit_req("/pay", 500, 10, error=error)
    with pytest.raises(KeyError):
        with profilis.use_span("lookup"):
            raise KeyError("session-7f3a")
    events = drain()
    pay = only(events, "/pay")
    # The type is a name, never redacted; the message loses every value.
    assert pay["exception_type"] == "ValueError"
    assert pay["exception_message"] == "card ? of ? refused: ?"
    assert only(events, "lookup")["exception_message"] == "?"
    assert profilis.redact_message("user 42 can't log in") == "user ? can't log in"


def test_rules_can_be_chosen_and_patterns_added(drain, restore_redaction):
    profilis.set_message_rules("emails")
    assert profilis.message_rules() == "emails"
    profilis.add_message_pattern(r"tenant-[a-z]+")
    profilis.emit_fn("quota", 10, error=RuntimeError("tenant-acme over quota 42 (ann@example.com)"))
    profilis.set_message_rules("off")
    assert profilis.message_rules() == "off"
    profilis.emit_fn("plain", 10, error=RuntimeError("order 42 'x'"))
    events = drain()
    assert only(events, "quota")["exception_message"] == "? over quota 42 (?)"
    assert only(events, "plain")["exception_message"] == "order 42 'x'"


def test_sql_patterns_apply_to_statements_seen_before(drain, restore_redaction):
    sql = "SELECT * FROM tenant_acme.orders WHERE id = 7"
    assert profilis.emit_db(sql, 1000)
    profilis.add_sql_pattern(r"\btenant_\w+")
    assert profilis.redact_sql(sql) == "SELECT * FROM ?.orders WHERE id = ?"
    # The same text again: its cached id is forgotten, the pattern applies.
    assert profilis.emit_db(sql, 1000)
    names = [e["name"] for e in drain() if e["kind"] == "DB"]
    assert names == [
        "SELECT * FROM tenant_acme.orders WHERE id = ?",
        "SELECT * FROM ?.orders WHERE id = ?",
    ]


def test_bad_rules_and_patterns_raise_value_error(restore_redaction):
    with pytest.raises(ValueError, match="phones"):
        profilis.set_message_rules("digits,phones")
    with pytest.raises(ValueError, match="invalid redaction pattern"):
        profilis.add_message_pattern("(unclosed")
    with pytest.raises(ValueError, match="1024"):
        profilis.add_sql_pattern("a" * 2000)
    assert profilis.message_rules() == "all"
