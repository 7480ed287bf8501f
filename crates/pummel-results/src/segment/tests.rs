//! Segments of random sequences partition the items exactly, spread them evenly, and `i/N`
//! is what it always was.

use proptest::prelude::*;

use super::*;

/// Every segment of `sequence`.
fn segments_of(sequence: &Sequence) -> Vec<Segment> {
    (0..sequence.len())
        .map(|k| {
            let (from, to) = sequence.segment(k);
            Segment::in_sequence(from, to, sequence.clone()).unwrap()
        })
        .collect()
}

/// A sequence cut at random points of a random denominator (up to 60).
fn any_sequence() -> impl Strategy<Value = Sequence> {
    (2u64..60).prop_flat_map(|den| {
        proptest::collection::btree_set(1..den, 0..8).prop_map(move |cuts| {
            let mut points = vec![Ratio::ZERO];
            points.extend(cuts.into_iter().map(|c| Ratio::new(c, den).unwrap()));
            points.push(Ratio::ONE);
            Sequence::from_points(points).unwrap()
        })
    })
}

proptest! {
    /// Each item below `total` belongs to exactly one segment; each segment's items, in its
    /// own order, are the ones it owns, rising; the shares add up to `total`.
    #[test]
    fn segments_partition_the_items(sequence in any_sequence(), total in 0u64..400) {
        let segments = segments_of(&sequence);
        let mut owner = vec![None; total as usize];
        for (k, segment) in segments.iter().enumerate() {
            let share = segment.share(total);
            let items: Vec<u64> = (0..share).map(|j| segment.item(j)).collect();
            prop_assert!(items.windows(2).all(|w| w[0] < w[1]), "rising");
            prop_assert!(items.iter().all(|&g| g < total));
            prop_assert!(share == 0 || segment.item(share) >= total, "share counts every item below total");
            for (j, &g) in items.iter().enumerate() {
                prop_assert_eq!(segment.local(g), Some(j as u64));
                prop_assert_eq!(owner[g as usize].replace(k), None, "item {} owned twice", g);
            }
        }
        prop_assert!(owner.iter().all(Option::is_some), "every item owned: {:?}", owner);
        let shares: u64 = segments.iter().map(|s| s.share(total)).sum();
        prop_assert_eq!(shares, total);
        for segment in &segments {
            for g in 0..total {
                prop_assert_eq!(segment.owns(g), owner[g as usize] == segments.iter().position(|s| s == segment));
            }
        }
    }

    /// A segment owns its length of every period, and its items are never taken early: its
    /// `c`-th item of a block is at or after `c · period / owned` (its even spacing), so no
    /// segment runs ahead of its share. The largest segment is never late either (its gaps are
    /// at most the spacing, rounded up). Smaller segments can be late when larger ones are due
    /// at the same items (k6's algorithm deals out the largest first): see
    /// `k6s_striping_can_clump_a_small_segment`.
    #[test]
    fn items_are_never_early_and_the_largest_segment_never_late(sequence in any_sequence()) {
        let segments = segments_of(&sequence);
        let largest = segments.iter().map(Segment::length).max().unwrap();
        let first_largest = segments.iter().position(|s| s.length() == largest).unwrap();
        for (k, segment) in segments.iter().enumerate() {
            let period = segment.period();
            let offsets = segment.offsets();
            let length = segment.length();
            let owned = offsets.len() as u64;
            prop_assert_eq!(owned * length.denom(), length.numer() * period);
            for (c, &offset) in offsets.iter().enumerate() {
                let due = (c as u64 * period).div_ceil(owned);
                prop_assert!(offset >= due, "{}: item {} at {}, due at {}", segment, c, offset, due);
                if k == first_largest {
                    prop_assert_eq!(offset, due, "{}: the largest segment takes its items when due", segment);
                }
            }
        }
    }

    /// Thread shares of every segment add up to the whole, whatever each segment's threads.
    #[test]
    fn thread_shares_add_up(sequence in any_sequence(), total in 0u64..1000, threads in 1usize..5) {
        let sum: u64 = segments_of(&sequence)
            .iter()
            .map(|s| (0..threads).map(|t| s.thread_share(total, threads, t)).sum::<u64>())
            .sum();
        prop_assert_eq!(sum, total);
    }
}

