use super::{backend, k, MAX_P};
use crate::*;
use eddy_core::keygroup::{assign_to_key_group, KeyGroupRange};

struct Sum;
impl AggregateFunction<u64, u64, u64> for Sum {
    fn create_accumulator(&self) -> u64 {
        0
    }
    fn add(&self, value: u64, acc: &mut u64) {
        *acc += value;
    }
    fn get_result(&self, acc: &u64) -> u64 {
        *acc
    }
    fn merge(&self, a: u64, b: u64) -> u64 {
        a + b
    }
}

/// Handles of one instance of the test "operator".
struct Op {
    value: ValueState<u64>,
    list: ListState<String>,
    map: MapState<u32, String>,
    reducing: ReducingState<u64>,
    aggregating: AggregatingState<u64, u64, u64>,
    windowed: ValueState<String, (i64, i64)>,
}

fn open(b: &mut KeyedStateBackend<String>) -> Op {
    Op {
        value: b.get_state(&ValueStateDescriptor::new("value")).unwrap(),
        list: b.get_list_state(&ListStateDescriptor::new("list")).unwrap(),
        map: b.get_map_state(&MapStateDescriptor::new("map")).unwrap(),
        reducing: b
            .get_reducing_state(&ReducingStateDescriptor::new(
                "reducing",
                |a: u64, b: u64| a.max(b),
            ))
            .unwrap(),
        aggregating: b
            .get_aggregating_state(&AggregatingStateDescriptor::new("aggregating", Sum))
            .unwrap(),
        windowed: b
            .get_state_ns(&ValueStateDescriptor::new("windowed"))
            .unwrap(),
    }
}

const KEYS: u64 = 1_000;

fn fill(b: &mut KeyedStateBackend<String>, op: &Op) {
    for i in 0..KEYS {
        b.set_current_key(format!("key-{i}"));
        op.value.update(b, i).unwrap();
        op.list
            .add_all(b, vec![format!("{i}a"), format!("{i}b")])
            .unwrap();
        op.map.put(b, i as u32, i.to_string()).unwrap();
        op.reducing.add(b, i).unwrap();
        op.reducing.add(b, 1).unwrap();
        op.aggregating.add(b, i).unwrap();
        op.aggregating.add(b, 1).unwrap();
        op.windowed.update_in(b, &(0, 10), format!("w{i}")).unwrap();
    }
}

fn check_key(b: &mut KeyedStateBackend<String>, op: &Op, i: u64) {
    b.set_current_key(format!("key-{i}"));
    assert_eq!(op.value.value(b).unwrap(), Some(i));
    assert_eq!(
        op.list.get(b).unwrap(),
        vec![format!("{i}a"), format!("{i}b")]
    );
    assert_eq!(op.map.entries(b).unwrap(), vec![(i as u32, i.to_string())]);
    assert_eq!(op.reducing.get(b).unwrap(), Some(i.max(1)));
    assert_eq!(op.aggregating.get(b).unwrap(), Some(i + 1));
    assert_eq!(
        op.windowed.value_in(b, &(0, 10)).unwrap(),
        Some(format!("w{i}"))
    );
    assert_eq!(op.windowed.value_in(b, &(10, 20)).unwrap(), None);
}

fn snapshot_at_parallelism_one() -> KeyedStateSnapshot {
    let mut b = backend();
    let op = open(&mut b);
    fill(&mut b, &op);
    assert_eq!(b.num_keys(), 6 * KEYS as usize);
    let snapshot = b.snapshot().unwrap();
    // Snapshots go through bytes in a real checkpoint.
    KeyedStateSnapshot::from_bytes(&snapshot.to_bytes().unwrap()).unwrap()
}

