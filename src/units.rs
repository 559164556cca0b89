//! Small formatting helpers shared by the text outputs.

/// Bytes as a human size with binary prefixes, e.g. "2.47 GiB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

/// A shape as "2048×512" (or "2048x512" in ASCII mode).
pub fn shape(dims: &[usize], ascii: bool) -> String {
    let sep = if ascii { "x" } else { "×" };
    dims.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(bytes(5 * 1024 * 1024 * 1024), "5.00 GiB");
        assert_eq!(shape(&[3, 4], true), "3x4");
        assert_eq!(shape(&[3, 4], false), "3×4");
    }
}
