use super::{backend, k};
use crate::*;
use std::time::Duration;

fn ttl(ms: u64, update: UpdateType, visibility: StateVisibility) -> StateTtlConfig {
    StateTtlConfig::new_builder(Duration::from_millis(ms))
        .set_update_type(update)
        .set_state_visibility(visibility)
        .build()
}

fn default_ttl(ms: u64) -> StateTtlConfig {
    StateTtlConfig::new_builder(Duration::from_millis(ms)).build()
}

#[test]
fn builder_defaults_match_flink() {
    let c = default_ttl(5);
    assert_eq!(c.ttl(), Duration::from_millis(5));
    assert_eq!(c.update_type(), UpdateType::OnCreateAndWrite);
    assert_eq!(c.state_visibility(), StateVisibility::NeverReturnExpired);
    // Flink's default background cleanup for heap state: 5 entries per access.
    let cleanup = c.cleanup_strategies();
    assert!(!cleanup.in_full_snapshot());
    assert_eq!(
        cleanup.incremental(),
        Some(IncrementalCleanup {
            cleanup_size: 5,
            run_cleanup_for_every_record: false
        })
    );
}

/// Writes `n` keys of value, list and map state with `config` at time 0, then moves the clock
/// past their TTL.
fn expired_keys(
    config: StateTtlConfig,
    n: u32,
) -> (
    KeyedStateBackend<String>,
    ValueState<u32>,
    ListState<u32>,
    MapState<u32, u32>,
) {
    let mut b = backend();
    let v = b
        .get_state(&ValueStateDescriptor::new("v").with_time_to_live(config))
        .unwrap();
    let l = b
        .get_list_state(&ListStateDescriptor::new("l").with_time_to_live(config))
        .unwrap();
    let m = b
        .get_map_state(&MapStateDescriptor::new("m").with_time_to_live(config))
        .unwrap();
    b.set_current_time(0);
    for i in 0..n {
        b.set_current_key(format!("old-{i}"));
        v.update(&mut b, i).unwrap();
        l.add(&mut b, i).unwrap();
        m.put(&mut b, i, i).unwrap();
    }
    assert_eq!(b.num_keys(), 3 * n as usize);
    b.set_current_time(1_000);
    (b, v, l, m)
}

#[test]
fn incremental_cleanup_removes_state_of_keys_never_read_again() {
    // Flink's default strategy: accesses to one live key clean every other key's expired state.
    let n = 2_000;
    let (mut b, v, _, _) = expired_keys(default_ttl(100), n);
    b.set_current_key(k("live"));
    // Each access earns 5 checks: 3 states x 2000 entries need about 1200 accesses per state.
    for i in 0..3_000 {
        v.update(&mut b, i).unwrap();
    }
    assert_eq!(
        b.num_keys(),
        1 + 2 * n as usize,
        "value state swept, list and map untouched"
    );
    // With run_cleanup_for_every_record, selecting keys alone cleans every state.
    let config = StateTtlConfig::new_builder(Duration::from_millis(100))
        .cleanup_incrementally(10, true)
        .build();
    let (mut b, ..) = expired_keys(config, n);
    for i in 0..1_000 {
        b.set_current_key(format!("reader-{i}"));
    }
    assert_eq!(b.num_keys(), 0);
    // Without background cleanup nothing is removed until read.
    let config = StateTtlConfig::new_builder(Duration::from_millis(100))
        .disable_cleanup_in_background()
        .build();
    let (mut b, v, ..) = expired_keys(config, n);
    b.set_current_key(k("live"));
    for i in 0..3_000 {
        v.update(&mut b, i).unwrap();
    }
    assert_eq!(b.num_keys(), 1 + 3 * n as usize);
}

#[test]
fn full_snapshot_cleanup_keeps_expired_state_out_of_checkpoints() {
    let config = StateTtlConfig::new_builder(Duration::from_millis(100))
        .disable_cleanup_in_background()
        .cleanup_full_snapshot()
        .build();
    let (mut b, v, l, m) = expired_keys(config, 500);
    b.set_current_key(k("live"));
    v.update(&mut b, 1).unwrap();
    let snapshot = b.snapshot().unwrap();
    assert_eq!(b.num_keys(), 1);
    let mut restored = backend();
    restored.restore(&[snapshot]).unwrap();
    let _ = restored
        .get_state(&ValueStateDescriptor::<u32>::new("v").with_time_to_live(config))
        .unwrap();
    let _ = restored
        .get_list_state(&ListStateDescriptor::<u32>::new("l").with_time_to_live(config))
        .unwrap();
    let _ = restored
        .get_map_state(&MapStateDescriptor::<u32, u32>::new("m").with_time_to_live(config))
        .unwrap();
    assert_eq!(restored.num_keys(), 1);
    let _ = (l, m);
}