/// `i/N` owns what it always owned: item `g` when `g mod N = i − 1`, its `j`-th item being
/// `j·N + i − 1`, its share `total/N` plus one for the first `total mod N` parts.
#[test]
fn parts_keep_their_old_striping() {
    for n in 1..=7u64 {
        for i in 1..=n {
            let segment = Segment::parse(&format!("{i}/{n}"), None).unwrap();
            assert_eq!(segment.to_string(), format!("{i}/{n}"));
            assert_eq!(Segment::part(i - 1, n), segment, "as a coordinator hands it out");
            assert_eq!(segment.sequence_label(), None);
            for j in 0..50 {
                assert_eq!(segment.item(j), j * n + i - 1);
            }
            for g in 0..50 {
                assert_eq!(segment.owns(g), g % n == i - 1);
            }
            for total in 0..50 {
                assert_eq!(segment.share(total), total / n + u64::from(i - 1 < total % n));
            }
            assert_eq!(segment.fraction(), 1.0 / n as f64);
            // The same part as a range of the equal sequence deals out the same items.
            let range = Segment::parse(&format!("{}/{n}:{i}/{n}", i - 1), Some(&Sequence::equal(n).to_string()));
            let range = range.unwrap();
            assert!((0..50).all(|j| range.item(j) == segment.item(j)));
        }
    }
    // A huge N needs no table.
    let far = Segment::parse("999999999/1000000000", None).unwrap();
    assert_eq!(far.item(2), 2_000_000_000 + 999_999_998);
    assert!(far.owns(999_999_998) && !far.owns(0));
}

#[test]
fn ranges_read_as_k6_reads_them() {
    let s = Segment::parse("1/4:1/2", Some("0,1/4,1/2,1")).unwrap();
    assert_eq!((s.to_string(), s.sequence_label()), ("1/4:1/2".into(), Some("0,1/4,1/2,1".into())));
    let alike = ["0.25:0.5", "25%:50%", "2/8:50%"].map(|t| Segment::parse(t, Some("0,0.25,50%,1")).unwrap());
    assert!(alike.iter().all(|a| *a == s));
    // Without a sequence, the sequence is 0,FROM,TO,1.
    let alone = Segment::parse("1/4:1/2", None).unwrap();
    assert_eq!(alone.sequence_label().as_deref(), Some("0,1/4,1/2,1"));
    assert_eq!(Segment::parse("0:1/2", None).unwrap().sequence_label().as_deref(), Some("0,1/2,1"));
    assert!(Segment::parse("0:1", None).unwrap().is_whole());
    assert!(Segment::whole().is_whole());
    assert_eq!(s.fraction(), 0.25);
    // k6's arithmetic: 1/4:1/2 of 0,1/4,1/2,1 owns offset 3 of every 4.
    assert_eq!((s.period(), s.offsets()), (4, &[3u64][..]));
    assert_eq!((0..5).map(|t| s.share(t)).collect::<Vec<_>>(), [0, 0, 0, 0, 1]);
    // i/N inside a sequence is the range (i−1)/N:i/N.
    let half = Segment::parse("2/2", Some("0,1/4,1/2,1")).unwrap();
    assert_eq!((half.to_string(), half.offsets()), ("1/2:1".into(), &[0u64, 2][..]));
}

