//! What loadgen sends, and how it checks every echoed byte.
//!
//! A message is a pure function of (connection id, sequence number, size): nothing is stored
//! per message, and the checker regenerates the expected bytes for any slice of a message as
//! the echo trickles in, in whatever pieces the kernel hands over. Because both numbers are
//! encoded, an echo that is corrupted, comes back on the wrong connection, or comes back out
//! of order (a stale message replayed, two messages swapped) fails the comparison.
//!
//! Layout, in little-endian 8-byte words: word 0 is `connection << 40 | sequence` (readable in
//! a hex dump), and word `j > 0` is a SplitMix64 scramble of word 0 and `j`, so no two
//! messages share a body either.
//!
//! A message of fewer than 8 bytes cannot hold word 0 whole, and its first bytes would carry
//! only the low bits of the sequence, not the connection: two connections swapping echoes in
//! step would pass. So a short message is the first bytes of a *scrambled* word 0, in which
//! every bit of connection and sequence reaches every byte. The limit is then arithmetic: a
//! message of `n` bytes takes only 256^n values, so a wrong echo matches by chance once in
//! 256^n (once in 256 for one byte). A fault that persists is still caught within a few
//! messages; a single wrong byte-long echo may not be.

/// Sequence numbers wrap at 2^40 inside word 0; at a million messages a second that is
/// twelve days on one connection.
const SEQ_BITS: u32 = 40;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;
/// Keeps the scrambled word 0 of short messages apart from the body words of long ones.
const SHORT_SALT: u64 = 0x5EED_5EED_5EED_5EED;

/// Word `j` of message (`conn`, `seq`) of `size` bytes.
#[inline]
fn word(conn: u32, seq: u64, size: usize, j: usize) -> u64 {
    let head = (u64::from(conn) << SEQ_BITS) | (seq & SEQ_MASK);
    match (j, size < 8) {
        (0, true) => scramble(head ^ SHORT_SALT),
        (0, false) => head,
        _ => scramble(head ^ (j as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
    }
}

/// SplitMix64's finaliser: cheap, and every input bit reaches every output bit.
#[inline]
fn scramble(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Writes the whole of message (`conn`, `seq`) into `out`, whose length is the message size.
pub fn fill(conn: u32, seq: u64, out: &mut [u8]) {
    let size = out.len();
    for (j, chunk) in out.chunks_mut(8).enumerate() {
        let bytes = word(conn, seq, size, j).to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

/// Whether `got` equals bytes `offset..offset + got.len()` of message (`conn`, `seq`) of
/// `size` bytes.
///
/// The echo of one message may arrive split anywhere, so the comparison starts mid-word when
/// it has to; only the words the slice touches are generated.
pub fn matches(conn: u32, seq: u64, size: usize, offset: usize, got: &[u8]) -> bool {
    let mut pos = offset;
    let mut rest = got;
    while !rest.is_empty() {
        let j = pos / 8;
        let within = pos % 8;
        let take = (8 - within).min(rest.len());
        let expected = word(conn, seq, size, j).to_le_bytes();
        if expected[within..within + take] != rest[..take] {
            return false;
        }
        pos += take;
        rest = &rest[take..];
    }
    true
}

/// Reads back the connection and sequence a message's first eight bytes claim, to describe a
/// mismatch ("the echo looks like message 16 of connection 3"). Only for diagnostics, and only
/// for messages of 8 bytes or more: a body that was corrupted may claim anything.
pub fn claimed(first_word: [u8; 8]) -> (u32, u64) {
    let head = u64::from_le_bytes(first_word);
    ((head >> SEQ_BITS) as u32, head & SEQ_MASK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(conn: u32, seq: u64, size: usize) -> Vec<u8> {
        let mut buf = vec![0; size];
        fill(conn, seq, &mut buf);
        buf
    }

    #[test]
    fn a_message_matches_itself_in_any_split() {
        for size in [1, 7, 8, 9, 64, 1000] {
            let msg = message(3, 17, size);
            for cut in 0..size.min(20) {
                assert!(matches(3, 17, size, 0, &msg[..cut]));
                assert!(matches(3, 17, size, cut, &msg[cut..]), "size {size} cut {cut}");
            }
        }
    }

    #[test]
    fn corruption_reordering_and_crossed_connections_are_caught() {
        let msg = message(3, 17, 64);
        let mut flipped = msg.clone();
        flipped[40] ^= 0x01;
        assert!(!matches(3, 17, 64, 0, &flipped));
        // The previous message replayed, or the next one early.
        assert!(!matches(3, 17, 64, 0, &message(3, 16, 64)));
        assert!(!matches(3, 17, 64, 0, &message(3, 18, 64)));
        // Another connection's message with the same sequence number.
        assert!(!matches(3, 17, 64, 0, &message(4, 17, 64)));
        // Even a one-byte message differs from its neighbours.
        assert!(!matches(3, 17, 1, 0, &message(3, 16, 1)));
        // Bodies differ too, not just headers.
        assert!(!matches(3, 17, 64, 8, &message(3, 16, 64)[8..]));
    }

    #[test]
    fn short_messages_carry_their_connection() {
        // Two connections whose echoes are swapped in step: same sequence, other connection.
        // With 256^size values a swap passes by chance once in 256^size; over 2,000 messages
        // a byte-long one slips through about 8 times, a longer one practically never.
        for size in 1..=7 {
            for (a, b) in [(0, 1), (1, 2), (7, 263), (65_536, 0)] {
                let passed = (0..2_000)
                    .filter(|&seq| matches(a, seq, size, 0, &message(b, seq, size)))
                    .count();
                let allowed = if size == 1 { 30 } else { 2 };
                assert!(passed <= allowed, "size {size}: {passed} of {a}'s echoes from {b} passed");
            }
            // Replays (the previous message again) are caught the same way.
            let passed = (1..2_000)
                .filter(|&seq| matches(5, seq, size, 0, &message(5, seq - 1, size)))
                .count();
            assert!(passed <= if size == 1 { 30 } else { 2 }, "size {size}: {passed} replays");
        }
    }

    #[test]
    fn the_header_names_its_connection_and_sequence() {
        let msg = message(12, 345, 16);
        assert_eq!(claimed(msg[..8].try_into().unwrap()), (12, 345));
    }
}
