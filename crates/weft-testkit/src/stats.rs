//! Tolerances for traffic splits: a weighted split is random per request, so a test asserts
//! the observed count lies within k standard deviations of the binomial mean, which fails
//! for a wrong split while a right one practically never does.

/// Whether `count` successes out of `n` trials fit probability `p` within `k` sigma.
pub fn within_sigma(count: u64, n: u64, p: f64, k: f64) -> bool {
    let (lo, hi) = binomial_band(n, p, k);
    (lo..=hi).contains(&(count as f64))
}

/// The `[mean - k*sigma, mean + k*sigma]` band for a binomial(n, p).
pub fn binomial_band(n: u64, p: f64, k: f64) -> (f64, f64) {
    let n = n as f64;
    let mean = n * p;
    let sigma = (n * p * (1.0 - p)).sqrt();
    (mean - k * sigma, mean + k * sigma)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_accepts_the_mean_and_rejects_a_swapped_split() {
        assert!(within_sigma(100, 400, 0.25, 5.0));
        assert!(!within_sigma(300, 400, 0.25, 5.0));
        assert!(within_sigma(0, 400, 0.0, 5.0));
        assert!(!within_sigma(1, 400, 0.0, 5.0));
    }
}
