//! Room in a shared `DashMap` before a known number of entries arrive.
//!
//! A map filled one insert at a time rehashes every entry each time it doubles: restoring 100 000
//! vehicles grew the board's and the registry's maps through seventeen doublings each, on the
//! path between loading the store and serving. `DashMap` reserves only through `&mut self`
//! (`try_reserve`), which a map shared behind an `Arc` never has; this does what `try_reserve`
//! does, shard by shard under each shard's own write lock.

use std::hash::{BuildHasher, Hash};

use dashmap::DashMap;

/// Makes room for `additional` more entries in `map` (spread over its shards by hash, so a few
/// shards may still grow once).
pub fn reserve<K: Hash + Eq, V, S: BuildHasher + Clone>(map: &DashMap<K, V, S>, additional: usize) {
    let shards = map.shards();
    // A little over an even share: the hash spreads keys only about evenly.
    let per_shard = additional.div_ceil(shards.len()) * 9 / 8;
    for shard in shards {
        // The table's own hash of a key: DashMap's `BuildHasher` over the key alone.
        shard.write().reserve(per_shard, |(key, _)| map.hasher().hash_one(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_maps_hold_and_find_every_entry_without_growing() {
        let map: DashMap<u64, u64> = DashMap::new();
        map.insert(7, 70);
        reserve(&map, 10_000);
        let room = map.capacity();
        assert!(room >= 10_000, "capacity {room}");
        for k in 0..10_000 {
            map.insert(k, k * 10);
        }
        assert_eq!(map.len(), 10_000);
        assert!((0..10_000).all(|k| map.get(&k).is_some_and(|v| *v == k * 10)));
        // Within one growth of the reservation: a shard the hash favoured may have doubled once.
        assert!(map.capacity() <= room * 2, "{} after reserving {room}", map.capacity());
    }
}
