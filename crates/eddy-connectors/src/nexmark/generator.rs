//! The Nexmark event generator, following Flink's (and Beam's) `NexmarkGenerator`: event `n`
//! is a person, an auction or a bid by `n % 50` (1 : 3 : 46), generated from a
//! `java.util.Random` seeded with `n` — so any event can be generated on its own, in any
//! order, by any subtask, and the sequence is the same for every parallelism. Ids start at
//! 1000, about 100 auctions are in flight and 1000 people active; bids favour hot auctions
//! and hot bidders, auctions hot sellers. Event time advances by a configurable inter-event
//! delay from a fixed base time.

use super::model::{Auction, Bid, Event, Person, Text};
use super::random::JavaRandom;

const PERSON_PROPORTION: i64 = 1;
const AUCTION_PROPORTION: i64 = 3;
const BID_PROPORTION: i64 = 46;
const TOTAL_PROPORTION: i64 = PERSON_PROPORTION + AUCTION_PROPORTION + BID_PROPORTION;

/// First person id.
pub const FIRST_PERSON_ID: i64 = 1000;
/// First auction id.
pub const FIRST_AUCTION_ID: i64 = 1000;
/// First category id (categories are 10..=14).
pub const FIRST_CATEGORY_ID: i64 = 10;
const NUM_CATEGORIES: i32 = 5;
const PERSON_ID_LEAD: i64 = 10;
const AUCTION_ID_LEAD: i64 = 10;
const HOT_AUCTION_RATIO: i64 = 100;
const HOT_SELLER_RATIO: i64 = 100;
const HOT_BIDDER_RATIO: i64 = 100;
const HOT_CHANNELS_RATIO: i32 = 2;
const CHANNELS_NUMBER: i32 = 10_000;
const MIN_STRING_LENGTH: i32 = 3;

const FIRST_NAMES: [&str; 11] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
const LAST_NAMES: [&str; 9] = [
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];
const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const US_CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];
const HOT_URLS: [&str; 4] = [
    "https://www.nexmark.com/googl/item.htm?query=1",
    "https://www.nexmark.com/faceb/item.htm?query=1",
    "https://www.nexmark.com/baidu/item.htm?query=1",
    "https://www.nexmark.com/apple/item.htm?query=1",
];

/// What to generate (Flink Nexmark's `GeneratorConfig` with its defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratorConfig {
    /// How many events in all.
    pub events: u64,
    /// Event-time rate: events per second of event time (the inter-event delay is its
    /// inverse). Flink's Nexmark runs at 10 M/s.
    pub events_per_second: u64,
    /// Event time of event 0, ms since the epoch.
    pub base_time_ms: i64,
    /// Auctions open at a time.
    pub in_flight_auctions: i64,
    /// People active at a time.
    pub active_people: i64,
    /// 1 in this many bids is not for a hot auction.
    pub hot_auction_ratio: i32,
    /// 1 in this many auctions is not by a hot seller.
    pub hot_sellers_ratio: i32,
    /// 1 in this many bids is not by a hot bidder.
    pub hot_bidders_ratio: i32,
    /// Average serialized sizes the `extra` padding aims at.
    pub avg_person_bytes: i32,
    /// See `avg_person_bytes`.
    pub avg_auction_bytes: i32,
    /// See `avg_person_bytes`.
    pub avg_bid_bytes: i32,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            events: 10_000_000,
            events_per_second: 10_000_000,
            // 2015-07-15T00:00:00Z, Beam's Nexmark base time.
            base_time_ms: 1_436_918_400_000,
            in_flight_auctions: 100,
            active_people: 1000,
            hot_auction_ratio: 2,
            hot_sellers_ratio: 4,
            hot_bidders_ratio: 4,
            avg_person_bytes: 200,
            avg_auction_bytes: 500,
            avg_bid_bytes: 100,
        }
    }
}

/// A generator setting that cannot work, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Nexmark generator setting {field} = {value}: {why}")]
pub struct InvalidGeneratorConfig {
    /// The field.
    pub field: &'static str,
    /// Its value.
    pub value: i64,
    /// What it must be.
    pub why: &'static str,
}

/// Which kind event number `n` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A person.
    Person,
    /// An auction.
    Auction,
    /// A bid.
    Bid,
}

