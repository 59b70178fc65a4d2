//! The Nexmark queries on the DataStream API, as Flink's Nexmark defines them in SQL
//! (<https://github.com/nexmark/nexmark>), each with its output type. Event time is the
//! events' `date_time`; watermarks trail it by 4 s (the benchmark's bounded out-of-orderness).
//!
//! Differences from the SQL text, all deterministic and mirrored by [`crate::reference`]:
//! q1 keeps the converted price exact as thousandths of a cent (`price * 908`) instead of a
//! DECIMAL; q4's average is integral as Flink's `AVG` over BIGINT; q7 emits the bids whose
//! price is the maximum of their own 10 s tumbling window (the SQL's inclusive `BETWEEN` also
//! admits a bid at exactly the next window's start).

use eddy::connectors::nexmark::{Auction, Bid, Event, Person, Text};
use eddy::prelude::*;
use eddy::runtime::windowing::function::FnProcessWindow;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// q1's row: a bid with its price in euro, as thousandths of a cent.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Q1Row {
    /// Auction id.
    pub auction: i64,
    /// Bidder id.
    pub bidder: i64,
    /// `0.908 * price`, in thousandths of a cent.
    pub price_milli: i64,
    /// Event time.
    pub date_time: i64,
    /// Padding.
    pub extra: Text,
}

/// q3's row: a seller in OR, ID or CA and one of their category-10 auctions.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Q3Row {
    /// Seller's name.
    pub name: String,
    /// Seller's city.
    pub city: String,
    /// Seller's state.
    pub state: String,
    /// Auction id.
    pub auction: i64,
}

/// q7's row: a bid with the highest price of its window.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Q7Row {
    /// Auction id.
    pub auction: i64,
    /// The window's highest price.
    pub price: i64,
    /// Bidder id.
    pub bidder: i64,
    /// Event time.
    pub date_time: i64,
    /// Padding.
    pub extra: Text,
}

/// q11's row: one bidder's session.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Q11Row {
    /// Bidder id.
    pub bidder: i64,
    /// Bids in the session.
    pub bid_count: i64,
    /// Session start (first bid).
    pub start: i64,
    /// Session end (last bid + gap).
    pub end: i64,
}

/// Window length of q5 (sliding), q7 and q8 (tumbling); q11's session gap.
pub const WINDOW_MS: u64 = 10_000;
/// q5's slide.
pub const SLIDE_MS: u64 = 2_000;
/// Watermark lag behind the largest event time seen.
pub const OUT_OF_ORDERNESS_MS: u64 = 4_000;

/// The generated events with timestamps and watermarks.
pub fn with_watermarks(events: &DataStream<Event>) -> DataStream<Event> {
    events
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(
                OUT_OF_ORDERNESS_MS,
            ))
            .with_timestamp_assigner(|e: &Event, _| e.date_time()),
        )
        .name("Watermarks")
        .uid("watermarks")
        .into()
}

/// The bids.
pub fn bids(events: &DataStream<Event>) -> DataStream<Bid> {
    events
        .flat_map(|e: Event, out: &mut Collector<'_, Bid>| {
            if let Event::Bid(b) = e {
                out.collect(b)
            }
        })
        .name("Bids")
        .into()
}

/// The auctions.
pub fn auctions(events: &DataStream<Event>) -> DataStream<Auction> {
    events
        .flat_map(|e: Event, out: &mut Collector<'_, Auction>| {
            if let Event::Auction(a) = e {
                out.collect(*a)
            }
        })
        .name("Auctions")
        .into()
}

/// The people.
pub fn persons(events: &DataStream<Event>) -> DataStream<Person> {
    events
        .flat_map(|e: Event, out: &mut Collector<'_, Person>| {
            if let Event::Person(p) = e {
                out.collect(*p)
            }
        })
        .name("Persons")
        .into()
}

/// q0, pass-through: every bid.
pub fn q0(events: &DataStream<Event>) -> DataStream<Bid> {
    bids(events)
}

