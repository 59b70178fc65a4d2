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
fn event_timers_fire_in_timestamp_then_registration_order() {
    let mut t = service();
    t.register_event_time_timer(k("a"), 0, 30);
    t.register_event_time_timer(k("b"), 0, 10);
    t.register_event_time_timer(k("a"), 1, 20);
    t.register_event_time_timer(k("a"), 0, 10);
    assert_eq!(t.next_event_timer(), Some(10));
    assert_eq!(t.poll_event_timer(5), None);
    assert_eq!(t.poll_event_timer(25), Some(timer("b", 0, 10)));
    assert_eq!(t.poll_event_timer(25), Some(timer("a", 0, 10)));
    assert_eq!(t.poll_event_timer(25), Some(timer("a", 1, 20)));
    assert_eq!(t.poll_event_timer(25), None);
    assert_eq!(t.next_event_timer(), Some(30));
    assert_eq!(t.num_event_timers(), 1);
    assert_eq!(t.poll_event_timer(i64::MAX), Some(timer("a", 0, 30)));
    assert_eq!(t.next_event_timer(), None);
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
    assert_eq!(t.poll_event_timer(10), Some(timer("a", 0, 10)));
    assert_eq!(t.poll_event_timer(10), Some(timer("a", 1, 10)));
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
        // Equal timestamps keep registration order within a key group.
        let mut by_group: std::collections::BTreeMap<usize, Vec<i64>> = Default::default();
        for key in fives {
            let i: i64 = key["key-".len()..].parse().unwrap();
            by_group
                .entry(assign_to_key_group(&key, MAX_P))
                .or_default()
                .push(i);
        }
        for ids in by_group.values() {
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        }
    }

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
