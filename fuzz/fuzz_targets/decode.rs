//! Consumer decode of arbitrary slot words: either a valid event whose
//! re-encoding gives back the same words, or a torn verdict; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use profilis::layout::RECORD_WORDS;
use profilis::Event;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 + RECORD_WORDS * 8 {
        return;
    }
    let position = u64::from_le_bytes(data[..8].try_into().unwrap());
    let mut words = [0u64; RECORD_WORDS];
    for (i, w) in words.iter_mut().enumerate() {
        let at = 8 + i * 8;
        *w = u64::from_le_bytes(data[at..at + 8].try_into().unwrap());
    }
    if let Ok(event) = Event::decode(position, &words) {
        let again = event.encode(position);
        // Reserved bits are not kept, so compare through a second decode.
        assert_eq!(Event::decode(position, &again), Ok(event));
    }
});
