//! The `fast_path` target: the codec's hand-written reader of the frames a gateway
//! receives most (`codec/fast.rs`) against serde_json's general path.

/// Every line of `data` through both paths.
///
/// Invariants: whenever the fast path decodes a line, the general path decodes it to an
/// equal frame; and the connector's typed way to an `outbound` reads every line as the
/// fast path does (it may not accept, or read differently, anything the general path does
/// not). The seeds are corpus frames, so the fuzzer mutates lines the fast path reads.
pub fn fast_path(data: &[u8]) {
    for line in data.split(|&b| b == b'\n') {
        fast_path_line(line);
    }
}

/// One line (without its newline) through both paths, as [`fast_path`] does; returns
/// whether the fast path decided it, so a test can tell its lines exercise that path.
pub fn fast_path_line(line: &[u8]) -> bool {
    assert!(
        crate::codec::outbound_way_agrees(line),
        "the connector's way to an outbound reads {:?} differently",
        String::from_utf8_lossy(line)
    );
    let Some((fast, general)) = crate::codec::both_paths(line) else {
        return false;
    };
    let text = String::from_utf8_lossy(line);
    match general {
        Ok(general) => assert_eq!(fast, general, "the paths decode {text:?} differently"),
        Err(e) => panic!("the fast path decodes {text:?} to {fast:?}; the general path: {e}"),
    }
    true
}

/// How many of the lines at the start of `message` the fast path decides when it reads
/// them straight from the message, as the decoder does with a shared one (each line read
/// from the whole rest of the message, the reader stopping at its newline), and how many
/// values of them it handed to serde_json instead of reading them by hand: for tests that
/// what it reads by hand alone it reads by hand there too.
pub fn fast_path_in_message(message: &[u8]) -> (usize, usize) {
    crate::codec::fast_lines(message)
}
