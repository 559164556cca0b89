//! Natural ordering of names: digit runs compare by value (`layers.2` before `layers.10`).

use std::cmp::Ordering;

/// Compares two names naturally: runs of ASCII digits compare by numeric value, everything
/// else byte by byte; ties (such as `01` against `1`) fall back to plain byte order, so the
/// result is a total order.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while let (Some(&ca), Some(&cb)) = (x.get(i), y.get(j)) {
        if ca.is_ascii_digit() && cb.is_ascii_digit() {
            let (si, sj) = (i, j);
            i += digit_run(&x[i..]);
            j += digit_run(&y[j..]);
            let ord = cmp_digits(&x[si..i], &y[sj..j]);
            if ord != Ordering::Equal {
                return ord;
            }
        } else {
            if ca != cb {
                return ca.cmp(&cb);
            }
            i += 1;
            j += 1;
        }
    }
    (x.len() - i).cmp(&(y.len() - j)).then_with(|| x.cmp(y))
}

/// Length of the run of ASCII digits at the start of `s`.
fn digit_run(s: &[u8]) -> usize {
    s.iter().take_while(|c| c.is_ascii_digit()).count()
}

/// Compares two digit runs by value, without overflow for any length.
fn cmp_digits(a: &[u8], b: &[u8]) -> Ordering {
    let a = trim_zeros(a);
    let b = trim_zeros(b);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let lead = s.iter().take_while(|&&c| c == b'0').count();
    &s[lead..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_sort_by_number() {
        let mut v = vec![
            "model.layers.10.mlp",
            "model.layers.2.mlp",
            "model.layers.1.mlp",
            "model.embed_tokens",
            "model.layers.2.attn",
            "lm_head",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            [
                "lm_head",
                "model.embed_tokens",
                "model.layers.1.mlp",
                "model.layers.2.attn",
                "model.layers.2.mlp",
                "model.layers.10.mlp",
            ]
        );
    }

    #[test]
    fn shard_names_and_zeros() {
        assert_eq!(
            natural_cmp("model-00002-of-00010", "model-00010-of-00010"),
            Ordering::Less
        );
        assert_eq!(natural_cmp("a01", "a1"), Ordering::Less);
        assert_eq!(natural_cmp("a1", "a01"), Ordering::Greater);
        assert_eq!(natural_cmp("a1", "a1"), Ordering::Equal);
        assert_eq!(natural_cmp("a", "a0"), Ordering::Less);
        assert_eq!(natural_cmp("a9", "a10b"), Ordering::Less);
        assert_eq!(natural_cmp("a.", "a1"), Ordering::Less);
        assert_eq!(natural_cmp("a_", "a1"), Ordering::Greater);
        // Far beyond u64: no overflow.
        let big = "x".to_string() + &"9".repeat(40);
        let bigger = "x1".to_string() + &"0".repeat(40);
        assert_eq!(natural_cmp(&big, &bigger), Ordering::Less);
    }

    #[test]
    fn total_order_on_tricky_set() {
        // Sorting must not panic and every pair must agree with the sorted order.
        let names = [
            "", "0", "00", "1", "01", "001", "a", "a0", "a00", "a1", "a01", "a10", "a2", "a.1",
            "a.10", "a.2", "a_1", "b", "1a", "01a", "10", "9", "x2y3", "x2y10", "x02y3",
        ];
        let mut v: Vec<&str> = names.to_vec();
        v.sort_by(|a, b| natural_cmp(a, b));
        for i in 0..v.len() {
            for j in 0..v.len() {
                assert_eq!(natural_cmp(v[i], v[j]), i.cmp(&j), "{} vs {}", v[i], v[j]);
            }
        }
    }
}
