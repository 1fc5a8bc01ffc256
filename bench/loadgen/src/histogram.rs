//! A log-linear latency histogram (the HdrHistogram idea, no crate needed offline): bounded
//! memory whatever the run length, and every recorded value is reported within 1/128
//! (< 0.8 %) of what was measured, which is far finer than run-to-run noise.

use serde::{Deserialize, Serialize};

/// Values below 2^SUB_BITS are counted exactly; above, each power of two is split into
/// 2^(SUB_BITS-1) equal buckets.
const SUB_BITS: u32 = 8;
const HALF: u64 = 1 << (SUB_BITS - 1);
const BUCKETS: usize = ((64 - SUB_BITS + 1) as usize + 1) * HALF as usize;

#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    min: u64,
    max: u64,
    sum: u128,
}

/// The summary a report needs, in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub count: u64,
    pub min_us: f64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            min: u64::MAX,
            max: 0,
            sum: 0,
        }
    }
}

fn index_of(value: u64) -> usize {
    if value < (1 << SUB_BITS) {
        return value as usize;
    }
    let msb = 63 - value.leading_zeros();
    let shift = msb - (SUB_BITS - 1);
    // `value >> shift` lies in [HALF, 2*HALF): the bucket inside this power of two.
    (u64::from(shift) * HALF + (value >> shift)) as usize
}

/// The highest value that lands in bucket `index`: percentiles err on the slow side.
fn highest_in(index: usize) -> u64 {
    let index = index as u64;
    if index < (1 << SUB_BITS) {
        return index;
    }
    let shift = index / HALF - 1;
    let sub = index - shift * HALF;
    // u128: the last bucket's bound, 2^64 - 1, does not fit the intermediate in u64.
    let high = ((u128::from(sub) + 1) << shift) - 1;
    u64::try_from(high).unwrap_or(u64::MAX)
}

impl Histogram {
    /// Records one value (nanoseconds, by this crate's convention).
    pub fn record(&mut self, value: u64) {
        self.counts[index_of(value)] += 1;
        self.total += 1;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.sum += u128::from(value);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    /// The value at quantile `q` (0..=1): the smallest bucket whose cumulative count
    /// reaches ceil(q * count), capped by the largest value actually seen.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return highest_in(index).min(self.max).max(self.min);
            }
        }
        self.max
    }

    pub fn summary(&self) -> Summary {
        let us = |ns: u64| ns as f64 / 1000.0;
        if self.total == 0 {
            return Summary::default();
        }
        Summary {
            count: self.total,
            min_us: us(self.min),
            mean_us: (self.sum as f64 / self.total as f64) / 1000.0,
            p50_us: us(self.quantile(0.50)),
            p90_us: us(self.quantile(0.90)),
            p99_us: us(self.quantile(0.99)),
            p999_us: us(self.quantile(0.999)),
            max_us: us(self.max),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_cover_u64() {
        let mut last = 0;
        for index in 1..index_of(u64::MAX) + 1 {
            let high = highest_in(index);
            assert!(
                high > last,
                "bucket {index} does not grow: {high} <= {last}"
            );
            assert_eq!(index_of(high), index);
            assert_eq!(index_of(last + 1), index);
            last = high;
        }
        assert_eq!(last, u64::MAX);
        assert!(index_of(u64::MAX) < BUCKETS);
    }

    #[test]
    fn every_value_is_reported_within_one_part_in_128() {
        for value in [
            1u64,
            255,
            256,
            257,
            1_000,
            12_345,
            999_999,
            1 << 40,
            u64::MAX / 3,
        ] {
            let high = highest_in(index_of(value));
            assert!(high >= value);
            assert!(
                (high - value) as f64 <= value as f64 / 128.0,
                "{value} -> {high}"
            );
        }
    }

    #[test]
    fn quantiles_of_a_uniform_series() {
        let mut h = Histogram::default();
        for v in 1..=10_000u64 {
            h.record(v * 1000);
        }
        let near = |got: u64, want: u64| (got as f64 - want as f64).abs() <= want as f64 / 128.0;
        assert!(near(h.quantile(0.5), 5_000_000), "{}", h.quantile(0.5));
        assert!(near(h.quantile(0.99), 9_900_000), "{}", h.quantile(0.99));
        assert!(near(h.quantile(0.999), 9_990_000), "{}", h.quantile(0.999));
        assert_eq!(h.quantile(1.0), 10_000_000);
        assert!(near(h.quantile(0.0), 1000));
        let s = h.summary();
        assert_eq!(s.count, 10_000);
        assert!((s.mean_us - 5000.5).abs() < 1e-6);
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let (mut a, mut b, mut all) = (
            Histogram::default(),
            Histogram::default(),
            Histogram::default(),
        );
        for v in 0..5000u64 {
            let value = v * v + 17;
            if v % 3 == 0 {
                a.record(value)
            } else {
                b.record(value)
            }
            all.record(value);
        }
        a.merge(&b);
        assert_eq!(a.summary(), all.summary());
    }

    #[test]
    fn one_slow_outlier_shows_at_p999_not_p99() {
        let mut h = Histogram::default();
        for _ in 0..999 {
            h.record(100_000);
        }
        h.record(50_000_000);
        assert!(h.quantile(0.99) <= 100_000 + 100_000 / 128);
        assert_eq!(h.quantile(0.9995), 50_000_000);
        assert_eq!(h.summary().max_us, 50_000.0);
    }
}
