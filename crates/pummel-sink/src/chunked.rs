//! A streaming decoder for `Transfer-Encoding: chunked` request bodies.
//!
//! The sink throws bodies away, so the decoder never keeps bytes: it walks the input one state
//! at a time (chunk-size line, data, CRLF, trailers) and only remembers where it is. That lets a
//! body arrive in pieces of any size, split anywhere, with no buffer behind it. Every line it
//! reads is bounded, so a client cannot make it wait on an endless line or grow memory. When
//! the sink records bodies, [`Chunked::advance_with`] reports where the payload bytes are in
//! the input, so the caller can copy them; the decoder itself still keeps nothing.

use std::ops::Range;

/// The longest chunk-size line accepted, extensions included.
const MAX_SIZE_LINE: usize = 4096;
/// The most trailer bytes accepted after the last chunk.
const MAX_TRAILERS: usize = 64 * 1024;

/// Where the decoder is inside a chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunked {
    /// Reading the hex digits of a chunk size.
    Size { size: u64, digits: u8 },
    /// Skipping chunk extensions (`;name=value`) up to the end of the size line.
    Extension { size: u64, len: usize },
    /// Saw the CR that ends a size line; the LF must follow.
    SizeLf { size: u64 },
    /// Skipping chunk data.
    Data { remaining: u64 },
    /// Chunk data ended; its CR must follow.
    DataCr,
    /// Saw the CR after chunk data; its LF must follow.
    DataLf,
    /// At the start of a trailer line (or of the empty line that ends the body).
    TrailerStart { total: usize },
    /// Inside a trailer field line.
    Trailer { total: usize },
    /// Saw the CR of a trailer line; `last` when that line was empty and ends the body.
    TrailerLf { total: usize, last: bool },
}

/// What [`Chunked::advance`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// The input was used up and the body goes on.
    NeedMore,
    /// The body ended; the bytes after it belong to the next request.
    Done,
    /// The body is not valid chunked encoding.
    Bad,
}

enum Step {
    Next(Chunked),
    Done,
    Bad,
}

impl Chunked {
    /// A decoder at the start of a body.
    pub(crate) fn new() -> Self {
        Chunked::Size { size: 0, digits: 0 }
    }

    /// Consumes body bytes from `input`, returning how many it used and what it found.
    ///
    /// On [`Progress::Done`] the count stops right after the body; on
    /// [`Progress::NeedMore`] it is the whole input.
    pub(crate) fn advance(&mut self, input: &[u8]) -> (usize, Progress) {
        // An empty callback: this compiles to the same loop as a decoder without reporting.
        self.advance_with(input, |_| {})
    }

    /// As [`advance`](Chunked::advance), and calls `on_data` with the range of `input` holding
    /// each run of payload bytes consumed (chunk data only: no sizes, extensions, CRLFs or
    /// trailers), in order. Used when the sink records bodies.
    pub(crate) fn advance_with(&mut self, input: &[u8], mut on_data: impl FnMut(Range<usize>)) -> (usize, Progress) {
        let mut used = 0;
        while used < input.len() {
            if let Chunked::Data { remaining } = *self {
                let available = (input.len() - used) as u64;
                let take = remaining.min(available);
                // `take` is at most `available`, which came from a usize.
                if take > 0 {
                    on_data(used..used + take as usize);
                }
                used += take as usize;
                *self = if take == remaining { Chunked::DataCr } else { Chunked::Data { remaining: remaining - take } };
                continue;
            }
            let byte = input[used];
            used += 1;
            match self.step(byte) {
                Step::Next(next) => *self = next,
                Step::Done => return (used, Progress::Done),
                Step::Bad => return (used, Progress::Bad),
            }
        }
        (used, Progress::NeedMore)
    }

