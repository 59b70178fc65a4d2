use super::{backend, k, MAX_P};
use crate::*;
use eddy_core::keygroup::{assign_to_key_group, KeyGroupRange};

struct Average;

impl AggregateFunction<i64, (i64, i64), f64> for Average {
    fn create_accumulator(&self) -> (i64, i64) {
        (0, 0)
    }
    fn add(&self, value: i64, acc: &mut (i64, i64)) {
        acc.0 += value;
        acc.1 += 1;
    }
    fn get_result(&self, acc: &(i64, i64)) -> f64 {
        acc.0 as f64 / acc.1 as f64
    }
    fn merge(&self, a: (i64, i64), b: (i64, i64)) -> (i64, i64) {
        (a.0 + b.0, a.1 + b.1)
    }
}

fn assert_send_copy<T: Send + Sync + Copy + 'static>() {}
fn assert_send_clone<T: Send + Clone>() {}

#[test]
fn handles_and_descriptors_are_send_and_copy() {
    assert_send_copy::<ValueState<String>>();
    assert_send_copy::<ListState<std::rc::Rc<u8>, u32>>();
    assert_send_copy::<MapState<String, u64>>();
    assert_send_copy::<ReducingState<u64>>();
    assert_send_copy::<AggregatingState<i64, (i64, i64), f64>>();
    assert_send_clone::<ValueStateDescriptor<u64>>();
    assert_send_clone::<ReducingStateDescriptor<u64>>();
    assert_send_clone::<AggregatingStateDescriptor<i64, (i64, i64), f64>>();
    fn assert_send<T: Send>() {}
    assert_send::<KeyedStateBackend<String>>();
    assert_send::<InternalTimerService<String, u64>>();
}

#[test]
fn value_state_per_key() {
    let mut b = backend();
    let count = b
        .get_state(&ValueStateDescriptor::<u64>::new("count"))
        .unwrap();
    match count.value(&mut b) {
        Err(StateError::NoCurrentKey { state }) => assert_eq!(state, "count"),
        other => panic!("expected NoCurrentKey, got {other:?}"),
    }
    b.set_current_key(k("a"));
    assert_eq!(count.value(&mut b).unwrap(), None);
    count.update(&mut b, 1).unwrap();
    count.update(&mut b, 2).unwrap();
    b.set_current_key(k("b"));
    assert_eq!(count.value(&mut b).unwrap(), None);
    count.update(&mut b, 10).unwrap();
    b.set_current_key(k("a"));
    assert_eq!(count.value(&mut b).unwrap(), Some(2));
    assert_eq!(b.num_keys(), 2);
    count.clear(&mut b).unwrap();
    assert_eq!(count.value(&mut b).unwrap(), None);
    assert_eq!(b.num_keys(), 1);
    assert_eq!(b.current_key(), Some(&k("a")));
    assert_eq!(
        b.current_key_group(),
        Some(assign_to_key_group(&k("a"), MAX_P))
    );
}

#[test]
fn value_update_with_moves_the_old_value_and_uses_the_default() {
    let mut b = backend();
    let plain = b
        .get_state(&ValueStateDescriptor::<String>::new("s"))
        .unwrap();
    let with_default = b
        .get_state(&ValueStateDescriptor::<u64>::new("n").with_default(10))
        .unwrap();
    b.set_current_key(k("a"));
    assert_eq!(
        plain
            .update_with(&mut b, |old| {
                assert_eq!(old, None);
                "x".to_string()
            })
            .unwrap(),
        "x"
    );
    assert_eq!(
        plain.update_with(&mut b, |old| old.unwrap() + "y").unwrap(),
        "xy"
    );
    assert_eq!(plain.value(&mut b).unwrap().as_deref(), Some("xy"));
    assert_eq!(
        with_default
            .update_with(&mut b, |old| old.unwrap() + 1)
            .unwrap(),
        11
    );
    b.set_current_key(k("b"));
    assert_eq!(plain.value(&mut b).unwrap(), None);
}

#[test]
fn value_state_default_and_namespaces() {
    let mut b = backend();
    let d = ValueStateDescriptor::<i32>::new("v").with_default(-1);
    let v = b.get_state_ns::<i32, u64>(&d).unwrap();
    b.set_current_key(k("a"));
    assert_eq!(v.value_in(&mut b, &1).unwrap(), Some(-1));
    v.update_in(&mut b, &1, 10).unwrap();
    v.update_in(&mut b, &2, 20).unwrap();
    assert_eq!(v.value_in(&mut b, &1).unwrap(), Some(10));
    assert_eq!(v.value_in(&mut b, &2).unwrap(), Some(20));
    v.clear_in(&mut b, &1).unwrap();
    assert_eq!(v.value_in(&mut b, &1).unwrap(), Some(-1));
    assert_eq!(v.value_in(&mut b, &2).unwrap(), Some(20));
}

