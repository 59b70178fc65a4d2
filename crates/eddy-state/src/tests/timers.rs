use super::{k, MAX_P};
use crate::*;
use eddy_core::keygroup::{assign_to_key_group, KeyGroupRange};

fn service() -> InternalTimerService<String, u32> {
    InternalTimerService::new(KeyGroupRange::all(MAX_P), MAX_P)
}

fn timer(key: &str, namespace: u32, timestamp: i64) -> InternalTimer<String, u32> {
    InternalTimer {
        key: k(key),
        namespace,
        timestamp,
    }
}

#[test]
fn event_timers_fire_in_timestamp_order() {
    let mut t = service();
    t.register_event_time_timer(k("a"), 0, 30);
    t.register_event_time_timer(k("b"), 0, 10);
    t.register_event_time_timer(k("a"), 1, 20);
    t.register_event_time_timer(k("a"), 0, 10);
    assert_eq!(t.next_event_timer(), Some(10));
    assert_eq!(t.poll_event_timer(5), None);
    // Equal timestamps fire in no particular order (as Flink's heap timers).
    let mut tens = vec![
        t.poll_event_timer(25).unwrap(),
        t.poll_event_timer(25).unwrap(),
    ];
    tens.sort_by(|x, y| x.key.cmp(&y.key));
    assert_eq!(tens, vec![timer("a", 0, 10), timer("b", 0, 10)]);
    assert_eq!(t.poll_event_timer(25), Some(timer("a", 1, 20)));
    assert_eq!(t.poll_event_timer(25), None);
    assert_eq!(t.next_event_timer(), Some(30));
    assert_eq!(t.num_event_timers(), 1);
    assert_eq!(t.poll_event_timer(i64::MAX), Some(timer("a", 0, 30)));
    assert_eq!(t.next_event_timer(), None);
}

#[test]
fn a_timestamp_fires_all_its_live_timers_once_whatever_was_deleted() {
    // Sorting a timestamp's timers when it starts firing must not put a deleted (stale)
    // entry in front: poll would take it for the end of the timers.
    let mut t = service();
    for i in 0..300u32 {
        t.register_event_time_timer(format!("key-{i}"), i % 5, 10);
    }
    t.register_event_time_timer(k("later"), 0, 11);
    let mut want = Vec::new();
    for i in 0..300u32 {
        if i % 3 == 0 {
            assert!(t.delete_event_time_timer(&format!("key-{i}"), &(i % 5), 10));
        } else {
            want.push(format!("key-{i}"));
        }
    }
    let mut fired = Vec::new();
    let mut last_group = 0;
    while let Some(timer) = t.poll_event_timer(10) {
        assert_eq!(timer.timestamp, 10);
        // One timestamp fires key group by key group.
        let group = assign_to_key_group(&timer.key, MAX_P);
        assert!(group >= last_group, "{group} after {last_group}");
        last_group = group;
        fired.push(timer.key);
    }
    fired.sort();
    want.sort();
    assert_eq!(fired, want);
    assert_eq!(t.next_event_timer(), Some(11));
    assert_eq!(t.num_event_timers(), 1);
}

#[test]
fn timers_of_key_groups_outside_the_range_are_kept_and_snapshotted() {
    // None should reach a subtask, but if one does it is kept, fires and is snapshotted under
    // its own key group rather than lost.
    let range = KeyGroupRange::for_operator_index(MAX_P, 2, 0);
    let mut t = InternalTimerService::<String, u32>::new(range, MAX_P);
    let outside = (0..)
        .map(|i| format!("key-{i}"))
        .find(|key| !range.contains(assign_to_key_group(key, MAX_P)))
        .unwrap();
    let inside = (0..)
        .map(|i| format!("key-{i}"))
        .find(|key| range.contains(assign_to_key_group(key, MAX_P)))
        .unwrap();
    assert!(t.register_event_time_timer(outside.clone(), 1, 7));
    assert!(!t.register_event_time_timer(outside.clone(), 1, 7));
    assert!(t.register_event_time_timer(inside.clone(), 1, 7));
    let snapshot = t.snapshot().unwrap();
    assert!(snapshot
        .key_groups
        .contains_key(&assign_to_key_group(&outside, MAX_P)));
    let mut owner = InternalTimerService::<String, u32>::new(
        KeyGroupRange::for_operator_index(MAX_P, 2, 1),
        MAX_P,
    );
    owner.restore(std::slice::from_ref(&snapshot)).unwrap();
    assert_eq!(
        owner.poll_event_timer(7).map(|t| t.key),
        Some(outside.clone())
    );
    assert!(t.delete_event_time_timer(&outside, &1, 7));
    assert_eq!(t.poll_event_timer(7).map(|t| t.key), Some(inside));
    assert_eq!(t.poll_event_timer(7), None);
}

