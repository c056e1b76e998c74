//! `murmur3_32` against published vectors and against the `murmur3` crate
//! that Unleash's yggdrasil uses; `bucket`'s monotonicity in the percentage.

use golive_flags::{bucket, murmur3_32};
use unleash_yggdrasil::strategy_parsing::normalized_hash;

/// Vectors checked against the reference implementation (Python's `mmh3`,
/// a binding of Appleby's C++ `MurmurHash3_x86_32`).
#[test]
fn known_vectors() {
    let vectors: &[(&[u8], u32, u32)] = &[
        (b"", 0, 0),
        (b"", 1, 0x514e_28b7),
        (b"", 0x9747_b28c, 0xebb6_c228),
        (b"a", 0, 0x3c25_69b2),
        (b"ab", 0, 0x9bbf_d75f),
        (b"abc", 0, 0xb3dd_93fa),
        (b"abcd", 0, 0x43ed_676a),
        (b"abcd", 0x9747_b28c, 0xf047_8627),
        (b"hello", 0, 0x248b_fa47),
        (b"hello", 1, 0xbb4a_bcad),
        (
            b"The quick brown fox jumps over the lazy dog",
            0,
            0x2e4f_f723,
        ),
        (
            b"The quick brown fox jumps over the lazy dog",
            0x9747_b28c,
            0x2fa8_26cd,
        ),
        (b"new_checkout:user-42", 0, 0xe4b4_c6c3),
    ];
    for &(data, seed, expected) in vectors {
        assert_eq!(
            murmur3_32(data, seed),
            expected,
            "{:?} seed {seed:#x}",
            String::from_utf8_lossy(data)
        );
    }
}

/// yggdrasil's `normalized_hash(group, id, m, seed)` is
/// `murmur3_32("{group}:{id}", seed) % m + 1`; with `m = u32::MAX` that is
/// the raw hash plus one (for every hash but `u32::MAX` itself).
#[test]
fn agrees_with_the_murmur3_crate_used_by_unleash() {
    for i in 0..5_000u32 {
        let id = format!("user-{i}-{}", "x".repeat((i % 13) as usize));
        for (group, seed) in [("new_checkout", 0), ("g", 86_028_157), ("", 7)] {
            let ours = murmur3_32(format!("{group}:{id}").as_bytes(), seed);
            let theirs = normalized_hash(group, &id, u32::MAX, seed).expect("hashes");
            if ours != u32::MAX {
                assert_eq!(ours + 1, theirs, "{group}:{id} seed {seed}");
            }
        }
    }
}

/// A user enabled at some percentage stays enabled at every higher one,
/// fractional steps included, and the share enabled tracks the percentage.
#[test]
fn buckets_are_monotonic_in_the_percentage() {
    let ladder = [
        0.01, 0.1, 0.5, 1.0, 1.01, 2.5, 5.0, 10.0, 12.34, 25.0, 33.33, 50.0, 75.5, 99.0, 99.99,
        100.0,
    ];
    let buckets: Vec<u32> = (0..10_000)
        .map(|i| bucket("new_checkout", &format!("user-{i}")))
        .collect();
    let mut previous: Vec<bool> = vec![false; buckets.len()];
    for p in ladder {
        let threshold = (p * 100.0_f64).round() as u32;
        let enabled: Vec<bool> = buckets.iter().map(|&b| b < threshold).collect();
        for (user, (&before, &now)) in previous.iter().zip(&enabled).enumerate() {
            assert!(
                !before || now,
                "user-{user} was on below {p}% and is off at {p}%"
            );
        }
        let share = enabled.iter().filter(|&&on| on).count() as f64 / 100.0;
        assert!(
            (share - p).abs() <= 1.5 + p * 0.1,
            "{share}% enabled at {p}%"
        );
        previous = enabled;
    }
    assert!(previous.iter().all(|&on| on), "everyone is on at 100%");
}

#[test]
fn integer_percentages_are_unleash_percentages() {
    for i in 0..10_000 {
        let id = format!("{i}");
        let normalized = normalized_hash("grp", &id, 100, 0).expect("hashes");
        let b = bucket("grp", &id);
        for p in [1u32, 5, 25, 50, 99] {
            assert_eq!(normalized <= p, b < p * 100, "user {id} at {p}%");
        }
    }
}