#[test]
fn snapshot_restores_into_two_and_three_subtasks() {
    let snapshot = snapshot_at_parallelism_one();
    for parallelism in [2usize, 3] {
        let mut backends: Vec<KeyedStateBackend<String>> = (0..parallelism)
            .map(|i| {
                let range = KeyGroupRange::for_operator_index(MAX_P, parallelism, i);
                let mut b = KeyedStateBackend::new(range, MAX_P);
                b.restore(std::slice::from_ref(&snapshot)).unwrap();
                b
            })
            .collect();
        let ops: Vec<Op> = backends.iter_mut().map(open).collect();
        let total: usize = backends.iter().map(|b| b.num_keys()).sum();
        assert_eq!(total, 6 * KEYS as usize, "parallelism {parallelism}");
        for i in 0..KEYS {
            let kg = assign_to_key_group(&format!("key-{i}"), MAX_P);
            let owners: Vec<usize> = (0..parallelism)
                .filter(|&s| backends[s].key_group_range().contains(kg))
                .collect();
            assert_eq!(owners.len(), 1);
            let s = owners[0];
            check_key(&mut backends[s], &ops[s], i);
        }
        // Scale back in: all subtasks' snapshots into one backend.
        let snapshots: Vec<KeyedStateSnapshot> =
            backends.iter_mut().map(|b| b.snapshot().unwrap()).collect();
        let mut merged = backend();
        merged.restore(&snapshots).unwrap();
        let op = open(&mut merged);
        assert_eq!(merged.num_keys(), 6 * KEYS as usize);
        for i in (0..KEYS).step_by(37) {
            check_key(&mut merged, &op, i);
        }
    }
}

#[test]
fn state_registered_before_restore_is_filled_at_once() {
    let snapshot = snapshot_at_parallelism_one();
    let mut b = backend();
    let op = open(&mut b);
    b.restore(&[snapshot]).unwrap();
    check_key(&mut b, &op, 7);
}

#[test]
fn unregistered_restored_state_survives_the_next_snapshot() {
    let snapshot = snapshot_at_parallelism_one();
    let mut b = backend();
    b.restore(&[snapshot]).unwrap();
    // Only one state is used before the next checkpoint.
    let v = b
        .get_state(&ValueStateDescriptor::<u64>::new("value"))
        .unwrap();
    b.set_current_key(k("key-3"));
    v.update(&mut b, 33).unwrap();
    assert_eq!(b.num_keys(), KEYS as usize);
    let second = b.snapshot().unwrap();
    assert_eq!(second.states.len(), 6);

    let mut c = backend();
    c.restore(&[second]).unwrap();
    let op = open(&mut c);
    check_key(&mut c, &op, 4);
    c.set_current_key(k("key-3"));
    assert_eq!(op.value.value(&mut c).unwrap(), Some(33));
}

#[test]
fn lazy_restore_with_other_types_is_an_error_naming_the_state() {
    let snapshot = snapshot_at_parallelism_one();
    let mut b = backend();
    b.restore(&[snapshot]).unwrap();
    for err in [
        b.get_state(&ValueStateDescriptor::<String>::new("value"))
            .unwrap_err(),
        b.get_list_state(&ListStateDescriptor::<u64>::new("value"))
            .unwrap_err(),
        b.get_state_ns::<u64, u8>(&ValueStateDescriptor::new("value"))
            .unwrap_err(),
    ] {
        match &err {
            StateError::IncompatibleState { name, .. } => assert_eq!(name, "value"),
            other => panic!("expected IncompatibleState, got {other:?}"),
        }
        assert!(err.to_string().contains("'value'"), "{err}");
    }
    // The state is still there for a correct registration.
    let v = b
        .get_state(&ValueStateDescriptor::<u64>::new("value"))
        .unwrap();
    b.set_current_key(k("key-9"));
    assert_eq!(v.value(&mut b).unwrap(), Some(9));
}

#[test]
fn undecodable_state_bytes_are_a_deserialization_error() {
    let mut b = backend();
    let v = b.get_state(&ValueStateDescriptor::<u64>::new("v")).unwrap();
    b.set_current_key(k("a"));
    v.update(&mut b, 1_000_000).unwrap();
    let mut snapshot = b.snapshot().unwrap();
    // Pretend the state was written as a String (a changed type the names did not catch).
    snapshot.states[0].value_type = std::any::type_name::<String>().to_string();
    let mut c = backend();
    c.restore(&[snapshot]).unwrap();
    match c.get_state(&ValueStateDescriptor::<String>::new("v")) {
        Err(StateError::Deserialization {
            state, key_group, ..
        }) => {
            assert_eq!(state, "v");
            assert_eq!(key_group, Some(assign_to_key_group(&k("a"), MAX_P)));
        }
        other => panic!("expected Deserialization, got {other:?}"),
    }
}

