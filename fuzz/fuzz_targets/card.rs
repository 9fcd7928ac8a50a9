//! Fuzz target `card`: contact cards, as text and as binary form.
//! The logic lives in `../targets_common.rs`, which the seed-corpus test runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("../targets_common.rs");

fuzz_target!(|data: &[u8]| {
    let _ = targets::card(data);
});
