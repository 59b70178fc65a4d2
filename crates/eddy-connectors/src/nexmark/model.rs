//! Nexmark's three event types (an online auction: people register, open auctions, bid) and
//! the union the generator emits, with the fields of Flink's Nexmark schema.

use serde::{Deserialize, Serialize};

/// A text field that is usually one of a few values or a slice of a fixed table: borrowed from
/// the generator's static tables when generated (no allocation per event), owned when
/// deserialized. Hashes, compares and serializes exactly as the `String` it stands for.
pub type Text = std::borrow::Cow<'static, str>;

/// A person registering (Flink Nexmark's `person` table).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Person {
    /// Unique id, from 1000.
    pub id: i64,
    /// "First Last".
    pub name: String,
    /// Email address.
    pub email_address: String,
    /// Four groups of four digits.
    pub credit_card: String,
    /// A US city.
    pub city: String,
    /// A US state code.
    pub state: String,
    /// Event time, ms since the epoch.
    pub date_time: i64,
    /// Padding to the average event size.
    pub extra: Text,
}

/// An auction opened by a seller (`auction` table).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Auction {
    /// Unique id, from 1000.
    pub id: i64,
    /// Item name.
    pub item_name: String,
    /// Item description.
    pub description: String,
    /// Starting price, in cents.
    pub initial_bid: i64,
    /// Reserve price, in cents.
    pub reserve: i64,
    /// Event time, ms since the epoch.
    pub date_time: i64,
    /// When the auction closes, ms since the epoch.
    pub expires: i64,
    /// The seller's person id.
    pub seller: i64,
    /// Category id, 10..=14.
    pub category: i64,
    /// Padding to the average event size.
    pub extra: Text,
}

/// A bid on an auction (`bid` table).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Bid {
    /// The auction's id.
    pub auction: i64,
    /// The bidder's person id.
    pub bidder: i64,
    /// Price, in cents.
    pub price: i64,
    /// Where the bid came from ("Google", "channel-42", ...).
    pub channel: Text,
    /// The item's URL.
    pub url: Text,
    /// Event time, ms since the epoch.
    pub date_time: i64,
    /// Padding to the average event size.
    pub extra: Text,
}

/// One generated event. People and auctions (8% of events) are boxed so an event is the
/// size of a bid: events move through batches by value, and the move was the largest cost of
/// the pass-through query.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Event {
    /// A new person.
    Person(Box<Person>),
    /// A new auction.
    Auction(Box<Auction>),
    /// A bid.
    Bid(Bid),
}

impl Event {
    /// The event time, ms since the epoch.
    pub fn date_time(&self) -> i64 {
        match self {
            Event::Person(p) => p.date_time,
            Event::Auction(a) => a.date_time,
            Event::Bid(b) => b.date_time,
        }
    }
}
