//! Small, fixed, fast hashing helpers: an Fx-style [`Hasher`], a
//! deterministic `splitmix64` stream for Zobrist keys, and polynomial string
//! fingerprints used by models whose state is a growing string.
//!
//! Nothing here is seeded at random, so every run hashes identically.

use std::hash::{BuildHasherDefault, Hash, Hasher};

/// Multiplier of the Fx hash (as used by rustc).
const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// A fast, non-cryptographic, deterministic hasher (Fx-style).
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // A final avalanche so that low bits are usable as table indices.
        mix64(self.hash)
    }
}

/// A `BuildHasher` for [`FxHasher`], for `HashMap`s used internally.
pub type FxBuild = BuildHasherDefault<FxHasher>;

/// A `HashMap` with the fixed Fx hasher. Never iterate one into output.
pub type FxHashMap<K, V> = std::collections::HashMap<K, V, FxBuild>;

/// Hashes one value with [`FxHasher`].
#[inline]
pub fn fx_hash<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut h = FxHasher::default();
    value.hash(&mut h);
    h.finish()
}

/// The `splitmix64` finaliser: a good 64-bit mixing function.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The `i`-th Zobrist key: a fixed pseudo-random 64-bit word.
#[inline]
pub fn zobrist(i: usize) -> u64 {
    mix64(
        (i as u64)
            .wrapping_add(1)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15),
    )
}

/// The Mersenne prime 2^61 - 1, modulus of string fingerprints.
const P61: u64 = (1 << 61) - 1;
/// The two bases of the double polynomial fingerprint.
const BASES: [u64; 2] = [1_000_003, 0x1f_3a_5c_79];

#[inline]
fn mulmod(a: u64, b: u64) -> u64 {
    let p = (a as u128) * (b as u128);
    let lo = (p as u64) & P61;
    let hi = (p >> 61) as u64;
    let s = lo + hi;
    if s >= P61 {
        s - P61
    } else {
        s
    }
}

#[inline]
fn addmod(a: u64, b: u64) -> u64 {
    let s = a + b;
    if s >= P61 {
        s - P61
    } else {
        s
    }
}

/// A fingerprint of a byte string: two polynomial hashes modulo 2^61 - 1.
///
/// Two different strings share a fingerprint with probability about
/// `len / 2^122`, so models may compare fingerprints instead of strings.
/// Fingerprints compose: `concat(a, b)` is computable from `a`, `b` and the
/// length of `b` (see [`Fingerprint::append`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u64; 2]);

/// What appending a string needs: its fingerprint and `base^len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Suffix {
    /// Fingerprint of the appended string.
    pub print: Fingerprint,
    /// `BASES[k]^len` for each base.
    pub shift: [u64; 2],
}

impl Fingerprint {
    /// The fingerprint of the empty string.
    pub const EMPTY: Fingerprint = Fingerprint([0, 0]);

    /// Fingerprints `bytes`, returning what appending it needs.
    pub fn of(bytes: &[u8]) -> Suffix {
        let mut h = [0u64; 2];
        let mut s = [1u64; 2];
        for &b in bytes {
            for k in 0..2 {
                // Shift bytes by one so that leading zero bytes still count.
                h[k] = addmod(mulmod(h[k], BASES[k]), b as u64 + 1);
                s[k] = mulmod(s[k], BASES[k]);
            }
        }
        Suffix {
            print: Fingerprint(h),
            shift: s,
        }
    }

    /// The fingerprint of `self` followed by the suffix.
    #[inline]
    pub fn append(self, suffix: &Suffix) -> Fingerprint {
        let mut out = [0u64; 2];
        for (k, o) in out.iter_mut().enumerate() {
            *o = addmod(mulmod(self.0[k], suffix.shift[k]), suffix.print.0[k]);
        }
        Fingerprint(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_compose() {
        let a = Fingerprint::of(b"hello ");
        let b = Fingerprint::of(b"world");
        let ab = Fingerprint::of(b"hello world");
        assert_eq!(Fingerprint::EMPTY.append(&a).append(&b), ab.print);
        assert_ne!(Fingerprint::of(b"\0").print, Fingerprint::EMPTY);
        assert_ne!(Fingerprint::of(b"ab").print, Fingerprint::of(b"ba").print);
    }

    #[test]
    fn hashing_is_fixed() {
        assert_eq!(fx_hash(&42u64), fx_hash(&42u64));
        assert_ne!(zobrist(0), zobrist(1));
    }
}