    /// The state after one byte (never called in `Data`, which skips bytes in bulk).
    fn step(self, byte: u8) -> Step {
        use Chunked::*;
        match self {
            Size { size, digits } => match (byte as char).to_digit(16) {
                // 16 hex digits fill a u64; more would overflow.
                Some(digit) if digits < 16 => {
                    Step::Next(Size { size: size << 4 | u64::from(digit), digits: digits + 1 })
                }
                Some(_) => Step::Bad,
                None if digits == 0 => Step::Bad,
                None => match byte {
                    b'\r' => Step::Next(SizeLf { size }),
                    b';' | b' ' | b'\t' => Step::Next(Extension { size, len: 1 }),
                    _ => Step::Bad,
                },
            },
            Extension { size, len } => match byte {
                b'\r' => Step::Next(SizeLf { size }),
                b'\n' => Step::Bad,
                _ if len >= MAX_SIZE_LINE => Step::Bad,
                _ => Step::Next(Extension { size, len: len + 1 }),
            },
            SizeLf { size } => match byte {
                b'\n' if size == 0 => Step::Next(TrailerStart { total: 0 }),
                b'\n' => Step::Next(Data { remaining: size }),
                _ => Step::Bad,
            },
            Data { .. } => Step::Bad,
            DataCr => match byte {
                b'\r' => Step::Next(DataLf),
                _ => Step::Bad,
            },
            DataLf => match byte {
                b'\n' => Step::Next(Chunked::new()),
                _ => Step::Bad,
            },
            TrailerStart { total } | Trailer { total } => match byte {
                b'\r' => Step::Next(TrailerLf { total, last: matches!(self, TrailerStart { .. }) }),
                b'\n' => Step::Bad,
                _ if total >= MAX_TRAILERS => Step::Bad,
                _ => Step::Next(Trailer { total: total + 1 }),
            },
            TrailerLf { total, last } => match byte {
                b'\n' if last => Step::Done,
                b'\n' => Step::Next(TrailerStart { total }),
                _ => Step::Bad,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `body` in pieces of `piece` bytes; returns the bytes used and the final progress.
    fn decode(body: &[u8], piece: usize) -> (usize, Progress) {
        let mut decoder = Chunked::new();
        let mut used = 0;
        for chunk in body.chunks(piece) {
            let (n, progress) = decoder.advance(chunk);
            used += n;
            if progress != Progress::NeedMore {
                return (used, progress);
            }
        }
        (used, Progress::NeedMore)
    }

    #[test]
    fn decodes_valid_bodies_split_anywhere() {
        let bodies: [&[u8]; 5] = [
            b"0\r\n\r\n",
            b"5\r\nhello\r\n0\r\n\r\n",
            b"5;name=value\r\nhello\r\n6 ; x\r\n world\r\n0\r\n\r\n",
            b"A\r\n0123456789\r\n0\r\nX-Trailer: yes\r\nX-Other: 1\r\n\r\n",
            b"ffffffff\r\n",
        ];
        for body in &bodies[..4] {
            for piece in 1..=body.len() {
                assert_eq!(decode(body, piece), (body.len(), Progress::Done), "{body:?} by {piece}");
            }
        }
        assert_eq!(decode(bodies[4], 3), (bodies[4].len(), Progress::NeedMore));
    }

    #[test]
    fn stops_right_after_the_body() {
        let input = b"3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
        let (used, progress) = Chunked::new().advance(input);
        assert_eq!(progress, Progress::Done);
        assert_eq!(&input[used..], b"GET / HTTP/1.1\r\n");
    }

    #[test]
    fn rejects_bad_encodings() {
        let bad: [&[u8]; 10] = [
            b"zz\r\n",
            b"\r\n",
            b"-1\r\n",
            b"5\nhello\r\n",
            b"3\r\nabcX\r\n",
            b"3\r\nabc\r\r",
            b"11111111111111111\r\n",
            b"0\r\nTrailer\n",
            b"0\r\n\rX",
            b"5;ext\n",
        ];
        for body in bad {
            assert_eq!(decode(body, body.len()).1, Progress::Bad, "{body:?}");
        }
    }

    #[test]
    fn bounds_long_lines() {
        let mut ext = b"1;".to_vec();
        ext.extend(std::iter::repeat_n(b'x', MAX_SIZE_LINE + 1));
        assert_eq!(decode(&ext, 100).1, Progress::Bad);
        let mut trailers = b"0\r\n".to_vec();
        for _ in 0..=MAX_TRAILERS / 9 {
            trailers.extend_from_slice(b"X-A: 1234\r\n");
        }
        assert_eq!(decode(&trailers, 1000).1, Progress::Bad);
    }

    /// Feeds `body` in pieces of `piece` bytes and collects the payload it reports.
    fn payload(body: &[u8], piece: usize) -> (Vec<u8>, Progress) {
        let mut decoder = Chunked::new();
        let mut data = Vec::new();
        for chunk in body.chunks(piece) {
            let (_, progress) = decoder.advance_with(chunk, |range| data.extend_from_slice(&chunk[range]));
            if progress != Progress::NeedMore {
                return (data, progress);
            }
        }
        (data, Progress::NeedMore)
    }

    #[test]
    fn reports_exactly_the_payload_split_anywhere() {
        let body = b"5;name=value\r\nhello\r\n6 ; x\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\nGET /";
        for piece in 1..=body.len() {
            assert_eq!(payload(body, piece), (b"hello world".to_vec(), Progress::Done), "by {piece}");
        }
        assert_eq!(payload(b"0\r\n\r\n", 1), (Vec::new(), Progress::Done));
    }

    #[test]
    fn largest_size_is_accepted() {
        let (_, progress) = Chunked::new().advance(b"ffffffffffffffff\r\nabc");
        assert_eq!(progress, Progress::NeedMore);
    }
}