#[test]
fn restore_checks_max_parallelism_and_key_type() {
    let snapshot = snapshot_at_parallelism_one();
    let mut other_max = KeyedStateBackend::<String>::new(KeyGroupRange::all(256), 256);
    assert!(matches!(
        other_max.restore(std::slice::from_ref(&snapshot)),
        Err(StateError::MaxParallelismMismatch {
            snapshot: 128,
            backend: 256
        })
    ));
    let mut other_key = KeyedStateBackend::<u64>::new(KeyGroupRange::all(MAX_P), MAX_P);
    assert!(matches!(
        other_key.restore(std::slice::from_ref(&snapshot)),
        Err(StateError::TypeMismatch { what: "key", .. })
    ));
    let mut twice = backend();
    assert!(matches!(
        twice.restore(&[snapshot.clone(), snapshot]),
        Err(StateError::DuplicateKeyGroup { .. })
    ));
}

#[test]
fn empty_backends_snapshot_and_restore() {
    let mut b = backend();
    let s = b.snapshot().unwrap();
    assert!(s.key_groups.is_empty());
    let mut empty_range = KeyedStateBackend::<String>::new(KeyGroupRange::new(1, 0), MAX_P);
    empty_range.restore(&[s]).unwrap();
    assert_eq!(empty_range.snapshot().unwrap().key_groups.len(), 0);
}

#[test]
fn corrupt_frames_are_errors_not_panics() {
    let mut snapshot = snapshot_at_parallelism_one();
    let (&kg, bytes) = snapshot.key_groups.iter_mut().next().unwrap();
    bytes.truncate(bytes.len() / 2);
    let mut b = backend();
    let result = b
        .restore(&[snapshot.clone()])
        .and_then(|_| open_fallible(&mut b));
    assert!(result.is_err(), "key group {kg}");

    let mut bad_index = snapshot_at_parallelism_one();
    bad_index.states.truncate(1);
    let mut c = backend();
    assert!(matches!(
        c.restore(&[bad_index]),
        Err(StateError::CorruptSnapshot(_))
    ));
}

fn open_fallible(b: &mut KeyedStateBackend<String>) -> Result<(), StateError> {
    b.get_state(&ValueStateDescriptor::<u64>::new("value"))?;
    b.get_list_state(&ListStateDescriptor::<String>::new("list"))?;
    b.get_map_state(&MapStateDescriptor::<u32, String>::new("map"))?;
    b.get_reducing_state(&ReducingStateDescriptor::new(
        "reducing",
        |a: u64, b: u64| a.max(b),
    ))?;
    b.get_aggregating_state(&AggregatingStateDescriptor::new("aggregating", Sum))?;
    b.get_state_ns::<String, (i64, i64)>(&ValueStateDescriptor::new("windowed"))?;
    Ok(())
}

/// The key-group bytes are written as byte strings (one copy) but encode exactly like the
/// `Vec<u8>` values they were before, so older snapshots still read.
#[test]
fn key_group_bytes_encode_like_a_vec_of_u8() {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Plain {
        max_parallelism: usize,
        key_group_range: KeyGroupRange,
        key_type: String,
        namespace_type: String,
        key_groups: std::collections::BTreeMap<usize, Vec<u8>>,
    }
    let key_groups: std::collections::BTreeMap<usize, Vec<u8>> = [
        (3, vec![0u8, 1, 255, 7]),
        (9, Vec::new()),
        (100, vec![42; 300]),
    ]
    .into_iter()
    .collect();
    let snapshot = TimerServiceSnapshot {
        max_parallelism: 128,
        key_group_range: KeyGroupRange::new(0, 127),
        key_type: "k".into(),
        namespace_type: "n".into(),
        key_groups: key_groups.clone(),
    };
    let plain = Plain {
        max_parallelism: 128,
        key_group_range: KeyGroupRange::new(0, 127),
        key_type: "k".into(),
        namespace_type: "n".into(),
        key_groups,
    };
    let bytes = postcard::to_stdvec(&snapshot).unwrap();
    assert_eq!(bytes, postcard::to_stdvec(&plain).unwrap());
    let back: TimerServiceSnapshot = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, snapshot);
    // A truncated value is an error, not a panic or a short value.
    assert!(postcard::from_bytes::<TimerServiceSnapshot>(&bytes[..bytes.len() - 1]).is_err());
}
