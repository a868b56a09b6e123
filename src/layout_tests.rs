//! Layout checks: regions, parameter limits, sequence values.

use super::*;

fn params() -> Params {
    Params {
        capacity: 1024,
        lanes: 8,
        string_entries: 4096,
        arena_bytes: 256 * 1024,
        message_slots: 256,
        writer_entries: 64,
    }
}

#[test]
fn regions_do_not_overlap_and_are_aligned() {
    let p = params();
    p.check().unwrap();
    assert_eq!(p.writers_offset(), 4096);
    assert!(p.lanes_offset() >= p.writers_offset() + 64 * 64);
    assert_eq!(p.lanes_offset() % LANE_BYTES, 0);
    assert!(p.state_offset() >= p.lanes_offset() + 8 * LANE_BYTES);
    assert!(p.strings_offset() >= p.state_offset() + 2 * (8 + 8) * 8);
    assert!(p.arena_offset() >= p.strings_offset() + 4096 * 16);
    assert!(p.messages_offset() >= p.arena_offset() + 256 * 1024);
    assert_eq!(p.slots_offset() % 4096, 0);
    assert!(p.slots_offset() >= p.messages_offset() + 256 * 256);
    assert_eq!(p.file_bytes(), p.slots_offset() + 1024 * 128);
    assert_eq!(p.lane_slots(), 128);
}

#[test]
fn check_rejects_out_of_range_parameters() {
    let ok = Params {
        capacity: 2,
        lanes: 1,
        string_entries: 16,
        arena_bytes: 4096,
        message_slots: 4,
        writer_entries: 1,
    };
    assert!(ok.check().is_ok());
    let bad = [
        Params { capacity: 3, ..ok },
        Params { capacity: 1, ..ok },
        Params { lanes: 2, ..ok },
        Params { lanes: 0, ..ok },
        Params {
            capacity: 4096,
            lanes: 2048,
            ..ok
        },
        Params {
            string_entries: 100,
            ..ok
        },
        Params {
            arena_bytes: 4100,
            ..ok
        },
        Params {
            message_slots: 0,
            ..ok
        },
        Params {
            writer_entries: 0,
            ..ok
        },
        Params {
            writer_entries: 5000,
            ..ok
        },
    ];
    for p in bad {
        assert!(p.check().is_err(), "{p:?}");
    }
}

#[test]
fn sequence_values_order_by_lap_and_zero_is_no_position() {
    assert!(seq_writing(5) < seq_committed(5));
    assert!(seq_committed(5) < seq_writing(6));
    assert_ne!(seq_committed(0), 0);
    assert_ne!(seq_writing(0), 0);
}

#[test]
fn shared_lanes_are_an_eighth_at_least_one() {
    assert_eq!(shared_lanes(1), 1);
    assert_eq!(shared_lanes(2), 1);
    assert_eq!(shared_lanes(16), 2);
    assert_eq!(shared_lanes(64), 8);
    let p = params();
    assert_eq!(p.own_lanes(), 7);
}