/// The kind of event `n`.
#[inline]
pub fn kind_of(n: u64) -> EventKind {
    let rem = (n % TOTAL_PROPORTION as u64) as i64;
    if rem < PERSON_PROPORTION {
        EventKind::Person
    } else if rem < PERSON_PROPORTION + AUCTION_PROPORTION {
        EventKind::Auction
    } else {
        EventKind::Bid
    }
}

impl GeneratorConfig {
    /// Checks every setting (the generator divides by the ratios and the rate).
    pub fn validate(&self) -> Result<(), InvalidGeneratorConfig> {
        let positive = [
            ("events_per_second", self.events_per_second as i64),
            ("in_flight_auctions", self.in_flight_auctions),
            ("active_people", self.active_people),
            ("hot_auction_ratio", self.hot_auction_ratio as i64),
            ("hot_sellers_ratio", self.hot_sellers_ratio as i64),
            ("hot_bidders_ratio", self.hot_bidders_ratio as i64),
        ];
        for (field, value) in positive {
            if value < 1 {
                return Err(InvalidGeneratorConfig {
                    field,
                    value,
                    why: "must be at least 1",
                });
            }
        }
        for (field, value) in [
            ("avg_person_bytes", self.avg_person_bytes),
            ("avg_auction_bytes", self.avg_auction_bytes),
            ("avg_bid_bytes", self.avg_bid_bytes),
        ] {
            if value < 0 {
                return Err(InvalidGeneratorConfig {
                    field,
                    value: value as i64,
                    why: "must not be negative",
                });
            }
        }
        Ok(())
    }

    /// Event time of event `n`, ms.
    #[inline]
    pub fn timestamp(&self, n: u64) -> i64 {
        let rate = self.events_per_second.max(1) as u128;
        self.base_time_ms + (n as u128 * 1000 / rate) as i64
    }

    /// Event `n` (0-based).
    pub fn event(&self, n: u64) -> Event {
        let id = n as i64;
        let mut r = JavaRandom::new(id);
        let ts = self.timestamp(n);
        match kind_of(n) {
            EventKind::Person => Event::Person(Box::new(self.person(id, &mut r, ts))),
            EventKind::Auction => Event::Auction(Box::new(self.auction(n, id, &mut r, ts))),
            EventKind::Bid => Event::Bid(self.bid(id, &mut r, ts)),
        }
    }

    fn person(&self, event_id: i64, r: &mut JavaRandom, ts: i64) -> Person {
        let id = last_base0_person_id(event_id) + FIRST_PERSON_ID;
        let name = format!(
            "{} {}",
            FIRST_NAMES[r.next_int(FIRST_NAMES.len() as i32) as usize],
            LAST_NAMES[r.next_int(LAST_NAMES.len() as i32) as usize]
        );
        let email_address = format!("{}@{}.com", next_string(r, 7), next_string(r, 5));
        let credit_card = (0..4)
            .map(|_| format!("{:04}", r.next_int(10_000)))
            .collect::<Vec<_>>()
            .join(" ");
        let city = US_CITIES[r.next_int(US_CITIES.len() as i32) as usize].to_string();
        let state = US_STATES[r.next_int(US_STATES.len() as i32) as usize].to_string();
        let size =
            8 + name.len() + email_address.len() + credit_card.len() + city.len() + state.len();
        let extra = next_extra(r, size as i32, self.avg_person_bytes);
        Person {
            id,
            name,
            email_address,
            credit_card,
            city,
            state,
            date_time: ts,
            extra,
        }
    }

    fn next_base0_person_id(&self, event_id: i64, r: &mut JavaRandom) -> i64 {
        let num_people = last_base0_person_id(event_id) + 1;
        let active = num_people.min(self.active_people);
        let n = next_long(r, active + PERSON_ID_LEAD);
        num_people - active + n
    }

    fn next_base0_auction_id(&self, event_id: i64, r: &mut JavaRandom) -> i64 {
        let max = last_base0_auction_id(event_id);
        let min = (max - self.in_flight_auctions).max(0);
        min + next_long(r, max - min + 1 + AUCTION_ID_LEAD)
    }

