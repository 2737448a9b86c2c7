//! Tail cache lookups, cuts and eviction.

use bytes::Bytes;

use super::TailCache;

fn bytes(from: u8, len: usize) -> Bytes {
    (0..len).map(|i| from.wrapping_add(i as u8)).collect()
}

#[test]
fn a_range_inside_one_append_is_a_shared_slice_and_across_appends_a_copy() {
    let cache = TailCache::new(1 << 20);
    cache.insert(0, 0, bytes(0, 100));
    cache.insert(0, 100, bytes(100, 50));
    assert_eq!(cache.get(0, 10, 20).unwrap(), bytes(10, 20));
    assert_eq!(cache.get(0, 90, 30).unwrap(), bytes(90, 30));
    assert_eq!(cache.get(0, 0, 150).unwrap(), bytes(0, 150));
    assert!(cache.get(0, 140, 20).is_none(), "past the end");
    assert!(cache.get(5, 0, 10).is_none(), "another segment");
    let mut header = [0u8; 12];
    assert!(cache.copy_to(0, 95, &mut header));
    assert_eq!(&header[..], &bytes(95, 12)[..]);
}

#[test]
fn segments_follow_each_other_and_old_chunks_go_past_the_capacity() {
    let cache = TailCache::new(250);
    cache.insert(0, 0, bytes(0, 100));
    cache.insert(0, 100, bytes(100, 100));
    cache.insert(200, 0, bytes(7, 100));
    assert_eq!(cache.len(), 200, "the oldest append was dropped");
    assert!(cache.get(0, 0, 10).is_none());
    assert_eq!(cache.get(0, 150, 50).unwrap(), bytes(150, 50));
    assert_eq!(cache.get(200, 0, 100).unwrap(), bytes(7, 100));
    assert!(
        cache.get(0, 150, 60).is_none(),
        "a range never spans segments"
    );
}

#[test]
fn a_cut_drops_what_lies_past_it_and_forget_drops_a_segment() {
    let cache = TailCache::new(1 << 20);
    cache.insert(0, 0, bytes(0, 100));
    cache.insert(0, 100, bytes(100, 100));
    cache.cut(0, 150);
    assert_eq!(cache.len(), 150);
    assert!(cache.get(0, 140, 20).is_none());
    cache.insert(0, 150, bytes(1, 10));
    assert_eq!(&cache.get(0, 140, 20).unwrap()[10..], &bytes(1, 10)[..]);
    cache.insert(160, 0, bytes(0, 10));
    cache.forget(0);
    assert_eq!(cache.len(), 10);
    assert!(cache.get(160, 0, 10).is_some());
    cache.forget(160);
    assert!(cache.is_empty());
}
