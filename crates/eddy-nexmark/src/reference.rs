//! Plain single-threaded implementations of the queries (no engine): the oracle the engine's
//! output is compared with, in tests row by row and in the benchmark by checksum. They read
//! the events in generation order and follow the query definitions in [`crate::queries`].

use crate::queries::{Q11Row, Q1Row, Q3Row, Q7Row, SLIDE_MS, WINDOW_MS};
use eddy::connectors::nexmark::{Auction, Bid, Event, GeneratorConfig, Person};
use std::collections::{BTreeMap, HashMap, HashSet};

/// All events of `config`, in order.
pub fn events(config: &GeneratorConfig) -> Vec<Event> {
    (0..config.events).map(|n| config.event(n)).collect()
}

fn bids(events: &[Event]) -> impl Iterator<Item = &Bid> {
    events.iter().filter_map(|e| match e {
        Event::Bid(b) => Some(b),
        _ => None,
    })
}

fn auctions(events: &[Event]) -> impl Iterator<Item = &Auction> {
    events.iter().filter_map(|e| match e {
        Event::Auction(a) => Some(a),
        _ => None,
    })
}

fn persons(events: &[Event]) -> impl Iterator<Item = &Person> {
    events.iter().filter_map(|e| match e {
        Event::Person(p) => Some(p),
        _ => None,
    })
}

/// q0.
pub fn q0(events: &[Event]) -> Vec<Bid> {
    bids(events).cloned().collect()
}

/// q1.
pub fn q1(events: &[Event]) -> Vec<Q1Row> {
    bids(events)
        .map(|b| Q1Row {
            auction: b.auction,
            bidder: b.bidder,
            price_milli: b.price * 908,
            date_time: b.date_time,
            extra: b.extra.clone(),
        })
        .collect()
}

/// q2.
pub fn q2(events: &[Event]) -> Vec<(i64, i64)> {
    bids(events)
        .filter(|b| b.auction % 123 == 0)
        .map(|b| (b.auction, b.price))
        .collect()
}

/// q3.
pub fn q3(events: &[Event]) -> Vec<Q3Row> {
    let sellers: HashMap<i64, &Person> = persons(events)
        .filter(|p| matches!(p.state.as_str(), "OR" | "ID" | "CA"))
        .map(|p| (p.id, p))
        .collect();
    auctions(events)
        .filter(|a| a.category == 10)
        .filter_map(|a| {
            sellers.get(&a.seller).map(|p| Q3Row {
                name: p.name.clone(),
                city: p.city.clone(),
                state: p.state.clone(),
                auction: a.id,
            })
        })
        .collect()
}

/// q4: the final `(category, average)` per category.
pub fn q4(events: &[Event]) -> Vec<(i64, i64)> {
    let by_id: HashMap<i64, &Auction> = auctions(events).map(|a| (a.id, a)).collect();
    let mut best: HashMap<i64, i64> = HashMap::new();
    for b in bids(events) {
        if let Some(a) = by_id.get(&b.auction) {
            if (a.date_time..=a.expires).contains(&b.date_time) {
                let m = best.entry(a.id).or_insert(i64::MIN);
                *m = (*m).max(b.price);
            }
        }
    }
    let mut per_category: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for (id, max) in best {
        let t = per_category.entry(by_id[&id].category).or_default();
        t.0 += max;
        t.1 += 1;
    }
    per_category
        .into_iter()
        .map(|(c, (sum, n))| (c, sum / n))
        .collect()
}

/// q5.
pub fn q5(events: &[Event]) -> Vec<(i64, i64)> {
    let (size, slide) = (WINDOW_MS as i64, SLIDE_MS as i64);
    let mut counts: BTreeMap<i64, HashMap<i64, i64>> = BTreeMap::new();
    for b in bids(events) {
        let last_start = b.date_time - b.date_time.rem_euclid(slide);
        let mut start = last_start;
        while start > b.date_time - size {
            *counts
                .entry(start)
                .or_default()
                .entry(b.auction)
                .or_default() += 1;
            start -= slide;
        }
    }
    let mut out = Vec::new();
    for per_auction in counts.values() {
        let max = per_auction.values().copied().max().unwrap_or(0);
        out.extend(
            per_auction
                .iter()
                .filter(|(_, c)| **c == max)
                .map(|(a, c)| (*a, *c)),
        );
    }
    out
}

/// q7.
pub fn q7(events: &[Event]) -> Vec<Q7Row> {
    let size = WINDOW_MS as i64;
    let mut windows: BTreeMap<i64, (i64, Vec<&Bid>)> = BTreeMap::new();
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
    windows
        .into_values()
        .flat_map(|(_, bids)| bids)
        .map(|b| Q7Row {
            auction: b.auction,
            price: b.price,
            bidder: b.bidder,
            date_time: b.date_time,
            extra: b.extra.clone(),
        })
        .collect()
}

/// q8.
pub fn q8(events: &[Event]) -> Vec<(i64, String, i64)> {
    let size = WINDOW_MS as i64;
    let window = |t: i64| t - t.rem_euclid(size);
    let selling: HashSet<(i64, i64)> = auctions(events)
        .map(|a| (a.seller, window(a.date_time)))
        .collect();
    persons(events)
        .filter(|p| selling.contains(&(p.id, window(p.date_time))))
        .map(|p| (p.id, p.name.clone(), window(p.date_time)))
        .collect()
}

/// q11.
pub fn q11(events: &[Event]) -> Vec<Q11Row> {
    let gap = WINDOW_MS as i64;
    let mut times: HashMap<i64, Vec<i64>> = HashMap::new();
    for b in bids(events) {
        times.entry(b.bidder).or_default().push(b.date_time);
    }
    let mut out = Vec::new();
    for (bidder, mut ts) in times {
        ts.sort_unstable();
        let mut start = ts[0];
        let (mut last, mut count) = (ts[0], 0i64);
        for t in ts {
            // Windows [t, t + gap) that touch merge, as Flink's session windows.
            if t > last + gap {
                out.push(Q11Row {
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
        out.push(Q11Row {
            bidder,
            bid_count: count,
            start,
            end: last + gap,
        });
    }
    out
}