    fn auction(&self, n: u64, event_id: i64, r: &mut JavaRandom, ts: i64) -> Auction {
        let id = last_base0_auction_id(event_id) + FIRST_AUCTION_ID;
        let seller = if r.next_int(self.hot_sellers_ratio) > 0 {
            (last_base0_person_id(event_id) / HOT_SELLER_RATIO) * HOT_SELLER_RATIO
        } else {
            self.next_base0_person_id(event_id, r)
        } + FIRST_PERSON_ID;
        let category = FIRST_CATEGORY_ID + r.next_int(NUM_CATEGORIES) as i64;
        let initial_bid = next_price(r);
        // An auction lasts up to twice the event time it takes for the in-flight auctions
        // to be replaced.
        let events_for_auctions =
            (self.in_flight_auctions * TOTAL_PROPORTION / AUCTION_PROPORTION) as u64;
        let horizon = self.timestamp(n + events_for_auctions) - ts;
        let expires = ts + 1 + next_long(r, (horizon * 2).max(1));
        let item_name = next_string(r, 20);
        let description = next_string(r, 100);
        let reserve = initial_bid + next_price(r);
        let size = 8 + item_name.len() + description.len() + 8 + 8 + 8 + 8 + 8;
        let extra = next_extra(r, size as i32, self.avg_auction_bytes);
        Auction {
            id,
            item_name,
            description,
            initial_bid,
            reserve,
            date_time: ts,
            expires,
            seller,
            category,
            extra,
        }
    }

    fn bid(&self, event_id: i64, r: &mut JavaRandom, ts: i64) -> Bid {
        let auction = if r.next_int(self.hot_auction_ratio) > 0 {
            (last_base0_auction_id(event_id) / HOT_AUCTION_RATIO) * HOT_AUCTION_RATIO
        } else {
            self.next_base0_auction_id(event_id, r)
        } + FIRST_AUCTION_ID;
        let bidder = if r.next_int(self.hot_bidders_ratio) > 0 {
            (last_base0_person_id(event_id) / HOT_BIDDER_RATIO) * HOT_BIDDER_RATIO + 1
        } else {
            self.next_base0_person_id(event_id, r)
        } + FIRST_PERSON_ID;
        let price = next_price(r);
        let (channel, url) = if r.next_int(HOT_CHANNELS_RATIO) > 0 {
            let i = r.next_int(HOT_CHANNELS.len() as i32) as usize;
            (HOT_CHANNELS[i], HOT_URLS[i])
        } else {
            channel_names()[r.next_int(CHANNELS_NUMBER) as usize]
        };
        let (channel, url) = (Text::Borrowed(channel), Text::Borrowed(url));
        let extra = next_extra(r, 32, self.avg_bid_bytes);
        Bid {
            auction,
            bidder,
            price,
            channel,
            url,
            date_time: ts,
            extra,
        }
    }
}

/// The 0-based id of the last person created at or before event `event_id`.
fn last_base0_person_id(event_id: i64) -> i64 {
    let epoch = event_id / TOTAL_PROPORTION;
    let offset = (event_id % TOTAL_PROPORTION).min(PERSON_PROPORTION - 1);
    epoch * PERSON_PROPORTION + offset
}

/// The 0-based id of the last auction created at or before event `event_id`.
fn last_base0_auction_id(event_id: i64) -> i64 {
    let mut epoch = event_id / TOTAL_PROPORTION;
    let mut offset = event_id % TOTAL_PROPORTION;
    if offset < PERSON_PROPORTION {
        epoch -= 1;
        offset = AUCTION_PROPORTION - 1;
    } else if offset >= PERSON_PROPORTION + AUCTION_PROPORTION {
        offset = AUCTION_PROPORTION - 1;
    } else {
        offset -= PERSON_PROPORTION;
    }
    epoch * AUCTION_PROPORTION + offset
}

/// Nexmark's `nextLong(random, n)`: `[0, n)`.
fn next_long(r: &mut JavaRandom, n: i64) -> i64 {
    if n < i32::MAX as i64 {
        r.next_int(n as i32) as i64
    } else {
        (r.next_long() % n).abs()
    }
}

/// A price in cents, log-uniform between $1 and $1,000,000.
fn next_price(r: &mut JavaRandom) -> i64 {
    (10f64.powf(r.next_double() * 6.0) * 100.0).round() as i64
}

