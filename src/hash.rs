//! The string hash shared by every process that interns into a ring. It is
//! part of the file format (FORMAT.md, "String table"): changing it would
//! make two library versions intern the same text twice.

const K0: u64 = 0x243F_6A88_85A3_08D3;
const K1: u64 = 0x9E37_79B9_7F4A_7C15;
const K2: u64 = 0xBF58_476D_1CE4_E5B9;
const K3: u64 = 0x94D0_49BB_1331_11EB;

/// Packs up to 8 bytes into a little-endian word, zero padded.
#[inline]
pub fn word_le(chunk: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b[..chunk.len()].copy_from_slice(chunk);
    u64::from_le_bytes(b)
}

/// 64-bit hash of `bytes`, never 0 (0 marks an empty string-index entry).
#[inline]
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = K0 ^ (bytes.len() as u64).wrapping_mul(K1);
    // Whole words are read directly (a variable-length copy per word would
    // cost a `memcpy` call each); only the tail is padded.
    let mut words = bytes.chunks_exact(8);
    for chunk in &mut words {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        h = (h ^ word).wrapping_mul(K2);
        h ^= h >> 31;
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        h = (h ^ word_le(tail)).wrapping_mul(K2);
        h ^= h >> 31;
    }
    h = (h ^ (h >> 30)).wrapping_mul(K3);
    h ^= h >> 29;
    if h == 0 {
        1
    } else {
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_never_zero() {
        // Fixed values: the hash is part of the file format (FORMAT.md,
        // "String table"); these were computed from that description.
        assert_eq!(hash_bytes(b"/users/{id}"), 0x2e26_127c_392f_ea9d);
        assert_eq!(hash_bytes(b""), 0x4a53_b094_ab4f_108c);
        assert_ne!(hash_bytes(b"/users/{id}"), hash_bytes(b"/users/{id}/"));
        assert_ne!(hash_bytes(b"a"), hash_bytes(b"a\0"));
        for i in 0..10_000u32 {
            assert_ne!(hash_bytes(&i.to_le_bytes()), 0);
        }
    }

    /// The format's definition, word by word with every word zero padded:
    /// the whole-word fast path must give the same hash at every length.
    fn reference(bytes: &[u8]) -> u64 {
        let mut h = K0 ^ (bytes.len() as u64).wrapping_mul(K1);
        for chunk in bytes.chunks(8) {
            h = (h ^ word_le(chunk)).wrapping_mul(K2);
            h ^= h >> 31;
        }
        h = (h ^ (h >> 30)).wrapping_mul(K3);
        h ^= h >> 29;
        if h == 0 {
            1
        } else {
            h
        }
    }

    #[test]
    fn whole_words_hash_as_the_format_defines() {
        let text: Vec<u8> = (0..=40u8).map(|b| b.wrapping_mul(37) ^ 0x5a).collect();
        for len in 0..=text.len() {
            assert_eq!(hash_bytes(&text[..len]), reference(&text[..len]), "{len}");
        }
    }
}
