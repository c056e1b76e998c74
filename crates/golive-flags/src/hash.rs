//! MurmurHash3 (x86, 32-bit) and the rollout bucket built on it.
//!
//! Unleash buckets users with `murmur3_32("{groupId}:{userId}", 0)`, so we
//! must use the very same hash to agree with it user for user. The hasher
//! is incremental so that `group:id` (and `variant:group:id`) are hashed
//! from their parts, without formatting a string on every evaluation.

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

/// Number of buckets: 100 percent, each split in 100 sub-buckets, so that a
/// rollout can be set to 0.01 %.
pub(crate) const BUCKETS: u32 = 10_000;

/// MurmurHash3 x86_32 of `data` with `seed`, as in Austin Appleby's
/// reference `MurmurHash3_x86_32` (and Unleash's SDKs).
pub fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    let mut hasher = Murmur3::new(seed);
    hasher.write(data);
    hasher.finish()
}

/// The rollout bucket of `id` in `group`, in `0..10_000`.
///
/// With `h = murmur3_32("{group}:{id}", 0)`, the bucket is
/// `(h % 100) * 100 + (h / 100) % 100`: the percent is Unleash's
/// (`h % 100 + 1 <= p` ⇔ `h % 100 < p`), and the sub-bucket orders users
/// inside that percent. A user is enabled at percentage `p` iff
/// `bucket < round(p * 100)`, so for integer `p` we enable exactly the
/// users Unleash enables, and raising `p` (even by 0.01) never turns a user
/// off.
pub fn bucket(group: &str, id: &str) -> u32 {
    let h = hash_parts(&[group.as_bytes(), b":", id.as_bytes()]);
    (h % 100) * 100 + (h / 100) % 100
}

/// `murmur3_32` of the concatenation of `parts`, seed 0.
pub(crate) fn hash_parts(parts: &[&[u8]]) -> u32 {
    let mut hasher = Murmur3::new(0);
    for part in parts {
        hasher.write(part);
    }
    hasher.finish()
}

#[inline]
fn mix_k(k: u32) -> u32 {
    k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
}

#[inline]
fn mix_h(h: u32, k: u32) -> u32 {
    (h ^ mix_k(k))
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

/// Streaming state: the running hash, up to 3 bytes not yet forming a
/// block (little-endian, as the reference reads blocks), and the length.
struct Murmur3 {
    h: u32,
    tail: u32,
    tail_len: u32,
    len: u32,
}

impl Murmur3 {
    fn new(seed: u32) -> Self {
        Self {
            h: seed,
            tail: 0,
            tail_len: 0,
            len: 0,
        }
    }

    #[inline]
    fn write(&mut self, mut data: &[u8]) {
        // The reference takes the length as an int; truncation matches it.
        self.len = self.len.wrapping_add(data.len() as u32);
        // Complete a block left over from the previous part first, so that
        // parts hash exactly as their concatenation would.
        while self.tail_len > 0 {
            let Some((&byte, rest)) = data.split_first() else {
                return;
            };
            self.tail |= u32::from(byte) << (8 * self.tail_len);
            self.tail_len += 1;
            data = rest;
            if self.tail_len == 4 {
                self.h = mix_h(self.h, self.tail);
                self.tail = 0;
                self.tail_len = 0;
            }
        }
        let mut blocks = data.chunks_exact(4);
        for block in &mut blocks {
            let k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
            self.h = mix_h(self.h, k);
        }
        for (i, &byte) in blocks.remainder().iter().enumerate() {
            self.tail |= u32::from(byte) << (8 * i);
        }
        self.tail_len = blocks.remainder().len() as u32;
    }

    #[inline]
    fn finish(&self) -> u32 {
        let mut h = self.h;
        if self.tail_len > 0 {
            h ^= mix_k(self.tail);
        }
        h ^= self.len;
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^= h >> 16;
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_input_hashes_like_the_whole() {
        let whole = b"The quick brown fox jumps over the lazy dog";
        for a in 0..whole.len() {
            for b in a..whole.len() {
                let parts: [&[u8]; 3] = [&whole[..a], &whole[a..b], &whole[b..]];
                assert_eq!(hash_parts(&parts), murmur3_32(whole, 0), "split {a}/{b}");
            }
        }
    }

    #[test]
    fn bucket_is_in_range_and_matches_its_definition() {
        for i in 0..1000 {
            let id = format!("user-{i}");
            let h = murmur3_32(format!("g:{id}").as_bytes(), 0);
            let b = bucket("g", &id);
            assert!(b < BUCKETS);
            assert_eq!(b, (h % 100) * 100 + (h / 100) % 100);
        }
    }
}