#[test]
fn bad_segments_are_refused_saying_why() {
    for (text, sequence, why) in [
        ("1/2:1/4", None, "is empty"),
        ("1/2:1/2", None, "is empty"),
        ("0:3/2", None, "above 1"),
        ("0:x", None, "not a number"),
        ("-1/4:1/2", None, "not a number"),
        ("1", None, "expected i/N"),
        ("0/2", None, "expected i/N"),
        ("3/2", None, "expected i/N"),
        ("50%", None, "expected i/N"),
        ("1/4:1/2", Some("0,1/3,2/3,1"), "not in the sequence 0,1/3,2/3,1"),
        ("0:1/2", Some("0,1/4,1/2,1"), "not in the sequence"),
        ("0:1/2", Some("0,1/2,1/4,1"), "does not come after"),
        ("0:1/2", Some("1/2"), "fewer than two points"),
    ] {
        let e = Segment::parse(text, sequence).unwrap_err().to_string();
        assert!(e.contains(why), "{text} {sequence:?}: {e}");
    }
}

#[test]
fn written_in_plans_as_given() {
    let parts = serde_json::to_value(Segment::parse("2/3", None).unwrap()).unwrap();
    assert_eq!(parts, serde_json::json!({ "index": 1, "count": 3 }));
    let range = serde_json::to_value(Segment::parse("1/3:2/3", None).unwrap()).unwrap();
    assert_eq!(range, serde_json::json!({ "from": "1/3", "to": "2/3", "sequence": "0,1/3,2/3,1" }));
}

/// k6's own cases (`TestGetStripedOffsets`, written there as a start and the gaps after it).
#[test]
fn k6s_striped_offsets() {
    let of = |segment: &str, sequence: Option<&str>| {
        let s = Segment::parse(segment, sequence).unwrap();
        (s.offsets().to_vec(), s.period())
    };
    let seq = Some("0,0.3,0.5,0.6,0.7,0.8,0.9,1");
    assert_eq!(of("0:0.3", seq), (vec![0, 4, 7], 10));
    assert_eq!(of("0.3:0.5", seq), (vec![1, 5], 10));
    assert_eq!(of("0.5:0.6", seq), (vec![2], 10));
    assert_eq!(of("0.6:0.7", seq), (vec![3], 10));
    assert_eq!(of("0.8:0.9", seq), (vec![8], 10));
    assert_eq!(of("0.9:1", seq), (vec![9], 10));
    let seq = Some("0,0.2,0.5,0.6,0.7,0.8,0.9,1");
    assert_eq!(of("0.9:1", seq), (vec![9], 10));
    assert_eq!(of("0:0.2", seq), (vec![1, 5], 10));
    assert_eq!(of("0.6:0.7", seq), (vec![3], 10));
    assert_eq!(of("0:0.2", Some("0,0.2,0.5")), (vec![3, 9], 10));
    assert_eq!(of("0.2:0.5", Some("0,0.2,0.5")), (vec![1, 5, 7], 10));
    assert_eq!(of("0:2/5", Some("0,2/5,4/5")), (vec![0, 3], 5));
    assert_eq!(of("2/5:4/5", Some("0,2/5,4/5")), (vec![1, 4], 5));
    assert_eq!(of("0:0.2", None), (vec![1], 5));
    assert_eq!(of("0:2/10", None), (vec![1], 5));
    assert_eq!(of("0:0.4", None), (vec![1, 3], 5));
    assert_eq!(of("2/5:4/5", None), (vec![1, 4], 5));
    assert_eq!(of("1/10:5/10", None), (vec![1, 3, 5, 9], 10));
}

/// What k6's algorithm does with a small segment among larger ones due at the same items: it
/// takes what is left, which may be three items in a row (here 53, 54, 55 of every 56). The
/// segments still partition the items exactly; only their spacing suffers.
#[test]
fn k6s_striping_can_clump_a_small_segment() {
    let sequence = "0,1/8,15/56,9/28,1/2,39/56,3/4,51/56,1";
    assert_eq!(Segment::parse("39/56:3/4", Some(sequence)).unwrap().offsets(), [53, 54, 55]);
}
