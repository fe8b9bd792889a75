//! Giving memory back after churn: maps that held many connections shrink once most of them are
//! gone (a `HashMap` keeps its largest table otherwise: two that once held 10 000 connection
//! tokens keep ~1 MiB each for good).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

/// Tables at most this large are left alone.
const SMALL: usize = 64;

/// Whether a table of `capacity` holding `len` entries should shrink: it is large and under a
/// quarter full. Shrinking to twice the length keeps removals and insertions amortized O(1).
fn sparse(len: usize, capacity: usize) -> bool {
    capacity > SMALL && len < capacity / 4
}

/// Shrinks `map` to twice its length when it is large and under a quarter full.
pub(crate) fn shrink_map<K: Eq + Hash, V, S: BuildHasher>(map: &mut HashMap<K, V, S>) {
    if sparse(map.len(), map.capacity()) {
        map.shrink_to(map.len() * 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mostly_empty_large_map_shrinks_and_a_small_one_is_left_alone() {
        let mut map: HashMap<u32, u32> = (0..10_000).map(|i| (i, i)).collect();
        map.retain(|&k, _| k < 100);
        shrink_map(&mut map);
        assert!(map.capacity() < 1_000, "capacity {}", map.capacity());
        assert_eq!(map.len(), 100);

        let mut small: HashMap<u32, u32> = (0..50).map(|i| (i, i)).collect();
        let before = small.capacity();
        small.clear();
        shrink_map(&mut small);
        assert_eq!(small.capacity(), before);
    }
}