#[test]
fn list_state() {
    let mut b = backend();
    let l = b
        .get_list_state(&ListStateDescriptor::<String>::new("l"))
        .unwrap();
    b.set_current_key(k("a"));
    assert!(l.get(&mut b).unwrap().is_empty());
    l.add(&mut b, k("x")).unwrap();
    l.add_all(&mut b, vec![k("y"), k("z")]).unwrap();
    l.add_all(&mut b, Vec::new()).unwrap();
    assert_eq!(l.get(&mut b).unwrap(), vec![k("x"), k("y"), k("z")]);
    b.set_current_key(k("b"));
    l.add_all(&mut b, Vec::new()).unwrap();
    assert_eq!(b.num_keys(), 1, "adding nothing creates no entry");
    l.update(&mut b, vec![k("q")]).unwrap();
    assert_eq!(l.get(&mut b).unwrap(), vec![k("q")]);
    l.update(&mut b, Vec::new()).unwrap();
    assert!(l.get(&mut b).unwrap().is_empty());
    assert_eq!(b.num_keys(), 1);
    b.set_current_key(k("a"));
    l.clear(&mut b).unwrap();
    assert!(l.get(&mut b).unwrap().is_empty());
    assert_eq!(b.num_keys(), 0);
}

#[test]
fn list_state_namespaces_and_merge() {
    let mut b = backend();
    let l = b
        .get_list_state_ns::<i32, u32>(&ListStateDescriptor::new("l"))
        .unwrap();
    b.set_current_key(k("a"));
    l.add_in(&mut b, &1, 1).unwrap();
    l.add_in(&mut b, &2, 2).unwrap();
    l.add_all_in(&mut b, &3, vec![3, 4]).unwrap();
    l.add_in(&mut b, &9, 9).unwrap();
    l.merge_namespaces(&mut b, &9, &[1, 2, 3, 5]).unwrap();
    assert_eq!(l.get_in(&mut b, &9).unwrap(), vec![9, 1, 2, 3, 4]);
    for ns in [1, 2, 3] {
        assert!(l.get_in(&mut b, &ns).unwrap().is_empty());
    }
    // Merging into a namespace that is also a source keeps everything once.
    l.add_in(&mut b, &1, 100).unwrap();
    l.merge_namespaces(&mut b, &1, &[9, 1]).unwrap();
    assert_eq!(l.get_in(&mut b, &1).unwrap(), vec![9, 1, 2, 3, 4, 100]);
    l.update_in(&mut b, &1, vec![7]).unwrap();
    assert_eq!(l.get_in(&mut b, &1).unwrap(), vec![7]);
    l.clear_in(&mut b, &1).unwrap();
    assert_eq!(b.num_keys(), 0);
}

#[test]
fn map_state() {
    let mut b = backend();
    let m = b
        .get_map_state(&MapStateDescriptor::<String, u64>::new("m"))
        .unwrap();
    b.set_current_key(k("a"));
    assert!(m.is_empty(&mut b).unwrap());
    m.put(&mut b, k("x"), 1).unwrap();
    m.put(&mut b, k("y"), 2).unwrap();
    m.put(&mut b, k("x"), 3).unwrap();
    m.put_all(&mut b, vec![(k("z"), 4), (k("w"), 5)]).unwrap();
    assert_eq!(m.get(&mut b, &k("x")).unwrap(), Some(3));
    assert_eq!(m.get(&mut b, &k("nope")).unwrap(), None);
    assert!(m.contains(&mut b, &k("y")).unwrap());
    assert!(!m.contains(&mut b, &k("nope")).unwrap());
    m.remove(&mut b, &k("y")).unwrap();
    m.remove(&mut b, &k("nope")).unwrap();
    let mut entries = m.entries(&mut b).unwrap();
    entries.sort();
    assert_eq!(entries, vec![(k("w"), 5), (k("x"), 3), (k("z"), 4)]);
    let mut keys = m.keys(&mut b).unwrap();
    keys.sort();
    assert_eq!(keys, vec![k("w"), k("x"), k("z")]);
    let mut values = m.values(&mut b).unwrap();
    values.sort();
    assert_eq!(values, vec![3, 4, 5]);
    assert!(!m.is_empty(&mut b).unwrap());

    b.set_current_key(k("b"));
    assert!(m.is_empty(&mut b).unwrap());
    m.put(&mut b, k("only"), 1).unwrap();
    assert_eq!(b.num_keys(), 2);
    m.remove(&mut b, &k("only")).unwrap();
    assert_eq!(b.num_keys(), 1, "an emptied map is removed");
    b.set_current_key(k("a"));
    m.clear(&mut b).unwrap();
    assert!(m.entries(&mut b).unwrap().is_empty());
    assert_eq!(b.num_keys(), 0);
}