/// q1, currency conversion: every bid with its price in euro.
pub fn q1(events: &DataStream<Event>) -> DataStream<Q1Row> {
    bids(events)
        .map(|b: Bid| Q1Row {
            auction: b.auction,
            bidder: b.bidder,
            price_milli: b.price * 908,
            date_time: b.date_time,
            extra: b.extra,
        })
        .name("Q1 Convert")
        .into()
}

/// q2, selection: `(auction, price)` of the bids on every 123rd auction.
pub fn q2(events: &DataStream<Event>) -> DataStream<(i64, i64)> {
    events
        .flat_map(|e: Event, out: &mut Collector<'_, (i64, i64)>| {
            if let Event::Bid(b) = e {
                if b.auction % 123 == 0 {
                    out.collect((b.auction, b.price))
                }
            }
        })
        .name("Q2 Select")
        .into()
}

/// q3's incremental join: a seller (once known) with each of their auctions; auctions that
/// arrive before their seller wait in state.
#[derive(Clone, Default)]
struct LocalItemSuggestion {
    /// The seller's `(name, city, state)` and the auctions waiting for the seller.
    state: Option<(ValueState<Seller>, ListState<i64>)>,
}

/// A seller's `(name, city, state)`.
type Seller = (String, String, String);

impl KeyedCoProcessFunction<i64, Person, Auction, Q3Row> for LocalItemSuggestion {
    fn open(&mut self, ctx: &mut RuntimeContext<'_, i64>) -> FunctionResult {
        self.state = Some((
            ctx.get_state(&ValueStateDescriptor::new("person"))?,
            ctx.get_list_state(&ListStateDescriptor::new("pending"))?,
        ));
        Ok(())
    }

    fn process_element1(
        &mut self,
        p: Person,
        ctx: &mut KeyedContext<'_, i64>,
        out: &mut Collector<'_, Q3Row>,
    ) -> FunctionResult {
        let (person, pending) = self.state.ok_or("not open")?;
        for auction in pending.get(ctx)? {
            out.collect(Q3Row {
                name: p.name.clone(),
                city: p.city.clone(),
                state: p.state.clone(),
                auction,
            });
        }
        pending.clear(ctx)?;
        person.update(ctx, (p.name, p.city, p.state))?;
        Ok(())
    }

    fn process_element2(
        &mut self,
        a: Auction,
        ctx: &mut KeyedContext<'_, i64>,
        out: &mut Collector<'_, Q3Row>,
    ) -> FunctionResult {
        let (person, pending) = self.state.ok_or("not open")?;
        match person.value(ctx)? {
            Some((name, city, state)) => out.collect(Q3Row {
                name,
                city,
                state,
                auction: a.id,
            }),
            None => pending.add(ctx, a.id)?,
        }
        Ok(())
    }
}

/// q3, local item suggestion: sellers in OR, ID or CA joined with their category-10 auctions.
pub fn q3(events: &DataStream<Event>) -> DataStream<Q3Row> {
    let people =
        persons(events).filter(|p: &Person| matches!(p.state.as_str(), "OR" | "ID" | "CA"));
    let items = auctions(events).filter(|a: &Auction| a.category == 10);
    people
        .connect(&items)
        .key_by(|p: &Person| p.id, |a: &Auction| a.seller)
        .process(LocalItemSuggestion::default())
        .name("Q3 Join")
        .uid("q3-join")
        .into()
}

/// q4's first stage: per auction, the highest bid within its lifetime, emitted whenever it
/// rises as `(category, auction, max price)`. Bids that arrive before their auction wait.
#[derive(Clone, Default)]
struct WinningBids {
    /// The auction's `(category, start, expires)`, its highest bid so far, and the
    /// `(price, time)` of bids waiting for the auction.
    state: Option<WinningBidsState>,
}

/// [`WinningBids`]' state handles.
type WinningBidsState = (
    ValueState<AuctionSpan>,
    ValueState<i64>,
    ListState<(i64, i64)>,
);

/// An auction's `(category, start, expires)`.
type AuctionSpan = (i64, i64, i64);

impl KeyedCoProcessFunction<i64, Auction, Bid, (i64, i64, i64)> for WinningBids {
    fn open(&mut self, ctx: &mut RuntimeContext<'_, i64>) -> FunctionResult {
        self.state = Some((
            ctx.get_state(&ValueStateDescriptor::new("auction"))?,
            ctx.get_state(&ValueStateDescriptor::new("max"))?,
            ctx.get_list_state(&ListStateDescriptor::new("pending"))?,
        ));
        Ok(())
    }

