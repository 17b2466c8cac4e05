//! Newline-delimited frames with a hard size limit.
//!
//! The decoder never buffers more than `max` bytes of one line: as soon as a line grows
//! past the limit it yields [`Frame::TooLarge`] once and silently drops the rest of that
//! line, so the next line on the same connection is read normally.

use bytes::{Buf, Bytes, BytesMut};
use std::io;
use tokio_util::codec::Decoder;

/// One unit read off the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete line, without its `\n` (and without a trailing `\r`).
    Line(Bytes),
    /// A line longer than the limit; `bytes_seen` is how much had arrived when it was cut.
    TooLarge { bytes_seen: usize },
}

/// A [`Decoder`] of newline-delimited frames of at most `max` bytes.
#[derive(Debug)]
pub struct LineFrames {
    max: usize,
    /// Inside an oversized line: drop bytes until the next newline.
    discarding: bool,
    /// Where the newline search resumes, so a long line is scanned once.
    scanned: usize,
}

impl LineFrames {
    pub fn new(max: usize) -> Self {
        LineFrames {
            max,
            discarding: false,
            scanned: 0,
        }
    }

    /// The current limit.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Changes the limit (the daemon raises it once the peer has said hello).
    pub fn set_max(&mut self, max: usize) {
        self.max = max;
    }
}

impl Decoder for LineFrames {
    type Item = Frame;
    type Error = io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> io::Result<Option<Frame>> {
        loop {
            let newline = buf[self.scanned..]
                .iter()
                .position(|b| *b == b'\n')
                .map(|i| i + self.scanned);
            match newline {
                Some(end) if self.discarding => {
                    buf.advance(end + 1);
                    self.discarding = false;
                    self.scanned = 0;
                }
                Some(end) => {
                    self.scanned = 0;
                    if end > self.max {
                        buf.advance(end + 1);
                        return Ok(Some(Frame::TooLarge { bytes_seen: end }));
                    }
                    let mut line = buf.split_to(end + 1);
                    line.truncate(end);
                    if line.last() == Some(&b'\r') {
                        line.truncate(end - 1);
                    }
                    if line.iter().all(|b| b.is_ascii_whitespace()) {
                        continue; // blank lines are keep-alives, not requests
                    }
                    return Ok(Some(Frame::Line(line.freeze())));
                }
                None if self.discarding => {
                    buf.clear();
                    self.scanned = 0;
                    return Ok(None);
                }
                None if buf.len() > self.max => {
                    let seen = buf.len();
                    buf.clear();
                    self.scanned = 0;
                    self.discarding = true;
                    return Ok(Some(Frame::TooLarge { bytes_seen: seen }));
                }
                None => {
                    self.scanned = buf.len();
                    return Ok(None);
                }
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> io::Result<Option<Frame>> {
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        // A last line without its newline still counts, unless we were discarding.
        self.scanned = 0;
        if buf.is_empty() || self.discarding {
            buf.clear();
            return Ok(None);
        }
        let mut line = buf.split();
        if line.last() == Some(&b'\r') {
            line.truncate(line.len() - 1); // as for a line ended by `\r\n`
        }
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(None);
        }
        Ok(Some(Frame::Line(line.freeze())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(max: usize, chunks: &[&[u8]]) -> Vec<Frame> {
        let mut codec = LineFrames::new(max);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            while let Some(frame) = codec.decode(&mut buf).unwrap() {
                out.push(frame);
            }
            assert!(
                buf.len() <= max + chunk.len(),
                "never holds more than one limit plus one read"
            );
        }
        while let Some(frame) = codec.decode_eof(&mut buf).unwrap() {
            out.push(frame);
        }
        out
    }

    fn line(s: &str) -> Frame {
        Frame::Line(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn splits_lines_across_reads() {
        let frames = decode_all(100, &[b"ab", b"c\nde", b"f\r\n\n  \ng"]);
        assert_eq!(frames, vec![line("abc"), line("def"), line("g")]);
    }

    #[test]
    fn oversized_line_is_reported_once_and_the_next_line_survives() {
        let big = [b'x'; 50];
        let frames = decode_all(10, &[&big[..20], &big[20..], b"xx\nok\n"]);
        assert_eq!(frames, vec![Frame::TooLarge { bytes_seen: 20 }, line("ok")]);
    }

    #[test]
    fn oversized_line_arriving_whole() {
        let mut data = vec![b'y'; 30];
        data.extend_from_slice(b"\nnext\n");
        assert_eq!(
            decode_all(10, &[&data]),
            vec![Frame::TooLarge { bytes_seen: 30 }, line("next")]
        );
    }

    /// Found by `protocol/tests/fuzz.rs`: a last line without its newline kept a trailing
    /// `\r`, so "a\r" at EOF differed from "a\r\n" (a `Frame::Line` never ends in `\r`).
    #[test]
    fn last_line_without_newline_loses_its_cr_too() {
        assert_eq!(decode_all(10, &[b"a\r\nb\r"]), vec![line("a"), line("b")]);
        assert_eq!(decode_all(10, &[b"a\r", b""]), vec![line("a")]);
        assert_eq!(decode_all(10, &[b" \r"]), vec![]);
    }

    #[test]
    fn exactly_the_limit_is_accepted() {
        let data = [vec![b'z'; 10], b"\n".to_vec()].concat();
        assert_eq!(decode_all(10, &[&data]), vec![line(&"z".repeat(10))]);
    }
}
