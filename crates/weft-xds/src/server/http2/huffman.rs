//! HPACK's Huffman code (RFC 7541 Appendix B), decoding only: clients may Huffman-encode
//! any header string, while our responses are sent as plain literals.
//!
//! The code is canonical — codes of one length are consecutive, in symbol order, and
//! follow on from the shorter ones — so the table is just each symbol's code length and
//! the codes are derived from it, which keeps the transcribed spec data small to check.

/// Code length in bits of each symbol 0..=255, then EOS (256), from RFC 7541 Appendix B.
const LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0..16
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 16..32
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, // ' '..'0'
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, // '0'..'@'
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, // '@'..'P'
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, // 'P'..'`'
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, // '`'..'p'
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, // 'p'..128
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128..144
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144..160
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160..176
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176..192
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192..208
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208..224
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224..240
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240..256
    30, // EOS
];

const EOS: u16 = 256;
const MAX_LEN: usize = 30;

/// The canonical code's decoding tables: per length, how many codes there are and the
/// first code's value; and the symbols in code order.
struct Canonical {
    count: [u32; MAX_LEN + 1],
    first: [u32; MAX_LEN + 1],
    /// Index into `symbols` of each length's first code.
    offset: [u32; MAX_LEN + 1],
    symbols: [u16; 257],
}

const fn canonical() -> Canonical {
    let mut count = [0u32; MAX_LEN + 1];
    let mut i = 0;
    while i < 257 {
        count[LENGTHS[i] as usize] += 1;
        i += 1;
    }
    let mut first = [0u32; MAX_LEN + 1];
    let mut offset = [0u32; MAX_LEN + 1];
    let mut code = 0u32;
    let mut index = 0u32;
    let mut len = 1;
    while len <= MAX_LEN {
        code = (code + count[len - 1]) << 1;
        first[len] = code;
        offset[len] = index;
        index += count[len];
        len += 1;
    }
    let mut symbols = [0u16; 257];
    let mut next = offset;
    let mut len = 1;
    while len <= MAX_LEN {
        let mut s = 0;
        while s < 257 {
            if LENGTHS[s] as usize == len {
                symbols[next[len] as usize] = s as u16;
                next[len] += 1;
            }
            s += 1;
        }
        len += 1;
    }
    Canonical {
        count,
        first,
        offset,
        symbols,
    }
}

static CODE: Canonical = canonical();

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HuffmanError {
    #[error("Huffman string contains EOS")]
    Eos,
    #[error("Huffman string ends in an incomplete symbol or bad padding")]
    Padding,
}

/// Decodes a Huffman-coded string literal.
pub fn decode(input: &[u8], out: &mut Vec<u8>) -> Result<(), HuffmanError> {
    let code = &CODE;
    let mut acc = 0u32;
    let mut len = 0usize;
    // Whether every bit of the partial code so far is 1: only such a tail is padding.
    let mut all_ones = true;
    for &byte in input {
        for shift in (0..8).rev() {
            let bit = u32::from(byte >> shift) & 1;
            acc = (acc << 1) | bit;
            len += 1;
            all_ones &= bit == 1;
            let index = acc.wrapping_sub(code.first[len]);
            if index < code.count[len] {
                let symbol = code.symbols[(code.offset[len] + index) as usize];
                if symbol == EOS {
                    return Err(HuffmanError::Eos);
                }
                out.push(symbol as u8);
                acc = 0;
                len = 0;
                all_ones = true;
            } else if len == MAX_LEN {
                return Err(HuffmanError::Padding);
            }
        }
    }
    // Padding is the most significant bits of EOS (all ones), and shorter than a byte.
    if len > 7 || !all_ones {
        return Err(HuffmanError::Padding);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The code of `symbol`, rebuilt from the canonical tables.
    fn code_of(symbol: u16) -> (u32, u8) {
        let len = LENGTHS[symbol as usize] as usize;
        let start = CODE.offset[len] as usize;
        let at = CODE.symbols[start..start + CODE.count[len] as usize]
            .iter()
            .position(|&s| s == symbol)
            .unwrap();
        (CODE.first[len] + at as u32, len as u8)
    }

    #[test]
    fn derived_codes_match_the_rfc_table() {
        // A sample of Appendix B's "code as hex" column, across lengths.
        for (symbol, code, len) in [
            (0u16, 0x1ff8, 13),
            (1, 0x7fffd8, 23),
            (9, 0xffffea, 24),
            (10, 0x3ffffffc, 30),
            (b' ' as u16, 0x14, 6),
            (b'0' as u16, 0x0, 5),
            (b'a' as u16, 0x3, 5),
            (b'z' as u16, 0x7b, 7),
            (b'\\' as u16, 0x7fff0, 19),
            (b'~' as u16, 0x1ffd, 13),
            (127, 0xffffffc, 28),
            (199, 0x1ffffec, 25),
            (255, 0x3ffffee, 26),
            (256, 0x3fffffff, 30),
        ] {
            assert_eq!(code_of(symbol), (code, len), "symbol {symbol}");
        }
    }

    #[test]
    fn decodes_rfc_examples_and_rejects_bad_padding() {
        let hex = |s: &str| {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect::<Vec<u8>>()
        };
        let mut out = Vec::new();
        decode(&hex("f1e3c2e5f23a6ba0ab90f4ff"), &mut out).unwrap();
        assert_eq!(out, b"www.example.com");
        out.clear();
        decode(&hex("a8eb10649cbf"), &mut out).unwrap();
        assert_eq!(out, b"no-cache");
        out.clear();
        decode(&hex("25a849e95ba97d7f"), &mut out).unwrap();
        assert_eq!(out, b"custom-key");
        // A whole byte of padding, and padding with a zero bit.
        assert_eq!(
            decode(&hex("a8eb10649cbfff"), &mut out),
            Err(HuffmanError::Padding)
        );
        assert_eq!(
            decode(&hex("a8eb10649cbe"), &mut out),
            Err(HuffmanError::Padding)
        );
        // EOS itself.
        assert_eq!(decode(&hex("ffffffff"), &mut out), Err(HuffmanError::Eos));
    }
}
