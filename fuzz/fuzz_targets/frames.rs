//! Fuzz target `frames`: the binary framing of read responses and pushes.
//! The logic lives in `../frames_common.rs`, which the seed-corpus test runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("../frames_common.rs");

fuzz_target!(|data: &[u8]| {
    let _ = frames_target::run(data);
});
