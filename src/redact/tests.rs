//! The built-in message rules and patterns, over a `Config` of the test's
//! own (the process-wide one is exercised in tests/redact.rs).

use super::*;

fn all() -> Config {
    Config::default()
}

fn redacts(config: &Config, text: &str, expected: &str) {
    let out = config.message(text);
    assert_eq!(out, expected, "{text:?}");
    assert_eq!(config.message(&out), out, "not idempotent: {text:?}");
}

#[test]
fn numbers_and_ids_become_one_value_each() {
    let c = all();
    redacts(&c, "card 4111 1111 1111 1111 declined", "card ? declined");
    redacts(&c, "card 4111-1111-1111-1111", "card ?");
    redacts(&c, "user 42 not found", "user ? not found");
    redacts(&c, "order user_42/a3f9c2 gone", "order ? gone");
    redacts(&c, "at 2026-12-03 14:05:08.123", "at ?");
    redacts(&c, "pi is 3.14, e is 2.71", "pi is ?, e is ?");
    redacts(&c, "phone +44 20 7946 0958", "phone +?");
    redacts(&c, "object at 0x7f3a2c", "object at ?");
    // Digits of other scripts are digits too (Arabic-Indic, fullwidth).
    redacts(&c, "id ٤٢ and １２３", "id ? and ?");
    // Words without digits stay, and so do words joined to none.
    redacts(&c, "connection reset by peer", "connection reset by peer");
    redacts(&c, "retry 3 - then give up", "retry ? - then give up");
}

#[test]
fn emails_are_redacted_and_decorators_are_not() {
    let c = all();
    redacts(&c, "no user ann.lee+x@mail.example.com.", "no user ?.");
    redacts(&c, "ann@localhost refused", "? refused");
    redacts(&c, "ünal@bücher.example", "?");
    redacts(&c, "in @profile and a @ b", "in @profile and a @ b");
}