#[test]
fn map_state_namespaces() {
    let mut b = backend();
    let m = b
        .get_map_state_ns::<u8, String, String>(&MapStateDescriptor::new("m"))
        .unwrap();
    b.set_current_key(k("a"));
    m.put_in(&mut b, &k("n1"), 1, k("one")).unwrap();
    m.put_all_in(&mut b, &k("n2"), vec![(1, k("uno")), (2, k("dos"))])
        .unwrap();
    assert_eq!(m.get_in(&mut b, &k("n1"), &1).unwrap(), Some(k("one")));
    assert_eq!(m.get_in(&mut b, &k("n2"), &1).unwrap(), Some(k("uno")));
    assert!(m.contains_in(&mut b, &k("n2"), &2).unwrap());
    assert!(!m.contains_in(&mut b, &k("n1"), &2).unwrap());
    m.remove_in(&mut b, &k("n2"), &1).unwrap();
    assert_eq!(m.keys_in(&mut b, &k("n2")).unwrap(), vec![2]);
    assert_eq!(m.values_in(&mut b, &k("n2")).unwrap(), vec![k("dos")]);
    assert_eq!(m.entries_in(&mut b, &k("n1")).unwrap(), vec![(1, k("one"))]);
    m.clear_in(&mut b, &k("n1")).unwrap();
    assert!(m.is_empty_in(&mut b, &k("n1")).unwrap());
    assert!(!m.is_empty_in(&mut b, &k("n2")).unwrap());
}

#[test]
fn reducing_state() {
    let mut b = backend();
    let d = ReducingStateDescriptor::new("sum", |a: u64, b: u64| a + b);
    let r = b.get_reducing_state(&d).unwrap();
    b.set_current_key(k("a"));
    assert_eq!(r.get(&mut b).unwrap(), None);
    r.add(&mut b, 1).unwrap();
    r.add(&mut b, 2).unwrap();
    r.add(&mut b, 3).unwrap();
    assert_eq!(r.get(&mut b).unwrap(), Some(6));
    b.set_current_key(k("b"));
    r.add(&mut b, 10).unwrap();
    assert_eq!(r.get(&mut b).unwrap(), Some(10));
    r.clear(&mut b).unwrap();
    assert_eq!(r.get(&mut b).unwrap(), None);
    b.set_current_key(k("a"));
    assert_eq!(r.get(&mut b).unwrap(), Some(6));
}

#[test]
fn reducing_state_namespaces_and_merge() {
    let mut b = backend();
    let d = ReducingStateDescriptor::new("concat", |a: String, b: String| a + &b);
    let r = b.get_reducing_state_ns::<String, i64>(&d).unwrap();
    b.set_current_key(k("a"));
    r.add_in(&mut b, &1, k("a")).unwrap();
    r.add_in(&mut b, &2, k("b")).unwrap();
    r.add_in(&mut b, &3, k("c")).unwrap();
    r.add_in(&mut b, &0, k("t")).unwrap();
    r.merge_namespaces(&mut b, &0, &[1, 2, 3, 4]).unwrap();
    assert_eq!(r.get_in(&mut b, &0).unwrap(), Some(k("tabc")));
    assert_eq!(r.get_in(&mut b, &1).unwrap(), None);
    // Into an empty target.
    r.add_in(&mut b, &5, k("x")).unwrap();
    r.merge_namespaces(&mut b, &6, &[5]).unwrap();
    assert_eq!(r.get_in(&mut b, &6).unwrap(), Some(k("x")));
    // Nothing to merge leaves the target alone.
    r.merge_namespaces(&mut b, &6, &[42]).unwrap();
    assert_eq!(r.get_in(&mut b, &6).unwrap(), Some(k("x")));
    r.clear_in(&mut b, &6).unwrap();
    assert_eq!(r.get_in(&mut b, &6).unwrap(), None);
    assert_eq!(b.num_keys(), 1);
}