    fn process_element1(
        &mut self,
        a: Auction,
        ctx: &mut KeyedContext<'_, i64>,
        out: &mut Collector<'_, (i64, i64, i64)>,
    ) -> FunctionResult {
        let (auction, max, pending) = self.state.ok_or("not open")?;
        auction.update(ctx, (a.category, a.date_time, a.expires))?;
        let best = pending
            .get(ctx)?
            .into_iter()
            .filter(|(_, t)| (a.date_time..=a.expires).contains(t))
            .map(|(p, _)| p)
            .max();
        pending.clear(ctx)?;
        if let Some(best) = best {
            max.update(ctx, best)?;
            out.collect((a.category, a.id, best));
        }
        Ok(())
    }

    fn process_element2(
        &mut self,
        b: Bid,
        ctx: &mut KeyedContext<'_, i64>,
        out: &mut Collector<'_, (i64, i64, i64)>,
    ) -> FunctionResult {
        let (auction, max, pending) = self.state.ok_or("not open")?;
        match auction.value(ctx)? {
            Some((category, start, expires)) => {
                if (start..=expires).contains(&b.date_time)
                    && max.value(ctx)?.is_none_or(|m| b.price > m)
                {
                    max.update(ctx, b.price)?;
                    out.collect((category, b.auction, b.price));
                }
            }
            None => pending.add(ctx, (b.price, b.date_time))?,
        }
        Ok(())
    }
}

/// q4's second stage: per category, the average of its auctions' current highest bids,
/// emitted on every change as `(category, average)`.
#[derive(Clone, Default)]
struct CategoryAverage {
    /// Each auction's current highest bid, and the category's `(sum, count)` of them.
    state: Option<CategoryAverageState>,
}

/// [`CategoryAverage`]'s state handles.
type CategoryAverageState = (MapState<i64, i64>, ValueState<(i64, i64)>);

impl KeyedProcessFunction<i64, (i64, i64, i64), (i64, i64)> for CategoryAverage {
    fn open(&mut self, ctx: &mut RuntimeContext<'_, i64>) -> FunctionResult {
        self.state = Some((
            ctx.get_map_state(&MapStateDescriptor::new("maxima"))?,
            ctx.get_state(&ValueStateDescriptor::new("totals"))?,
        ));
        Ok(())
    }

    fn process_element(
        &mut self,
        (category, auction, price): (i64, i64, i64),
        ctx: &mut KeyedContext<'_, i64>,
        out: &mut Collector<'_, (i64, i64)>,
    ) -> FunctionResult {
        let (maxima, totals) = self.state.ok_or("not open")?;
        let (mut sum, mut count) = totals.value(ctx)?.unwrap_or((0, 0));
        match maxima.get(ctx, &auction)? {
            Some(old) => sum += price - old,
            None => {
                sum += price;
                count += 1;
            }
        }
        maxima.put(ctx, auction, price)?;
        totals.update(ctx, (sum, count))?;
        out.collect((category, sum / count));
        Ok(())
    }
}

/// q4, average price per category: the average over auctions of their highest bid placed
/// while the auction was open; an updating result, the last row per category is current.
pub fn q4(events: &DataStream<Event>) -> DataStream<(i64, i64)> {
    auctions(events)
        .connect(&bids(events))
        .key_by(|a: &Auction| a.id, |b: &Bid| b.auction)
        .process(WinningBids::default())
        .name("Q4 Winning Bids")
        .uid("q4-winning")
        .key_by(|t: &(i64, i64, i64)| t.0)
        .process(CategoryAverage::default())
        .name("Q4 Average")
        .uid("q4-average")
        .into()
}