#[test]
fn timers_are_deduplicated_per_domain() {
    let mut t = service();
    assert!(t.register_event_time_timer(k("a"), 0, 10));
    assert!(!t.register_event_time_timer(k("a"), 0, 10));
    assert!(t.register_event_time_timer(k("a"), 1, 10));
    assert!(t.register_processing_time_timer(k("a"), 0, 10));
    assert_eq!(t.num_event_timers(), 2);
    assert_eq!(t.num_processing_timers(), 1);
    let mut fired = vec![
        t.poll_event_timer(10).unwrap(),
        t.poll_event_timer(10).unwrap(),
    ];
    fired.sort_by_key(|t| t.namespace);
    assert_eq!(fired, vec![timer("a", 0, 10), timer("a", 1, 10)]);
    assert_eq!(t.poll_event_timer(10), None);
    // Firing does not touch the other domain.
    assert_eq!(t.poll_processing_timer(10), Some(timer("a", 0, 10)));
    assert_eq!(t.poll_processing_timer(10), None);
}

#[test]
fn deleted_timers_never_fire() {
    let mut t = service();
    for ts in [10, 20, 30, 40] {
        t.register_processing_time_timer(k("a"), 0, ts);
    }
    assert!(t.delete_processing_time_timer(&k("a"), &0, 10));
    assert!(!t.delete_processing_time_timer(&k("a"), &0, 10));
    assert!(!t.delete_processing_time_timer(&k("b"), &0, 20));
    assert_eq!(t.next_processing_timer(), Some(20));
    assert!(t.delete_processing_time_timer(&k("a"), &0, 30));
    assert_eq!(t.num_processing_timers(), 2);
    // Re-registering a deleted timer works and it fires once.
    assert!(t.register_processing_time_timer(k("a"), 0, 30));
    let fired: Vec<i64> = std::iter::from_fn(|| t.poll_processing_timer(100))
        .map(|t| t.timestamp)
        .collect();
    assert_eq!(fired, vec![20, 30, 40]);
}

#[test]
fn many_deletions_compact_the_heap() {
    let mut t = service();
    for ts in 0..10_000 {
        t.register_event_time_timer(k("a"), 0, ts);
    }
    for ts in (0..10_000).filter(|ts| ts % 100 != 99) {
        assert!(t.delete_event_time_timer(&k("a"), &0, ts));
    }
    assert_eq!(t.num_event_timers(), 100);
    assert_eq!(t.next_event_timer(), Some(99));
    let fired: Vec<i64> = std::iter::from_fn(|| t.poll_event_timer(i64::MAX))
        .map(|t| t.timestamp)
        .collect();
    assert_eq!(fired, (0..100).map(|i| i * 100 + 99).collect::<Vec<_>>());
}

#[test]
fn timers_registered_while_firing_fire_in_the_same_advance() {
    let mut t = service();
    t.register_event_time_timer(k("a"), 0, 10);
    t.register_event_time_timer(k("a"), 0, 60);
    let mut fired = Vec::new();
    while let Some(timer) = t.poll_event_timer(100) {
        if timer.timestamp == 10 {
            t.register_event_time_timer(k("b"), 0, 50);
            t.register_event_time_timer(k("b"), 0, 150);
            // A timer in the past fires too.
            t.register_event_time_timer(k("c"), 0, 5);
        }
        fired.push((timer.key, timer.timestamp));
    }
    assert_eq!(
        fired,
        vec![(k("a"), 10), (k("c"), 5), (k("b"), 50), (k("a"), 60)]
    );
    assert_eq!(t.next_event_timer(), Some(150));
}

