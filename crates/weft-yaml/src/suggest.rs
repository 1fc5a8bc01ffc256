//! "did you mean …?": picks the closest known name for a misspelt field, value or kind.

/// Levenshtein distance with adjacent transpositions (optimal string alignment).
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a plausible typo:
/// equal ignoring case/`-`/`_`, the word extending the candidate, or within a third of
/// the word's length in edits.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect()
    };
    let w = norm(word);
    let limit = (word.chars().count() / 3).max(1);
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        if c == word {
            continue;
        }
        let nc = norm(c);
        let d = if nc == w {
            0
        } else if nc.len() >= 4 && w.starts_with(&nc) {
            // A real name with something appended (`LEAST_CONNECTION` for `LEAST_CONN`).
            // The reverse (`istiod` for `istiodRemote`) names something else too often.
            1
        } else {
            distance(&w, &nc)
        };
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos() {
        let fields = [
            "host",
            "trafficPolicy",
            "subsets",
            "exportTo",
            "workloadSelector",
        ];
        assert_eq!(closest("trafficpolicy", fields), Some("trafficPolicy"));
        assert_eq!(closest("subset", fields), Some("subsets"));
        assert_eq!(closest("hsot", fields), Some("host"));
        assert_eq!(closest("circuitBreaker", fields), None);
        assert_eq!(closest("strict", ["STRICT", "PERMISSIVE"]), Some("STRICT"));
        assert_eq!(
            closest("LEAST_CONNECTION", ["LEAST_CONN", "ROUND_ROBIN"]),
            Some("LEAST_CONN")
        );
        assert_eq!(distance("ab", "ba"), 1);
    }
}