/// Counts the elements of a window. The queries window bare ids, not whole bids: like
/// Flink's SQL planner, they project away the columns they do not need before the window
/// copies each element into every window it belongs to.
#[derive(Clone)]
struct Count;
impl AggregateFunction<i64, i64, i64> for Count {
    fn create_accumulator(&self) -> i64 {
        0
    }
    fn add(&self, _v: i64, acc: &mut i64) {
        *acc += 1;
    }
    fn get_result(&self, acc: &i64) -> i64 {
        *acc
    }
    fn merge(&self, a: i64, b: i64) -> i64 {
        a + b
    }
}

/// Collects per window (the key) what the stage before emitted with timestamp
/// `window end - 1`, and when the watermark passes it hands them all to `emit`.
#[derive(Clone)]
struct PerWindow<T, O> {
    rows: Option<ListState<T>>,
    emit: fn(Vec<T>, &mut Collector<'_, O>),
}

impl<T: Data, O: Data> KeyedProcessFunction<i64, (i64, T), O> for PerWindow<T, O> {
    fn open(&mut self, ctx: &mut RuntimeContext<'_, i64>) -> FunctionResult {
        self.rows = Some(ctx.get_list_state(&ListStateDescriptor::new("rows"))?);
        Ok(())
    }

    fn process_element(
        &mut self,
        (window_end, row): (i64, T),
        ctx: &mut KeyedContext<'_, i64>,
        _out: &mut Collector<'_, O>,
    ) -> FunctionResult {
        let rows = self.rows.as_ref().ok_or("not open")?;
        rows.add(ctx, row)?;
        ctx.timer_service()
            .register_event_time_timer(window_end - 1);
        Ok(())
    }

    fn on_timer(
        &mut self,
        _timestamp: i64,
        ctx: &mut KeyedContext<'_, i64>,
        out: &mut Collector<'_, O>,
    ) -> FunctionResult {
        let rows = self.rows.as_ref().ok_or("not open")?;
        let all = rows.get(ctx)?;
        rows.clear(ctx)?;
        (self.emit)(all, out);
        Ok(())
    }
}

/// q5, hot items: per 10 s window sliding by 2 s, the auctions with the most bids, as
/// `(auction, bids)`. Bids are counted in two phases (per auction and 2 s slice before the
/// shuffle, then per window), as Flink SQL's local-global window aggregation does.
pub fn q5(events: &DataStream<Event>) -> DataStream<(i64, i64)> {
    bids(events)
        .map(|b: Bid| b.auction)
        .key_by(|auction: &i64| *auction)
        .window(SlidingEventTimeWindows::of(
            Duration::from_millis(WINDOW_MS),
            Duration::from_millis(SLIDE_MS),
        ))
        .aggregate_two_phase_with(
            Count,
            FnProcessWindow(
                |auction: &i64,
                 ctx: &mut WindowContext<'_, i64, TimeWindow>,
                 counts: Vec<i64>,
                 out: &mut Collector<'_, (i64, (i64, i64))>|
                 -> FunctionResult {
                    for c in counts {
                        out.collect((ctx.window().end, (*auction, c)));
                    }
                    Ok(())
                },
            ),
        )
        .name("Q5 Count")
        .uid("q5-count")
        .key_by(|t: &(i64, (i64, i64))| t.0)
        .process(PerWindow {
            rows: None,
            emit: |rows: Vec<(i64, i64)>, out: &mut Collector<'_, (i64, i64)>| {
                let max = rows.iter().map(|r| r.1).max().unwrap_or(0);
                for r in rows.into_iter().filter(|r| r.1 == max) {
                    out.collect(r);
                }
            },
        })
        .name("Q5 Hottest")
        .uid("q5-hottest")
        .into()
}

/// q7's accumulator: the highest price and the bids that have it.
#[derive(Clone)]
struct MaxBids;
impl AggregateFunction<Bid, (i64, Vec<Bid>), (i64, Vec<Bid>)> for MaxBids {
    fn create_accumulator(&self) -> (i64, Vec<Bid>) {
        (i64::MIN, Vec::new())
    }
    fn add(&self, b: Bid, acc: &mut (i64, Vec<Bid>)) {
        if b.price > acc.0 {
            *acc = (b.price, vec![b]);
        } else if b.price == acc.0 {
            acc.1.push(b);
        }
    }
    fn get_result(&self, acc: &(i64, Vec<Bid>)) -> (i64, Vec<Bid>) {
        acc.clone()
    }
    fn merge(&self, a: (i64, Vec<Bid>), b: (i64, Vec<Bid>)) -> (i64, Vec<Bid>) {
        match a.0.cmp(&b.0) {
            std::cmp::Ordering::Greater => a,
            std::cmp::Ordering::Less => b,
            std::cmp::Ordering::Equal => (a.0, a.1.into_iter().chain(b.1).collect()),
        }
    }
}