#[test]
fn value_expires_on_create_and_write() {
    let mut b = backend();
    let mut d = ValueStateDescriptor::<u64>::new("v");
    d.enable_time_to_live(default_ttl(100));
    let v = b.get_state(&d).unwrap();
    b.set_current_key(k("a"));
    b.set_current_time(0);
    v.update(&mut b, 1).unwrap();
    b.set_current_time(99);
    assert_eq!(v.value(&mut b).unwrap(), Some(1));
    // Reads do not refresh with OnCreateAndWrite.
    b.set_current_time(100);
    assert_eq!(v.value(&mut b).unwrap(), None);
    assert_eq!(b.num_keys(), 0, "an expired entry is removed when read");
    // A write restarts the time to live.
    v.update(&mut b, 2).unwrap();
    b.set_current_time(150);
    v.update(&mut b, 3).unwrap();
    b.set_current_time(249);
    assert_eq!(v.value(&mut b).unwrap(), Some(3));
}

#[test]
fn value_refreshes_on_read_and_write() {
    let mut b = backend();
    let d = ValueStateDescriptor::<u64>::new("v").with_time_to_live(ttl(
        100,
        UpdateType::OnReadAndWrite,
        StateVisibility::NeverReturnExpired,
    ));
    let v = b.get_state(&d).unwrap();
    b.set_current_key(k("a"));
    b.set_current_time(0);
    v.update(&mut b, 1).unwrap();
    b.set_current_time(60);
    assert_eq!(v.value(&mut b).unwrap(), Some(1));
    b.set_current_time(150);
    assert_eq!(v.value(&mut b).unwrap(), Some(1));
    b.set_current_time(250);
    assert_eq!(v.value(&mut b).unwrap(), None);
}

#[test]
fn return_expired_if_not_cleaned_up_returns_it_once() {
    let mut b = backend();
    let d = ValueStateDescriptor::<u64>::new("v").with_time_to_live(ttl(
        10,
        UpdateType::OnCreateAndWrite,
        StateVisibility::ReturnExpiredIfNotCleanedUp,
    ));
    let v = b.get_state(&d).unwrap();
    b.set_current_key(k("a"));
    v.update(&mut b, 1).unwrap();
    b.set_current_time(1_000);
    assert_eq!(v.value(&mut b).unwrap(), Some(1));
    assert_eq!(v.value(&mut b).unwrap(), None);
}

#[test]
fn list_elements_expire_individually() {
    let mut b = backend();
    let d = ListStateDescriptor::<u32>::new("l").with_time_to_live(default_ttl(100));
    let l = b.get_list_state(&d).unwrap();
    b.set_current_key(k("a"));
    b.set_current_time(0);
    l.add(&mut b, 1).unwrap();
    b.set_current_time(50);
    l.add_all(&mut b, vec![2, 3]).unwrap();
    b.set_current_time(120);
    assert_eq!(l.get(&mut b).unwrap(), vec![2, 3]);
    b.set_current_time(150);
    assert!(l.get(&mut b).unwrap().is_empty());
    assert_eq!(b.num_keys(), 0);
}

#[test]
fn list_read_refreshes_elements_with_on_read_and_write() {
    let mut b = backend();
    let d = ListStateDescriptor::<u32>::new("l").with_time_to_live(ttl(
        100,
        UpdateType::OnReadAndWrite,
        StateVisibility::NeverReturnExpired,
    ));
    let l = b.get_list_state(&d).unwrap();
    b.set_current_key(k("a"));
    l.add(&mut b, 1).unwrap();
    b.set_current_time(90);
    assert_eq!(l.get(&mut b).unwrap(), vec![1]);
    b.set_current_time(180);
    assert_eq!(l.get(&mut b).unwrap(), vec![1]);
}

#[test]
fn map_entries_expire_individually() {
    let mut b = backend();
    let d = MapStateDescriptor::<u8, u8>::new("m").with_time_to_live(default_ttl(100));
    let m = b.get_map_state(&d).unwrap();
    b.set_current_key(k("a"));
    b.set_current_time(0);
    m.put(&mut b, 1, 1).unwrap();
    b.set_current_time(50);
    m.put(&mut b, 2, 2).unwrap();
    b.set_current_time(100);
    assert_eq!(m.get(&mut b, &1).unwrap(), None);
    assert!(!m.contains(&mut b, &1).unwrap());
    assert_eq!(m.entries(&mut b).unwrap(), vec![(2, 2)]);
    b.set_current_time(150);
    assert!(m.is_empty(&mut b).unwrap());
    assert_eq!(b.num_keys(), 0);
}

