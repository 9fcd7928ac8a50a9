//! What the benchmarks share: rates, rounding for the report, and the `--suite` parser.

use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use deaddrop_proto::Suite;

/// Suite names come from `proto`, so `--help` and errors list exactly the suites it knows.
pub fn suite_parser() -> impl TypedValueParser<Value = Suite> {
    PossibleValuesParser::new(Suite::ALL.map(Suite::name)).try_map(|name| name.parse::<Suite>())
}

/// `count` per second of `elapsed` (never a division by zero).
pub fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// `x` rounded to `decimals` places, for a report that prints no false precision.
pub fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}