/// q7, highest bid: the bids with the highest price of each 10 s tumbling window (computed
/// per auction first, then per window).
pub fn q7(events: &DataStream<Event>) -> DataStream<Q7Row> {
    bids(events)
        .key_by(|b: &Bid| b.auction)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(
            WINDOW_MS,
        )))
        .aggregate_with(
            MaxBids,
            FnProcessWindow(
                |_auction: &i64,
                 ctx: &mut WindowContext<'_, i64, TimeWindow>,
                 best: Vec<(i64, Vec<Bid>)>,
                 out: &mut Collector<'_, (i64, (i64, Vec<Bid>))>|
                 -> FunctionResult {
                    for b in best {
                        out.collect((ctx.window().end, b));
                    }
                    Ok(())
                },
            ),
        )
        .name("Q7 Max Per Auction")
        .uid("q7-max-auction")
        .key_by(|t: &(i64, (i64, Vec<Bid>))| t.0)
        .process(PerWindow {
            rows: None,
            emit: |rows: Vec<(i64, Vec<Bid>)>, out: &mut Collector<'_, Q7Row>| {
                let max = rows.iter().map(|r| r.0).max().unwrap_or(i64::MIN);
                for (_, bids) in rows.into_iter().filter(|r| r.0 == max) {
                    for b in bids {
                        out.collect(Q7Row {
                            auction: b.auction,
                            price: b.price,
                            bidder: b.bidder,
                            date_time: b.date_time,
                            extra: b.extra,
                        });
                    }
                }
            },
        })
        .name("Q7 Max Per Window")
        .uid("q7-max-window")
        .into()
}

/// q8, monitor new users: people who opened an auction in the same 10 s tumbling window they
/// registered in, as `(id, name, window start)`.
pub fn q8(events: &DataStream<Event>) -> DataStream<(i64, String, i64)> {
    let people = persons(events).map(|p: Person| (p.id, p.name, p.date_time));
    let sellers = auctions(events).map(|a: Auction| (a.seller, a.date_time));
    people
        .co_group(&sellers)
        .where_(|p: &(i64, String, i64)| p.0)
        .equal_to(|a: &(i64, i64)| a.0)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(
            WINDOW_MS,
        )))
        .apply(
            |people: Vec<(i64, String, i64)>,
             sellers: Vec<(i64, i64)>,
             out: &mut Collector<'_, (i64, String, i64)>| {
                if sellers.is_empty() {
                    return;
                }
                let w = WINDOW_MS as i64;
                for (id, name, t) in people {
                    out.collect((id, name, t - t.rem_euclid(w)));
                }
            },
        )
        .name("Q8 Join")
        .uid("q8-join")
        .into()
}

/// q11, user sessions: bids per bidder session (10 s of inactivity closes one).
pub fn q11(events: &DataStream<Event>) -> DataStream<Q11Row> {
    bids(events)
        .map(|b: Bid| b.bidder)
        .key_by(|bidder: &i64| *bidder)
        .window(EventTimeSessionWindows::with_gap(Duration::from_millis(
            WINDOW_MS,
        )))
        .aggregate_with(
            Count,
            FnProcessWindow(
                |bidder: &i64,
                 ctx: &mut WindowContext<'_, i64, TimeWindow>,
                 counts: Vec<i64>,
                 out: &mut Collector<'_, Q11Row>|
                 -> FunctionResult {
                    let w = *ctx.window();
                    for c in counts {
                        out.collect(Q11Row {
                            bidder: *bidder,
                            bid_count: c,
                            start: w.start,
                            end: w.end,
                        });
                    }
                    Ok(())
                },
            ),
        )
        .name("Q11 Sessions")
        .uid("q11-sessions")
        .into()
}