#[test]
fn map_return_expired_and_refresh_on_read() {
    let mut b = backend();
    let d = MapStateDescriptor::<u8, u8>::new("m").with_time_to_live(ttl(
        100,
        UpdateType::OnReadAndWrite,
        StateVisibility::ReturnExpiredIfNotCleanedUp,
    ));
    let m = b.get_map_state(&d).unwrap();
    b.set_current_key(k("a"));
    m.put_all(&mut b, vec![(1, 10), (2, 20)]).unwrap();
    b.set_current_time(90);
    assert_eq!(m.get(&mut b, &1).unwrap(), Some(10));
    b.set_current_time(150);
    // 1 was refreshed at 90; 2 expired at 100 but is returned once.
    let mut all = m.entries(&mut b).unwrap();
    all.sort();
    assert_eq!(all, vec![(1, 10), (2, 20)]);
    assert_eq!(m.keys(&mut b).unwrap(), vec![1]);
}

#[test]
fn reducing_and_aggregating_restart_after_expiry() {
    struct Count;
    impl AggregateFunction<u8, u64, u64> for Count {
        fn create_accumulator(&self) -> u64 {
            0
        }
        fn add(&self, _: u8, acc: &mut u64) {
            *acc += 1;
        }
        fn get_result(&self, acc: &u64) -> u64 {
            *acc
        }
        fn merge(&self, a: u64, b: u64) -> u64 {
            a + b
        }
    }
    let mut b = backend();
    let r = b
        .get_reducing_state(
            &ReducingStateDescriptor::new("r", |a: u64, b: u64| a + b)
                .with_time_to_live(default_ttl(10)),
        )
        .unwrap();
    let a = b
        .get_aggregating_state(
            &AggregatingStateDescriptor::new("a", Count).with_time_to_live(default_ttl(10)),
        )
        .unwrap();
    b.set_current_key(k("a"));
    r.add(&mut b, 5).unwrap();
    a.add(&mut b, 0).unwrap();
    a.add(&mut b, 0).unwrap();
    b.set_current_time(5);
    r.add(&mut b, 5).unwrap();
    assert_eq!(r.get(&mut b).unwrap(), Some(10));
    assert_eq!(a.get(&mut b).unwrap(), Some(2));
    b.set_current_time(20);
    assert_eq!(a.get(&mut b).unwrap(), None);
    r.add(&mut b, 1).unwrap();
    a.add(&mut b, 0).unwrap();
    assert_eq!(r.get(&mut b).unwrap(), Some(1));
    assert_eq!(a.get(&mut b).unwrap(), Some(1));
}

#[test]
fn cleanup_expired_state_removes_unread_entries() {
    let mut b = backend();
    // Without background cleanup, so only the full scan removes anything.
    let no_background = || {
        StateTtlConfig::new_builder(Duration::from_millis(10))
            .disable_cleanup_in_background()
            .build()
    };
    let v = b
        .get_state(&ValueStateDescriptor::<u8>::new("v").with_time_to_live(no_background()))
        .unwrap();
    let l = b
        .get_list_state(&ListStateDescriptor::<u8>::new("l").with_time_to_live(no_background()))
        .unwrap();
    let plain = b
        .get_state(&ValueStateDescriptor::<u8>::new("no-ttl"))
        .unwrap();
    for i in 0..100u32 {
        b.set_current_key(i.to_string());
        b.set_current_time(i as i64 % 2 * 100);
        v.update(&mut b, 1).unwrap();
        l.add(&mut b, 1).unwrap();
        plain.update(&mut b, 1).unwrap();
    }
    assert_eq!(b.num_keys(), 300);
    b.set_current_time(50);
    assert_eq!(b.cleanup_expired_state(), 100);
    assert_eq!(b.num_keys(), 200);
}

#[test]
fn update_with_sees_expired_values_as_absent() {
    let mut b = backend();
    let mut d = ValueStateDescriptor::<u64>::new("v");
    d.enable_time_to_live(default_ttl(100));
    let v = b.get_state(&d).unwrap();
    b.set_current_key(k("a"));
    b.set_current_time(0);
    assert_eq!(
        v.update_with(&mut b, |old| old.unwrap_or(0) + 1).unwrap(),
        1
    );
    b.set_current_time(50);
    assert_eq!(
        v.update_with(&mut b, |old| old.unwrap_or(0) + 1).unwrap(),
        2
    );
    // Written at 50, expired at 150: the function starts over.
    b.set_current_time(150);
    assert_eq!(
        v.update_with(&mut b, |old| old.unwrap_or(0) + 1).unwrap(),
        1
    );
    assert_eq!(v.value(&mut b).unwrap(), Some(1));
}
