//! Fuzz target `entry`: entry bytes as a ledger serves them, parsed for both suites and opened
//! by a fixed receiver of each.
//! The logic lives in `../targets_common.rs`, which the seed-corpus test runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("../targets_common.rs");

fuzz_target!(|data: &[u8]| {
    let _ = targets::entry(data);
});
