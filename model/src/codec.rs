//! Small binary codec helpers shared by the protocols: CRC-32 and a framed,
//! checksummed record format for logs on the simulated disk.
//!
//! A record is `[len: u32 LE][crc32(payload): u32 LE][payload]`. Decoding
//! stops at the first record that is short (a torn tail) or whose checksum
//! fails (corruption), and reports how many bytes were valid and which of
//! the two it met, so recovery can truncate a torn tail instead of trusting
//! it, and refuse a corrupt record.

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC_TABLE: [u32; 256] = crc_table();

/// CRC-32 (IEEE) of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c = CRC_TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    c ^ 0xFFFF_FFFF
}

/// Frames `payload` as one checksummed record.
pub fn encode_record(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The records decoded from a byte string, and where the valid part ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedRecords {
    /// The payloads of the valid records, in order.
    pub records: Vec<Vec<u8>>,
    /// The byte length of the valid prefix.
    pub valid_len: u64,
    /// Whether bytes after the valid prefix were dropped (torn or corrupt).
    pub dropped_tail: bool,
    /// Whether decoding stopped at a complete record whose checksum fails:
    /// corruption, not a torn write (a torn write leaves a short last
    /// record, whose length runs past the end of the bytes).
    pub corrupt: bool,
}

/// Decodes records until the first torn or corrupt one.
pub fn decode_records(bytes: &[u8]) -> DecodedRecords {
    let mut records = Vec::new();
    let mut pos = 0usize;
    let mut corrupt = false;
    while pos + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap());
        let end = match (pos + 8).checked_add(len) {
            Some(e) if e <= bytes.len() => e,
            _ => break,
        };
        let payload = &bytes[pos + 8..end];
        if crc32(payload) != crc {
            corrupt = true;
            break;
        }
        records.push(payload.to_vec());
        pos = end;
    }
    DecodedRecords {
        records,
        valid_len: pos as u64,
        dropped_tail: pos < bytes.len(),
        corrupt,
    }
}

/// Reads a little-endian u64 at `at`, if there are 8 bytes there.
pub fn get_u64(bytes: &[u8], at: usize) -> Option<u64> {
    bytes
        .get(at..at + 8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn torn_and_corrupt_tails_are_dropped() {
        let mut bytes = encode_record(b"one");
        bytes.extend(encode_record(b"two"));
        let full = bytes.len();
        let d = decode_records(&bytes);
        assert_eq!(d.records, vec![b"one".to_vec(), b"two".to_vec()]);
        assert!(!d.dropped_tail);
        let torn = decode_records(&bytes[..full - 1]);
        assert_eq!(torn.records.len(), 1);
        assert!(torn.dropped_tail && !torn.corrupt);
        let mut corrupt = bytes.clone();
        corrupt[full - 1] ^= 0x40;
        let c = decode_records(&corrupt);
        assert_eq!(c.records.len(), 1);
        assert_eq!(c.valid_len, 11);
        assert!(c.corrupt);
    }
}
