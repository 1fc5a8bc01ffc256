//! XXH64, the hash Envoy uses for its ring hash and Maglev tables and for route hash
//! policies. The same key must land on the same host under weft-proxy and Envoy, so the
//! proxy needs the exact function, not just any good hash.

const P1: u64 = 0x9E37_79B1_85EB_CA87;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const P3: u64 = 0x1656_67B1_9E37_79F9;
const P4: u64 = 0x85EB_CA77_C2B2_AE63;
const P5: u64 = 0x27D4_EB2F_1656_67C5;

fn round(acc: u64, lane: u64) -> u64 {
    acc.wrapping_add(lane.wrapping_mul(P2))
        .rotate_left(31)
        .wrapping_mul(P1)
}

fn merge(acc: u64, val: u64) -> u64 {
    (acc ^ round(0, val)).wrapping_mul(P1).wrapping_add(P4)
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"))
}

fn u32_at(b: &[u8], i: usize) -> u64 {
    u64::from(u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes")))
}

/// XXH64 of `input` with `seed`.
pub fn xxh64(input: &[u8], seed: u64) -> u64 {
    let len = input.len();
    let mut i = 0;
    let mut h = if len >= 32 {
        let mut v = [
            seed.wrapping_add(P1).wrapping_add(P2),
            seed.wrapping_add(P2),
            seed,
            seed.wrapping_sub(P1),
        ];
        while i + 32 <= len {
            for (k, lane) in v.iter_mut().enumerate() {
                *lane = round(*lane, u64_at(input, i + 8 * k));
            }
            i += 32;
        }
        let mut h = v[0]
            .rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18));
        for lane in v {
            h = merge(h, lane);
        }
        h
    } else {
        seed.wrapping_add(P5)
    };
    h = h.wrapping_add(len as u64);
    while i + 8 <= len {
        h ^= round(0, u64_at(input, i));
        h = h.rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
        i += 8;
    }
    if i + 4 <= len {
        h ^= u32_at(input, i).wrapping_mul(P1);
        h = h.rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
        i += 4;
    }
    while i < len {
        h ^= u64::from(input[i]).wrapping_mul(P5);
        h = h.rotate_left(11).wrapping_mul(P1);
        i += 1;
    }
    h ^= h >> 33;
    h = h.wrapping_mul(P2);
    h ^= h >> 29;
    h = h.wrapping_mul(P3);
    h ^ (h >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoys_own_vectors() {
        // test/common/common/hash_test.cc in Envoy.
        assert_eq!(xxh64(b"foo", 0), 3728699739546630719);
        assert_eq!(xxh64(b"bar", 0), 5234164152756840025);
        assert_eq!(xxh64(b"foo\nbar", 0), 8917841378505826757);
        assert_eq!(xxh64(b"lyft", 0), 4400747396090729504);
        assert_eq!(xxh64(b"", 0), 17241709254077376921);
        // From the system's libxxhash: the 32-byte stripes, and a seed (Maglev's skip).
        assert_eq!(
            xxh64(
                b"The quick brown fox jumps over the lazy dog, twice over",
                0
            ),
            9317421213731043412
        );
        assert_eq!(xxh64(b"127.0.0.1:8080", 1), 11949980555236036312);
        assert_eq!(xxh64(b"127.0.0.1:8080_0", 0), 17758718331481029156);
    }

    #[test]
    fn every_length_path_is_exercised() {
        // 0..=40 bytes walks the short path, the 4- and 8-byte tails and the 32-byte
        // stripes; the values only need to be distinct and stable.
        let data: Vec<u8> = (0..40u8).collect();
        let hashes: std::collections::HashSet<u64> =
            (0..=40).map(|n| xxh64(&data[..n], 0)).collect();
        assert_eq!(hashes.len(), 41);
        assert_ne!(xxh64(b"abc", 0), xxh64(b"abc", 1));
    }
}
