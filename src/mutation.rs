//! Test support: deterministic mutation of inputs (a poor man's fuzzer
//! that runs in `cargo test`), for the parsers of what outsiders send.

/// A small deterministic generator (xorshift64*), so a failing case can be
/// replayed from its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Mutates `body` a few times: flip, insert, delete, duplicate a slice,
/// truncate, or splice in a JSON-significant token.
pub fn mutate(rng: &mut Rng, body: &mut Vec<u8>) {
    const TOKENS: [&[u8]; 12] = [
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b":",
        b",",
        b"null",
        b"\\u0000",
        b"1e999",
        b"\xff",
        b"\"x\":1,",
    ];
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(body.len() + 1).min(body.len());
        match rng.below(6) {
            0 if at < body.len() => body[at] ^= 1 << rng.below(8),
            1 => body.insert(at, rng.next() as u8),
            2 if at < body.len() => {
                body.remove(at);
            }
            3 => {
                let end = (at + rng.below(40)).min(body.len());
                let slice = body[at..end].to_vec();
                body.splice(at..at, slice);
            }
            4 => body.truncate(at),
            _ => {
                let t = TOKENS[rng.below(TOKENS.len())];
                body.splice(at..at, t.iter().copied());
            }
        }
    }
}
