//! Fuzz target `address`: addresses, as text and as raw key bytes.
//! The logic lives in `../targets_common.rs`, which the seed-corpus test runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("../targets_common.rs");

fuzz_target!(|data: &[u8]| {
    let _ = targets::address(data);
});
