//! The decoder's framing: over-long lines are reported once and never stored, `finish`
//! decodes a last line without newline, `reset` forgets the partial line, a `Bytes`
//! message is decoded in place.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::wildcard_enum_match_arm
)]

use relay_machine::codec::{DecodeErrorKind, FrameDecoder};
use relay_machine::wire::{BufferId, Frame, InboundAck};

use DecodeErrorKind::{FrameTooLong, InvalidJson};

#[test]
fn over_long_lines_with_a_small_limit() {
    const MAX: usize = 48;
    let exact = format!(
        r#"{{"type":"inbound_ack","bufferId":"{}"}}"#,
        "x".repeat(MAX - 36)
    );
    assert_eq!(exact.len(), MAX);
    let one_more = format!(
        r#"{{"type":"inbound_ack","bufferId":"{}"}}"#,
        "x".repeat(MAX - 35)
    );
    let huge = format!(r#"{{"type":"presence","pad":"{}"}}"#, "y".repeat(10 * MAX));
    let ack = |n: usize| -> Frame {
        InboundAck {
            buffer_id: BufferId::from("x".repeat(n)),
        }
        .into()
    };
    let stream =
        format!("{exact}\n{one_more}\n{exact}\r\n{huge}\n{{\"type\":\"going_idle\"}}\n{huge}");

    // One chunk, then one byte at a time: same results, buffer always bounded.
    for chunk in [stream.len(), 1, 7] {
        let mut decoder = FrameDecoder::with_max_frame_len(MAX);
        assert_eq!(decoder.max_frame_len(), MAX);
        let mut items = Vec::new();
        for piece in stream.as_bytes().chunks(chunk) {
            decoder.push(piece);
            assert!(decoder.buffered_len() <= MAX);
            items.extend(std::iter::from_fn(|| decoder.next_frame()));
        }
        decoder.finish();
        items.extend(std::iter::from_fn(|| decoder.next_frame()));

        // Errors compared by what they say: kind, place, message and no salvage.
        type Seen = Result<Frame, (DecodeErrorKind, u64, u64, String, bool)>;
        let items: Vec<Seen> = items
            .into_iter()
            .map(|item| {
                item.map_err(|e| {
                    let salvaged = e.frame_type.is_some() || e.salvage.is_some();
                    (e.kind, e.line, e.offset, e.message, salvaged)
                })
            })
            .collect();
        let too_long = |line: u64, offset: usize| -> Seen {
            Err((
                FrameTooLong,
                line,
                offset as u64,
                format!("line exceeds {MAX} bytes"),
                false,
            ))
        };
        let l2 = exact.len() + 1;
        let l3 = l2 + one_more.len() + 1;
        let l4 = l3 + exact.len() + 2;
        let l6 = l4 + huge.len() + 1 + r#"{"type":"going_idle"}"#.len() + 1;
        assert_eq!(
            items,
            vec![
                Ok(ack(MAX - 36)),
                too_long(2, l2),
                // The `\r` counts towards the limit: a line of exactly MAX bytes plus
                // `\r` is too long.
                too_long(3, l3),
                too_long(4, l4),
                Ok(Frame::GoingIdle),
                // The last line has no newline; it is reported once, as soon as it
                // crosses the limit, and `finish` adds nothing.
                too_long(6, l6),
            ],
            "chunk size {chunk}"
        );
        assert_eq!(decoder.buffered_len(), 0);
    }
}

#[test]
fn an_over_long_line_is_never_stored() {
    let mut decoder = FrameDecoder::with_max_frame_len(24);
    decoder.push(b"{\"type\":\"presence\",\"pad\":\"");
    assert_eq!(decoder.buffered_len(), 0, "dropped as soon as it crossed");
    let first = decoder.next_frame().unwrap().unwrap_err();
    assert_eq!((first.kind, first.line, first.offset), (FrameTooLong, 1, 0));
    for _ in 0..1000 {
        decoder.push(&[b'z'; 1024]);
        assert_eq!(decoder.buffered_len(), 0);
    }
    assert_eq!(decoder.next_frame(), None, "reported once");
    decoder.push(b"\"}\n{\"type\":\"going_idle\"}\n");
    assert_eq!(decoder.next_frame(), Some(Ok(Frame::GoingIdle)));
    assert_eq!(decoder.next_frame(), None);
}

#[test]
fn finish_decodes_a_last_line_without_newline() {
    let mut decoder = FrameDecoder::new();
    decoder.push(b"{\"type\":\"going_idle\"}\n{\"type\":\"going_idle_ack\"}");
    assert_eq!(decoder.next_frame(), Some(Ok(Frame::GoingIdle)));
    assert_eq!(decoder.next_frame(), None, "no newline, no frame");
    assert_eq!(decoder.buffered_len(), 25);
    decoder.finish();
    assert_eq!(decoder.next_frame(), Some(Ok(Frame::GoingIdleAck)));
    assert_eq!(decoder.buffered_len(), 0);

    let mut decoder = FrameDecoder::new();
    decoder.push(b"\n\n{oops");
    decoder.finish();
    let e = decoder.next_frame().unwrap().unwrap_err();
    assert_eq!((e.kind, e.line, e.offset), (InvalidJson, 3, 3));
}

#[test]
fn reset_forgets_the_partial_line_and_restarts_counting() {
    let mut decoder = FrameDecoder::with_max_frame_len(64);
    decoder.push(b"{\"type\":\"going_idle\"}\n{\"type\":\"going_id");
    decoder.reset();
    assert_eq!(decoder.max_frame_len(), 64);
    assert_eq!(decoder.buffered_len(), 0);
    assert_eq!(decoder.next_frame(), None, "queued frames are dropped too");
    decoder.push(b"le\"}\nnope\n");
    let e = decoder.next_frame().unwrap().unwrap_err();
    assert_eq!((e.kind, e.line, e.offset), (InvalidJson, 1, 0));
    let e = decoder.next_frame().unwrap().unwrap_err();
    // `n` starts `null`; the `o` is the problem.
    assert_eq!((e.kind, e.line, e.offset), (InvalidJson, 2, 6));
}

/// A message handed over as `Bytes` is decoded in place: its frames' long strings are
/// slices of it, not copies. Mixed with borrowed pushes, and with lines cut across
/// messages, the frames and their order are those of the stream.
#[test]
fn bytes_are_decoded_in_place_and_in_order() {
    let text = "a message text long enough not to be kept inline";
    let line = |id: u32| {
        format!(r#"{{"type":"inbound","event":{{"text":"{text} {id}"}},"bufferId":"b-{id}"}}"#)
            + "\n"
    };
    let message = bytes::Bytes::from(line(1) + &line(2));
    let mut decoder = FrameDecoder::new();
    decoder.push_bytes(message.clone());
    let Some(Ok(Frame::Inbound(first))) = decoder.next_frame() else {
        panic!("no first frame")
    };
    assert_eq!(first.event.text, format!("{text} 1"));
    assert!(first.event.text.is_shared_slice(&message));

    // Unscanned bytes remain (line 2), so this borrowed push comes after them, and the
    // next shared one after that; line 5 is cut across two messages.
    decoder.push(line(3).as_bytes());
    let five = line(5);
    let (five_a, five_b) = five.split_at(20);
    decoder.push_bytes(bytes::Bytes::from(line(4) + five_a));
    let ids: Vec<String> = std::iter::from_fn(|| decoder.next_frame())
        .map(|item| match item {
            Ok(Frame::Inbound(inbound)) => inbound.buffer_id.unwrap().to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, ["b-2", "b-3", "b-4"]);
    assert_eq!(decoder.buffered_len(), 20);
    decoder.push_bytes(bytes::Bytes::copy_from_slice(five_b.as_bytes()));
    let Some(Ok(Frame::Inbound(fifth))) = decoder.next_frame() else {
        panic!("no fifth frame")
    };
    assert_eq!(fifth.buffer_id.unwrap().as_str(), "b-5");
    assert_eq!(decoder.next_frame(), None);
}

/// A shared message of whole lines is read line by line straight from the message by the
/// fast path, without a newline search first: every item, errors' line numbers and
/// offsets included, is what the same bytes give through a borrowed push (the usual way,
/// a line split off and then decoded), whatever mix of lines surrounds it.
#[test]
fn a_shared_message_decodes_as_a_borrowed_one() {
    let inbound = |n: u32, tail: &str| {
        format!(
            r#"{{"type":"inbound","event":{{"text":"héllo {n}","source":{{"platform":"p","chat_id":"c{n}","chat_type":"dm"}}}},"bufferId":"b-{n}"}}{tail}"#
        )
    };
    let result = r#"{"type":"outbound_result","requestId":"r-1","result":{"success":true}}"#;
    let long = format!(
        r#"{{"type":"outbound_result","requestId":"{}","result":{{}}}}"#,
        "x".repeat(300)
    );
    let lines = [
        inbound(1, ""),
        result.to_owned(),
        String::new(),
        inbound(2, " \t\r"),
        "{\"type\":\"inbound\",\n".to_owned(),
        "\"event\":{}}".to_owned(),
        long,
        inbound(3, "x"),
        "{\"type\":\"inbound\",\"event\":{\"text\":\"\u{1F680}\"}, }".to_owned(),
        r#"{"type":"outbound","requestId":"q","action":{"op":"typing","chat_id":"c"}}"#.to_owned(),
        inbound(4, ""),
        "[1]".to_owned(),
        inbound(5, ""),
    ];
    let mut stream = lines.join("\n").into_bytes();
    stream.extend_from_slice(b"\n");
    // Not UTF-8, in the middle of a string.
    stream.extend_from_slice(b"{\"type\":\"inbound\",\"event\":{\"text\":\"\xff\"}}\n");
    stream.extend_from_slice(inbound(6, "").as_bytes());
    for max in [200, usize::MAX / 2] {
        let decode = |shared: bool| {
            let mut decoder = FrameDecoder::with_max_frame_len(max);
            if shared {
                decoder.push_bytes(bytes::Bytes::from(stream.clone()));
            } else {
                decoder.push(&stream);
            }
            let mut items: Vec<_> = std::iter::from_fn(|| decoder.next_frame()).collect();
            decoder.finish();
            items.extend(std::iter::from_fn(|| decoder.next_frame()));
            items
        };
        let shared = decode(true);
        assert_eq!(shared, decode(false), "limit {max}");
        let frames = shared.iter().filter(|item| item.is_ok()).count();
        let errors: Vec<_> = shared
            .iter()
            .filter_map(|item| item.as_ref().err())
            .collect();
        assert_eq!(frames, if max == 200 { 7 } else { 8 }, "{shared:#?}");
        assert!(errors.iter().any(|e| e.line == 15), "{errors:#?}");
    }
}

/// The middle of a long line pushed as borrowed bytes goes straight into the partial line
/// (it is not held as unscanned input and copied again); a chunk that ends the line, or
/// one that would take it past the limit, is scanned as usual, and the frames and errors
/// are the same.
#[test]
fn the_middle_of_a_long_line_is_kept_once() {
    let mut d = FrameDecoder::with_max_frame_len(100);
    d.push(br#"{"type":"#);
    assert!(d.next_frame().is_none());
    assert_eq!((d.pending_len(), d.buffered_len()), (0, 8));
    d.push(b"  ");
    d.push(br#""going_idle_ack"}"#);
    assert_eq!((d.pending_len(), d.buffered_len()), (0, 27));
    d.push(b"\n");
    assert_eq!(d.pending_len(), 1);
    assert_eq!(d.next_frame(), Some(Ok(Frame::GoingIdleAck)));
    assert!(d.next_frame().is_none());

    // Line 2 (starting at byte 28) crosses the limit of 100 in its third chunk.
    d.push(br#"{"a":""#);
    assert!(d.next_frame().is_none());
    d.push(&[b'a'; 90]);
    assert_eq!((d.pending_len(), d.buffered_len()), (0, 96));
    d.push(&[b'a'; 10]);
    assert_eq!(d.pending_len(), 10);
    let Some(Err(e)) = d.next_frame() else {
        panic!("no error")
    };
    assert_eq!(
        (e.kind, e.line, e.offset),
        (DecodeErrorKind::FrameTooLong, 2, 28)
    );
    assert!(d.buffered_len() <= 100);
    d.push(b"aa\"}\n{\"type\":\"going_idle\"}\n");
    assert_eq!(d.next_frame(), Some(Ok(Frame::GoingIdle)));
    assert!(d.next_frame().is_none());
}
