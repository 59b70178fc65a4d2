//! The eddy-cli process tests' shared pieces: the built `eddy` binary, the harness of
//! `eddy-testing`, and the window input these tests feed it.
#![allow(dead_code)]

pub use eddy_testing::*;
use std::io::Write;
use std::path::Path;

/// The `eddy` binary under test.
pub const EDDY: &str = env!("CARGO_BIN_EXE_eddy");

pub fn window_csv(path: &Path, keys: u64, records: u64) {
    let mut f = std::fs::File::create(path).unwrap();
    writeln!(f, "key,timestamp_ms,value").unwrap();
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..records {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let ts = i as i64 * 10 - (s % 120) as i64;
        writeln!(f, "k{},{},{}", s % keys, ts.max(0), (s >> 20) % 1000).unwrap();
    }
}
