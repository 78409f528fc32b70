#![no_main]
// The body lives in the library (relay_machine::fuzzing) so tests/fuzz_corpus.rs replays it.
libfuzzer_sys::fuzz_target!(|data: &[u8]| relay_machine::fuzzing::fast_path(data));
