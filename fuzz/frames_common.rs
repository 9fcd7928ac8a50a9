// The per-input logic of the `frames` fuzz target, shared with the plain test that runs its seed
// corpus (`crates/api/tests/fuzz_frames.rs`); both `include!` this file. It decodes the input as
// a read response's frames and checks the decoder's invariants with `assert!`.

pub mod frames_target {
    #![allow(dead_code)]

    use deaddrop_api::{frames, Frame, FrameError, FRAME_HEADER_LEN};

    /// The longest entry the target accepts, as a client of an xwing ledger would.
    pub const MAX_ENTRY: usize = 4096;

    /// Decodes `data`; returns `ok:N` for N well-formed frames, or `truncated`/`too-long` after
    /// the frames before the bad one.
    pub fn run(data: &[u8]) -> String {
        let mut n = 0usize;
        let mut consumed = 0usize;
        for f in frames(data, MAX_ENTRY) {
            match f {
                Ok(f) => {
                    assert!(f.entry.len() <= MAX_ENTRY);
                    // What was decoded re-encodes to exactly the bytes it came from.
                    let again = Frame { id: f.id, time_ms: f.time_ms, entry: f.entry }.to_vec();
                    assert_eq!(again.as_slice(), &data[consumed..consumed + again.len()]);
                    consumed += FRAME_HEADER_LEN + f.entry.len();
                    n += 1;
                }
                Err(FrameError::Truncated(at)) => {
                    assert_eq!(at, data.len());
                    return "truncated".into();
                }
                Err(FrameError::TooLong { got, max }) => {
                    assert!(got > max);
                    return "too-long".into();
                }
                Err(_) => return "other".into(),
            }
        }
        assert_eq!(consumed, data.len());
        format!("ok:{n}")
    }
}
