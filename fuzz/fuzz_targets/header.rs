//! Header validation on attach: any bytes and any claimed file size give a
//! header or a typed error, never a panic; an accepted header describes a
//! layout that fits the stated file size.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (size, header) = data.split_at(8);
    let file_size = u64::from_le_bytes(size.try_into().unwrap());
    if let Ok(info) = profilis::file::parse_header(header, file_size) {
        assert!(info.params.check().is_ok());
        assert!(info.params.file_bytes() <= file_size);
        assert!(info.params.slots_offset() + info.params.capacity * 128 <= file_size);
    }
});