#[test]
fn quoted_values_are_redacted_and_apostrophes_are_not() {
    let c = all();
    redacts(&c, "KeyError: 'session_token'", "KeyError: ?");
    redacts(
        &c,
        r#"No such file or directory: "/home/ann/report.pdf""#,
        "No such file or directory: ?",
    );
    redacts(
        &c,
        "can't parse the users' input",
        "can't parse the users' input",
    );
    redacts(&c, "bad value 'it's mine' here", "bad value ? here");
    redacts(&c, r"bad value 'a\' secret' here", "bad value ? here");
    redacts(&c, "bytes b'\\x00secret' and rb'secret'", "bytes ? and ?");
    // A `'` after a redacted word opens a value, as it does after the `?`
    // that replaces it.
    redacts(&c, r"KeyError: 'it's'\3a'", r"KeyError: ?\?");
    redacts(&c, "n 4b'secret' and ann@x.example'secret'", "n ? and ?");
    // Unclosed: to the end.
    redacts(&c, "value 'secret and more", "value ?");
    redacts(&c, r#"value "secret and more"#, "value ?");
}

#[test]
fn rules_can_be_chosen_and_patterns_added() {
    let mut c = Config {
        rules: "emails".parse().unwrap(),
        ..Config::default()
    };
    redacts(&c, "user 42 'x' ann@example.com", "user 42 'x' ?");
    c.rules = MessageRules::NONE;
    redacts(&c, "user 42 ann@example.com", "user 42 ann@example.com");
    c.message
        .push(regex_lite::Regex::new(r"tenant-[a-z]+").unwrap());
    redacts(&c, "tenant-acme over quota", "? over quota");
    // Patterns see the text as given, not the built-in rules' output, and
    // overlapping ranges become one `?`.
    c.rules = MessageRules::ALL;
    c.message.push(regex_lite::Regex::new(r"acct-\d+").unwrap());
    redacts(&c, "acct-12345 of tenant-acme", "? of ?");
    // A pattern that matches nothing but the empty string changes nothing.
    c.message.push(regex_lite::Regex::new(r"z*").unwrap());
    redacts(&c, "plain words", "plain words");
}

#[test]
fn rule_lists_parse_and_bad_ones_are_named() {
    assert_eq!("all".parse::<MessageRules>(), Ok(MessageRules::ALL));
    assert_eq!("".parse::<MessageRules>(), Ok(MessageRules::ALL));
    assert_eq!("off".parse::<MessageRules>(), Ok(MessageRules::NONE));
    assert_eq!(
        "digits, quoted".parse::<MessageRules>(),
        Ok(MessageRules {
            digits: true,
            emails: false,
            quoted: true
        })
    );
    let err = "digits,phones".parse::<MessageRules>().unwrap_err();
    assert!(err.contains("\"phones\""), "{err}");
}

#[test]
fn bad_patterns_are_refused_with_a_reason() {
    let err = compile("(unclosed", "messages", 0).unwrap_err();
    assert!(matches!(err, PatternError::Invalid { .. }), "{err:?}");
    assert!(err.to_string().contains("(unclosed"), "{err}");
    assert_eq!(
        compile(&"a".repeat(MAX_PATTERN_BYTES + 1), "SQL", 0).unwrap_err(),
        PatternError::TooLong(MAX_PATTERN_BYTES + 1)
    );
    assert_eq!(
        compile("a", "SQL", MAX_PATTERNS).unwrap_err(),
        PatternError::TooMany("SQL")
    );
}

#[test]
fn only_the_first_max_input_bytes_are_read() {
    let c = all();
    let text = format!("{} 42", "x".repeat(MAX_INPUT_BYTES));
    assert_eq!(c.message(&text), "x".repeat(MAX_INPUT_BYTES));
}

#[test]
fn sql_patterns_apply_to_the_redacted_text() {
    let c = Config {
        sql: vec![regex_lite::Regex::new(r"\btenant_\w+").unwrap()],
        ..Config::default()
    };
    assert_eq!(
        c.sql("SELECT * FROM tenant_acme.orders WHERE id = ?".to_string()),
        "SELECT * FROM ?.orders WHERE id = ?"
    );
}

#[test]
fn stacks_keep_frame_locations_and_redact_everything_else() {
    let config = Config {
        rules: MessageRules::ALL,
        ..Config::default()
    };
    let python = "Traceback (most recent call last):\n  File \"/srv/app/users.py\", line 42, in get_user\n    raise LookupError(f\"user {uid}\")\nLookupError: user 4711 of ann@example.com not found\n";
    assert_eq!(
        config.stack(python),
        "Traceback (most recent call last):\n  File \"/srv/app/users.py\", line 42, in get_user\n    raise LookupError(f?)\nLookupError: user ? of ? not found\n"
    );
    let rust = "   3: shop::orders::place\n             at ./src/orders.rs:88:13\n   4: token 1234 leaked\n";
    assert_eq!(
        config.stack(rust),
        "   3: shop::orders::place\n             at ./src/orders.rs:88:13\n   ?: token ? leaked\n"
    );
    let sql = "    cursor.execute(statement, parameters)\nsqlite3.OperationalError: no such table: t2 (id 4711)\n";
    assert_eq!(
        config.stack(sql),
        "    cursor.execute(statement, parameters)\nsqlite3.OperationalError: no such table: ? (id ?)\n"
    );
    let c = "main (example.c:60)\ncharge_card (payment.c:88)\n";
    assert_eq!(config.stack(c), c);
    assert!(matches!(config.stack(c), Cow::Borrowed(_)));
    // Not locations: a quoted value or a number outside the frame forms.
    for line in [
        "at the time 12:30",
        "File \"secret 4111\"",
        "1234: 5678 9",
        "f (a b:1)",
    ] {
        assert!(!super::stack::is_location(line), "{line}");
    }
    for (line, n) in [
        ("KeyError: 'card'", Some(8)),
        ("a.b_2.C", Some(7)),
        ("   4: token", None),
        ("4711: x", None),
        ("raise X(1)", None),
        ("a..b: x", None),
    ] {
        assert_eq!(super::stack::exception_type_len(line), n, "{line}");
    }
}

#[test]
fn user_patterns_apply_to_frame_locations_too() {
    let mut config = Config {
        rules: MessageRules::ALL,
        ..Config::default()
    };
    config
        .message
        .push(regex_lite::Regex::new("tenant-[a-z]+").unwrap());
    assert_eq!(
        config.stack("  File \"/data/tenant-acme/app.py\", line 3, in f\n"),
        "  File \"/data/?/app.py\", line 3, in f\n"
    );
}

#[test]
fn a_repeated_message_is_redacted_again_after_a_configuration_change() {
    // The process-wide configuration: a pattern only this test's texts match.
    let text = "order 7 of probe-cachekey";
    let got = |t: &str| with_message(t, str::to_string);
    assert_eq!(got(text), message(text));
    assert_eq!(got(text), "order ? of probe-cachekey");
    // The same text again: the thread's last message, same redaction.
    assert_eq!(got(text), "order ? of probe-cachekey");
    add_message_pattern(r"probe-cache[a-z]+").unwrap();
    assert_eq!(got(text), "order ? of ?");
    assert_eq!(got("other 8"), "other ?");
    assert_eq!(got(text), "order ? of ?");
    // Nested use (a caller redacting inside its callback) still redacts.
    let nested = with_message(text, |outer| format!("{outer} / {}", got("n 9")));
    assert_eq!(nested, "order ? of ? / n ?");
}
