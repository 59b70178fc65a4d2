//! Plain single-threaded implementations of the queries (no engine): the oracle the engine's
//! output is compared with, in tests row by row and in the benchmark by checksum. They read
//! the events in generation order (regenerating them for each pass instead of holding them,
//! so a 100 M event check fits in memory) and follow the query definitions in
//! [`crate::queries`]. Rows go to an `emit` callback.

use crate::queries::{Q11Row, Q1Row, Q3Row, Q7Row, SLIDE_MS, WINDOW_MS};
use eddy::connectors::nexmark::{kind_of, Auction, Bid, Event, EventKind, GeneratorConfig, Person};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The events of a generator configuration, generated on demand.
pub struct Events<'a>(pub &'a GeneratorConfig);

impl Events<'_> {
    fn kind(&self, kind: EventKind) -> impl Iterator<Item = Event> + '_ {
        (0..self.0.events)
            .filter(move |n| kind_of(*n) == kind)
            .map(|n| self.0.event(n))
    }
}

fn bids<'a>(events: &'a Events<'_>) -> impl Iterator<Item = Bid> + 'a {
    events.kind(EventKind::Bid).filter_map(|e| match e {
        Event::Bid(b) => Some(b),
        _ => None,
    })
}

fn auctions<'a>(events: &'a Events<'_>) -> impl Iterator<Item = Auction> + 'a {
    events.kind(EventKind::Auction).filter_map(|e| match e {
        Event::Auction(a) => Some(*a),
        _ => None,
    })
}

fn persons<'a>(events: &'a Events<'_>) -> impl Iterator<Item = Person> + 'a {
    events.kind(EventKind::Person).filter_map(|e| match e {
        Event::Person(p) => Some(*p),
        _ => None,
    })
}

/// q0.
pub fn q0(events: &Events<'_>, emit: &mut impl FnMut(Bid)) {
    bids(events).for_each(emit)
}

/// q1.
pub fn q1(events: &Events<'_>, emit: &mut impl FnMut(Q1Row)) {
    for b in bids(events) {
        emit(Q1Row {
            auction: b.auction,
            bidder: b.bidder,
            price_milli: b.price * 908,
            date_time: b.date_time,
            extra: b.extra,
        })
    }
}

/// q2.
pub fn q2(events: &Events<'_>, emit: &mut impl FnMut((i64, i64))) {
    for b in bids(events).filter(|b| b.auction % 123 == 0) {
        emit((b.auction, b.price))
    }
}

/// q3.
pub fn q3(events: &Events<'_>, emit: &mut impl FnMut(Q3Row)) {
    let sellers: HashMap<i64, Person> = persons(events)
        .filter(|p| matches!(p.state.as_str(), "OR" | "ID" | "CA"))
        .map(|p| (p.id, p))
        .collect();
    for a in auctions(events).filter(|a| a.category == 10) {
        if let Some(p) = sellers.get(&a.seller) {
            emit(Q3Row {
                name: p.name.clone(),
                city: p.city.clone(),
                state: p.state.clone(),
                auction: a.id,
            })
        }
    }
}

/// q4: the final `(category, average)` per category.
pub fn q4(events: &Events<'_>, emit: &mut impl FnMut((i64, i64))) {
    // id -> (category, start, expires)
    let by_id: HashMap<i64, (i64, i64, i64)> = auctions(events)
        .map(|a| (a.id, (a.category, a.date_time, a.expires)))
        .collect();
    let mut best: HashMap<i64, i64> = HashMap::new();
    for b in bids(events) {
        if let Some((_, start, expires)) = by_id.get(&b.auction) {
            if (*start..=*expires).contains(&b.date_time) {
                let m = best.entry(b.auction).or_insert(i64::MIN);
                *m = (*m).max(b.price);
            }
        }
    }
    let mut per_category: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for (id, max) in best {
        let t = per_category.entry(by_id[&id].0).or_default();
        t.0 += max;
        t.1 += 1;
    }
    for (c, (sum, n)) in per_category {
        emit((c, sum / n))
    }
}

/// q5.
pub fn q5(events: &Events<'_>, emit: &mut impl FnMut((i64, i64))) {
    let (size, slide) = (WINDOW_MS as i64, SLIDE_MS as i64);
    let mut counts: BTreeMap<i64, HashMap<i64, i64>> = BTreeMap::new();
    for b in bids(events) {
        let mut start = b.date_time - b.date_time.rem_euclid(slide);
        while start > b.date_time - size {
            *counts
                .entry(start)
                .or_default()
                .entry(b.auction)
                .or_default() += 1;
            start -= slide;
        }
    }
    for per_auction in counts.values() {
        let max = per_auction.values().copied().max().unwrap_or(0);
        for (a, c) in per_auction.iter().filter(|(_, c)| **c == max) {
            emit((*a, *c))
        }
    }
}

/// q7.
pub fn q7(events: &Events<'_>, emit: &mut impl FnMut(Q7Row)) {
    let size = WINDOW_MS as i64;
    let mut windows: BTreeMap<i64, (i64, Vec<Bid>)> = BTreeMap::new();
    for b in bids(events) {
        let w = windows
            .entry(b.date_time - b.date_time.rem_euclid(size))
            .or_insert((i64::MIN, Vec::new()));
        if b.price > w.0 {
            *w = (b.price, vec![b]);
        } else if b.price == w.0 {
            w.1.push(b);
        }
    }
    for b in windows.into_values().flat_map(|(_, bids)| bids) {
        emit(Q7Row {
            auction: b.auction,
            price: b.price,
            bidder: b.bidder,
            date_time: b.date_time,
            extra: b.extra,
        })
    }
}

/// q8.
pub fn q8(events: &Events<'_>, emit: &mut impl FnMut((i64, String, i64))) {
    let size = WINDOW_MS as i64;
    let window = |t: i64| t - t.rem_euclid(size);
    let selling: HashSet<(i64, i64)> = auctions(events)
        .map(|a| (a.seller, window(a.date_time)))
        .collect();
    for p in persons(events).filter(|p| selling.contains(&(p.id, window(p.date_time)))) {
        emit((p.id, p.name, window(p.date_time)))
    }
}

/// q11.
pub fn q11(events: &Events<'_>, emit: &mut impl FnMut(Q11Row)) {
    let gap = WINDOW_MS as i64;
    let mut times: HashMap<i64, Vec<i64>> = HashMap::new();
    for b in bids(events) {
        times.entry(b.bidder).or_default().push(b.date_time);
    }
    for (bidder, mut ts) in times {
        ts.sort_unstable();
        let mut start = ts[0];
        let (mut last, mut count) = (ts[0], 0i64);
        for t in ts {
            // Windows [t, t + gap) that touch merge, as Flink's session windows.
            if t > last + gap {
                emit(Q11Row {
                    bidder,
                    bid_count: count,
                    start,
                    end: last + gap,
                });
                start = t;
                count = 0;
            }
            last = t;
            count += 1;
        }
        emit(Q11Row {
            bidder,
            bid_count: count,
            start,
            end: last + gap,
        })
    }
}