/// 3 to `max_len - 1` lowercase letters with an occasional space, trimmed.
fn next_string(r: &mut JavaRandom, max_len: i32) -> String {
    let len = MIN_STRING_LENGTH + r.next_int(max_len - MIN_STRING_LENGTH);
    let mut s = String::with_capacity(len as usize);
    for _ in 0..len {
        if r.next_int(13) == 0 {
            s.push(' ');
        } else {
            s.push((b'a' + r.next_int(26) as u8) as char);
        }
    }
    s.trim().to_string()
}

/// Padding so the event's size averages `desired` bytes (±20%). Flink draws every letter
/// from the event's `Random` (one draw per byte, most of a bid's generation cost); here the
/// length is drawn as Flink does and the letters are a slice of a fixed pseudo-random table at
/// a drawn offset — the same sizes and alphabet, deterministic, one draw instead of ~70.
fn next_extra(r: &mut JavaRandom, current: i32, desired: i32) -> Text {
    if current > desired {
        return Text::Borrowed("");
    }
    let desired = desired - current;
    let delta = (desired as f64 * 0.2).round() as i32;
    let min = desired - delta;
    let size = (min + if delta == 0 { 0 } else { r.next_int(2 * delta) }) as usize;
    let table = letters();
    let size = size.min(table.len() / 2);
    let offset = r.next_int((table.len() - size) as i32) as usize;
    Text::Borrowed(&table[offset..offset + size])
}

/// `channel-<c>` and its URL for every channel number, built once per process (≈ 0.7 MB), so
/// a bid borrows them instead of formatting two strings.
fn channel_names() -> &'static [(&'static str, &'static str)] {
    static TABLE: std::sync::OnceLock<Vec<(&'static str, &'static str)>> =
        std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        (0..CHANNELS_NUMBER)
            .map(|c| {
                let name: &'static str = Box::leak(format!("channel-{c}").into_boxed_str());
                let url: &'static str = Box::leak(
                    format!("https://www.nexmark.com/item.htm?query=1&channel_id={c}")
                        .into_boxed_str(),
                );
                (name, url)
            })
            .collect()
    })
}

/// 4 KiB of lowercase letters from a fixed-seed `Random`.
fn letters() -> &'static str {
    static TABLE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut r = JavaRandom::new(0x4e58_4d4b);
        (0..4096)
            .map(|_| (b'a' + r.next_int(26) as u8) as char)
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proportions_ids_and_categories() {
        let g = GeneratorConfig::default();
        let (mut people, mut auctions, mut bids) = (0, 0, 0);
        let mut last_person = FIRST_PERSON_ID - 1;
        let mut last_auction = FIRST_AUCTION_ID - 1;
        for n in 0..5000 {
            match g.event(n) {
                Event::Person(p) => {
                    people += 1;
                    assert_eq!(p.id, last_person + 1);
                    last_person = p.id;
                }
                Event::Auction(a) => {
                    auctions += 1;
                    assert_eq!(a.id, last_auction + 1);
                    last_auction = a.id;
                    assert!((10..=14).contains(&a.category));
                    assert!(a.seller >= FIRST_PERSON_ID && a.seller <= last_person + 10);
                    assert!(a.expires > a.date_time && a.reserve >= a.initial_bid);
                }
                Event::Bid(b) => {
                    bids += 1;
                    assert!(b.auction >= FIRST_AUCTION_ID && b.auction <= last_auction + 11);
                    assert!(b.price >= 100);
                }
            }
        }
        assert_eq!((people, auctions, bids), (100, 300, 4600));
    }

    #[test]
    fn settings_that_cannot_work_are_named() {
        assert_eq!(GeneratorConfig::default().validate(), Ok(()));
        let bad = GeneratorConfig {
            hot_bidders_ratio: 0,
            ..Default::default()
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("hot_bidders_ratio = 0"), "{err}");
    }

    #[test]
    fn deterministic_and_time_follows_the_rate() {
        let g = GeneratorConfig {
            events_per_second: 1000,
            ..Default::default()
        };
        assert_eq!(g.event(1234), g.event(1234));
        assert_eq!(g.timestamp(0), g.base_time_ms);
        assert_eq!(g.timestamp(2500), g.base_time_ms + 2500);
        assert_eq!(g.event(77).date_time(), g.base_time_ms + 77);
    }
}