#[test]
fn aggregating_state_and_merge() {
    let mut b = backend();
    let d = AggregatingStateDescriptor::new("avg", Average);
    let plain = b.get_aggregating_state(&d).unwrap();
    b.set_current_key(k("a"));
    assert_eq!(plain.get(&mut b).unwrap(), None);
    plain.add(&mut b, 1).unwrap();
    plain.add(&mut b, 2).unwrap();
    assert_eq!(plain.get(&mut b).unwrap(), Some(1.5));
    plain.clear(&mut b).unwrap();
    assert_eq!(plain.get(&mut b).unwrap(), None);

    let d2 = AggregatingStateDescriptor::new("avg-windows", Average);
    let ns = b.get_aggregating_state_ns::<_, _, _, u32>(&d2).unwrap();
    ns.add_in(&mut b, &1, 10).unwrap();
    ns.add_in(&mut b, &2, 20).unwrap();
    ns.add_in(&mut b, &2, 30).unwrap();
    ns.add_in(&mut b, &3, 0).unwrap();
    ns.merge_namespaces(&mut b, &3, &[1, 2]).unwrap();
    assert_eq!(ns.get_in(&mut b, &3).unwrap(), Some(15.0));
    assert_eq!(ns.get_in(&mut b, &1).unwrap(), None);
    ns.clear_in(&mut b, &3).unwrap();
    assert_eq!(b.num_keys(), 0);
}

#[test]
fn re_registration_returns_the_same_state() {
    let mut b = backend();
    let d = ValueStateDescriptor::<u64>::new("v");
    let first = b.get_state(&d).unwrap();
    b.set_current_key(k("a"));
    first.update(&mut b, 7).unwrap();
    let second = b.get_state(&d).unwrap();
    assert_eq!(first, second);
    assert_eq!(second.value(&mut b).unwrap(), Some(7));
    assert_eq!(b.registered_state_names().collect::<Vec<_>>(), vec!["v"]);
}

#[test]
fn incompatible_re_registration_is_an_error() {
    let mut b = backend();
    b.get_state(&ValueStateDescriptor::<u64>::new("v")).unwrap();
    let expect_incompatible = |r: Result<(), StateError>| match r {
        Err(StateError::IncompatibleState { name, .. }) => assert_eq!(name, "v"),
        other => panic!("expected IncompatibleState, got {other:?}"),
    };
    expect_incompatible(
        b.get_list_state(&ListStateDescriptor::<u64>::new("v"))
            .map(drop),
    );
    expect_incompatible(
        b.get_state(&ValueStateDescriptor::<String>::new("v"))
            .map(drop),
    );
    expect_incompatible(
        b.get_state_ns::<u64, u32>(&ValueStateDescriptor::new("v"))
            .map(drop),
    );
    expect_incompatible(
        b.get_reducing_state(&ReducingStateDescriptor::new("v", |a: u64, b: u64| a + b))
            .map(drop),
    );
    let err = b
        .get_map_state(&MapStateDescriptor::<u64, u64>::new("v"))
        .unwrap_err();
    assert!(err.to_string().contains("ValueState<u64>"), "{err}");
}

#[test]
fn key_outside_the_backends_key_groups_is_an_error() {
    let range = KeyGroupRange::new(0, MAX_P / 2 - 1);
    let mut b = KeyedStateBackend::<u64>::new(range, MAX_P);
    let v = b.get_state(&ValueStateDescriptor::<u64>::new("v")).unwrap();
    let outside = (0u64..)
        .find(|key| !range.contains(assign_to_key_group(key, MAX_P)))
        .unwrap();
    b.set_current_key(outside);
    assert!(matches!(
        v.update(&mut b, 1),
        Err(StateError::KeyGroupOutOfRange { .. })
    ));
}

#[test]
fn handles_work_through_a_custom_store() {
    struct Context<'a> {
        backend: &'a mut KeyedStateBackend<String>,
    }
    impl KeyedStateStore for Context<'_> {
        type Key = String;
        fn keyed_state_backend(&mut self) -> &mut KeyedStateBackend<String> {
            self.backend
        }
    }
    let mut b = backend();
    let v = b.get_state(&ValueStateDescriptor::<u64>::new("v")).unwrap();
    b.set_current_key(k("a"));
    let mut ctx = Context { backend: &mut b };
    v.update(&mut ctx, 5).unwrap();
    let dyn_store: &mut dyn KeyedStateStore<Key = String> = &mut ctx;
    assert_eq!(v.value(dyn_store).unwrap(), Some(5));
}

#[test]
fn a_handle_from_another_backend_is_rejected() {
    let mut a = backend();
    let mut b = backend();
    let v = a.get_state(&ValueStateDescriptor::<u64>::new("v")).unwrap();
    b.set_current_key(k("x"));
    assert!(matches!(
        v.value(&mut b),
        Err(StateError::UnknownHandle { .. })
    ));
    b.get_list_state(&ListStateDescriptor::<u64>::new("l"))
        .unwrap();
    assert!(matches!(
        v.value(&mut b),
        Err(StateError::UnknownHandle { .. })
    ));
}