#[test]
fn timers_snapshot_and_restore_by_key_group() {
    let mut t = service();
    for i in 0..500i64 {
        t.register_event_time_timer(format!("key-{i}"), (i % 3) as u32, 1_000 - i);
        t.register_event_time_timer(format!("key-{i}"), 7, 5);
        t.register_processing_time_timer(format!("key-{i}"), 0, i);
    }
    let snapshot =
        TimerServiceSnapshot::from_bytes(&t.snapshot().unwrap().to_bytes().unwrap()).unwrap();

    let parallelism = 3;
    let mut restored: Vec<InternalTimerService<String, u32>> = (0..parallelism)
        .map(|i| {
            let mut s = InternalTimerService::new(
                KeyGroupRange::for_operator_index(MAX_P, parallelism, i),
                MAX_P,
            );
            s.restore(std::slice::from_ref(&snapshot)).unwrap();
            s
        })
        .collect();
    assert_eq!(
        restored.iter().map(|s| s.num_event_timers()).sum::<usize>(),
        1_000
    );
    assert_eq!(
        restored
            .iter()
            .map(|s| s.num_processing_timers())
            .sum::<usize>(),
        500
    );
    let mut all_fives = Vec::new();
    for s in &mut restored {
        let range = s.key_group_range();
        let mut last = i64::MIN;
        let mut fives = Vec::new();
        while let Some(timer) = s.poll_event_timer(i64::MAX) {
            assert!(range.contains(assign_to_key_group(&timer.key, MAX_P)));
            assert!(timer.timestamp >= last, "firing order survives restore");
            last = timer.timestamp;
            if timer.timestamp == 5 {
                fives.push(timer.key.clone());
            } else {
                let i: i64 = timer.key["key-".len()..].parse().unwrap();
                assert_eq!(timer.timestamp, 1_000 - i);
                assert_eq!(timer.namespace, (i % 3) as u32);
            }
        }
        all_fives.extend(fives);
    }
    // Every timer of the shared timestamp fired exactly once, in whichever order.
    all_fives.sort();
    let mut want: Vec<String> = (0..500).map(|i| format!("key-{i}")).collect();
    want.sort();
    assert_eq!(all_fives, want);

    let mut wrong_ns = InternalTimerService::<String, u64>::new(KeyGroupRange::all(MAX_P), MAX_P);
    assert!(matches!(
        wrong_ns.restore(std::slice::from_ref(&snapshot)),
        Err(StateError::TypeMismatch {
            what: "timer namespace",
            ..
        })
    ));
    let mut wrong_max = InternalTimerService::<String, u32>::new(KeyGroupRange::all(64), 64);
    assert!(matches!(
        wrong_max.restore(&[snapshot]),
        Err(StateError::MaxParallelismMismatch { .. })
    ));
}

/// While a timestamp fires, `peek_event_timer_ahead(n)` names the timer that fires `n + 1`
/// polls later (what the window operator prefetches state for), skipping none.
#[test]
fn peek_ahead_names_the_timers_about_to_fire() {
    let mut t = service();
    for i in 0..200u32 {
        t.register_event_time_timer(k(&format!("key{i}")), i % 3, 50);
    }
    t.register_event_time_timer(k("later"), 0, 60);
    assert_eq!(t.peek_event_timer_ahead(0), None, "nothing fires yet");
    let mut fired = vec![t.poll_event_timer(50).unwrap()];
    let mut peeked = Vec::new();
    loop {
        peeked.push(
            t.peek_event_timer_ahead(2)
                .map(|(key, ns)| (key.clone(), *ns)),
        );
        match t.poll_event_timer(50) {
            Some(timer) => fired.push(timer),
            None => break,
        }
    }
    assert_eq!(fired.len(), 200);
    // After the i-th poll, the peek named the timer polled third after it.
    for (i, p) in peeked.iter().enumerate() {
        let expected = fired.get(i + 3).map(|f| (f.key.clone(), f.namespace));
        assert_eq!(*p, expected, "peek after poll {i}");
    }
}
