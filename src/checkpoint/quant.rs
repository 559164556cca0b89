//! GGML block quantizations decoded to f32, one block at a time, straight from mapped bytes.
//!
//! Each type stores a row as consecutive blocks of 32 (legacy) or 256 (k-quants) values with
//! their own scales. Each decoder follows llama.cpp's reference `dequantize_row_*`
//! (ggml-quants.c) and gguf-py's `dequantize_blocks`, with the same f32 operations in the same
//! order (`d·q`, `d·q + m`, `(d·sc)·q − dmin·m`, never a fused multiply-add), so the values are
//! bit-identical to gguf-py's; tests/data/gguf_quants.json holds gguf-py's decodings of random
//! blocks of every type (made by tests/data/make_gguf_reference.py).
//!
//! Throughput on one core of the project's build machine (`cargo bench --bench gguf`, values
//! decoded per second from random blocks): Q4_0 5.6 G, Q4_1 5.4 G, Q5_0 1.9 G, Q5_1 1.9 G,
//! Q8_0 6.5 G, Q2_K 1.7 G, Q3_K 2.4 G, Q4_K 5.1 G, Q5_K 3.9 G, Q6_K 2.8 G, Q8_K 7.0 G. The
//! k-quants walk their super-blocks in runs of 32 values with the bit position fixed per run
//! (llama.cpp's loop order), which lets the compiler vectorize: per-value index arithmetic ran
//! Q6_K at 0.35 G/s. The slowest, 2048×2048 of Q5_0, decodes in 2 ms, against 0.3 s for its
//! spectrum.
//!
//! IQ* (importance-matrix codebooks) and TQ* (ternary) types are not decoded: no well-kept
//! crate decodes them from a borrowed slice (candle-core has no IQ types; ggml-quants 0.1
//! leaves them, and the k-quants, `todo!()`), and their codebook tables are large.

use half::f16;

/// A GGML block-quantized element type mpscope decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quant {
    /// 32 values: f16 scale, 4-bit values − 8.
    Q4_0,
    /// 32 values: f16 scale and minimum, 4-bit values.
    Q4_1,
    /// 32 values: f16 scale, 5-bit values − 16.
    Q5_0,
    /// 32 values: f16 scale and minimum, 5-bit values.
    Q5_1,
    /// 32 values: f16 scale, 8-bit values.
    Q8_0,
    /// 256 values: 16 sub-blocks of 2 bits with 4-bit scales and minima.
    Q2K,
    /// 256 values: 16 sub-blocks of 3 bits with 6-bit scales.
    Q3K,
    /// 256 values: 8 sub-blocks of 4 bits with 6-bit scales and minima.
    Q4K,
    /// 256 values: 8 sub-blocks of 5 bits with 6-bit scales and minima.
    Q5K,
    /// 256 values: 16 sub-blocks of 6 bits with 8-bit scales.
    Q6K,
    /// 256 values: f32 scale, 8-bit values (and block sums, unused here).
    Q8K,
}

/// Values per k-quant super-block.
const QK_K: usize = 256;

impl Quant {
    /// Every decodable quantization, in GGML type-id order.
    pub const ALL: [Quant; 11] = [
        Quant::Q4_0,
        Quant::Q4_1,
        Quant::Q5_0,
        Quant::Q5_1,
        Quant::Q8_0,
        Quant::Q2K,
        Quant::Q3K,
        Quant::Q4K,
        Quant::Q5K,
        Quant::Q6K,
        Quant::Q8K,
    ];

    /// GGML's name of the type ("Q4_0", "Q4_K", ...).
    pub fn name(self) -> &'static str {
        match self {
            Quant::Q4_0 => "Q4_0",
            Quant::Q4_1 => "Q4_1",
            Quant::Q5_0 => "Q5_0",
            Quant::Q5_1 => "Q5_1",
            Quant::Q8_0 => "Q8_0",
            Quant::Q2K => "Q2_K",
            Quant::Q3K => "Q3_K",
            Quant::Q4K => "Q4_K",
            Quant::Q5K => "Q5_K",
            Quant::Q6K => "Q6_K",
            Quant::Q8K => "Q8_K",
        }
    }

    /// Values per block.
    pub fn block_values(self) -> usize {
        match self {
            Quant::Q4_0 | Quant::Q4_1 | Quant::Q5_0 | Quant::Q5_1 | Quant::Q8_0 => 32,
            _ => QK_K,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            Quant::Q4_0 => 2 + 16,
            Quant::Q4_1 => 4 + 16,
            Quant::Q5_0 => 2 + 4 + 16,
            Quant::Q5_1 => 4 + 4 + 16,
            Quant::Q8_0 => 2 + 32,
            Quant::Q2K => 16 + 64 + 4,
            Quant::Q3K => 32 + 64 + 12 + 2,
            Quant::Q4K => 4 + 12 + 128,
            Quant::Q5K => 4 + 12 + 32 + 128,
            Quant::Q6K => 128 + 64 + 16 + 2,
            Quant::Q8K => 4 + 256 + 32,
        }
    }
}

fn half(b: [u8; 2]) -> f32 {
    f16::from_le_bytes(b).to_f32()
}

impl Quant {
    /// Decodes whole blocks of this type from `src` into `out`: as many blocks as both hold
    /// (`src.len() / block_bytes` and `out.len() / block_values`); the rest is left alone.
    pub fn dequantize(self, src: &[u8], out: &mut [f32]) {
        dequantize(self, src, out);
    }
}

/// [`Quant::dequantize`].
pub(crate) fn dequantize(q: Quant, src: &[u8], out: &mut [f32]) {
    match q {
        Quant::Q4_0 => blocks::<18, 32>(src, out, q4_0),
        Quant::Q4_1 => blocks::<20, 32>(src, out, q4_1),
        Quant::Q5_0 => blocks::<22, 32>(src, out, q5_0),
        Quant::Q5_1 => blocks::<24, 32>(src, out, q5_1),
        Quant::Q8_0 => blocks::<34, 32>(src, out, q8_0),
        Quant::Q2K => blocks::<84, 256>(src, out, q2_k),
        Quant::Q3K => blocks::<110, 256>(src, out, q3_k),
        Quant::Q4K => blocks::<144, 256>(src, out, q4_k),
        Quant::Q5K => blocks::<176, 256>(src, out, q5_k),
        Quant::Q6K => blocks::<210, 256>(src, out, q6_k),
        Quant::Q8K => blocks::<292, 256>(src, out, q8_k),
    }
}

fn blocks<const B: usize, const N: usize>(
    src: &[u8],
    out: &mut [f32],
    f: fn(&[u8; B], &mut [f32; N]),
) {
    let (src, _) = src.as_chunks::<B>();
    let (out, _) = out.as_chunks_mut::<N>();
    for (b, y) in src.iter().zip(out) {
        f(b, y);
    }
}

fn q4_0(b: &[u8; 18], y: &mut [f32; 32]) {
    let d = half([b[0], b[1]]);
    for j in 0..16 {
        let x = b[2 + j];
        y[j] = d * f32::from((x & 0x0f) as i8 - 8);
        y[j + 16] = d * f32::from((x >> 4) as i8 - 8);
    }
}

fn q4_1(b: &[u8; 20], y: &mut [f32; 32]) {
    let (d, m) = (half([b[0], b[1]]), half([b[2], b[3]]));
    for j in 0..16 {
        let x = b[4 + j];
        y[j] = d * f32::from(x & 0x0f) + m;
        y[j + 16] = d * f32::from(x >> 4) + m;
    }
}

fn q5_0(b: &[u8; 22], y: &mut [f32; 32]) {
    let d = half([b[0], b[1]]);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    for j in 0..16 {
        let x = b[6 + j];
        let lo = (x & 0x0f) | ((((qh >> j) & 1) as u8) << 4);
        let hi = (x >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
        y[j] = d * f32::from(lo as i8 - 16);
        y[j + 16] = d * f32::from(hi as i8 - 16);
    }
}

fn q5_1(b: &[u8; 24], y: &mut [f32; 32]) {
    let (d, m) = (half([b[0], b[1]]), half([b[2], b[3]]));
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    for j in 0..16 {
        let x = b[8 + j];
        let lo = (x & 0x0f) | ((((qh >> j) & 1) as u8) << 4);
        let hi = (x >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
        y[j] = d * f32::from(lo) + m;
        y[j + 16] = d * f32::from(hi) + m;
    }
}

fn q8_0(b: &[u8; 34], y: &mut [f32; 32]) {
    let d = half([b[0], b[1]]);
    for (v, &x) in y.iter_mut().zip(&b[2..]) {
        *v = f32::from(x as i8) * d;
    }
}

/// Walks a k-quant super-block as llama.cpp does: two halves of 128 values, each four runs
/// of 32 (run j reads bit pair j of 32 packed bytes), each run two sub-blocks of 16.
/// `f(h, j, y)` fills run j of half h, `y` being its 32 outputs.
fn runs(y: &mut [f32; 256], mut f: impl FnMut(usize, usize, &mut [f32])) {
    for (k, run) in y.chunks_exact_mut(32).enumerate() {
        f(k / 4, k % 4, run);
    }
}

/// Q2_K: scales[16] (low nibble scale, high nibble min), qs[64], d, dmin. Value l of run j of
/// half h sits in qs[32·h + l] at bit 2·j; sub-block (128·h + 32·j + l) / 16.
fn q2_k(b: &[u8; 84], y: &mut [f32; 256]) {
    let (scales, qs) = (&b[..16], &b[16..80]);
    let (d, dmin) = (half([b[80], b[81]]), half([b[82], b[83]]));
    runs(y, |h, j, run| {
        let q = &qs[32 * h..32 * h + 32];
        for (part, (out, q)) in run.chunks_exact_mut(16).zip(q.chunks_exact(16)).enumerate() {
            let s = scales[8 * h + 2 * j + part];
            let dl = d * f32::from(s & 0x0f);
            let ml = dmin * f32::from(s >> 4);
            for (v, &x) in out.iter_mut().zip(q) {
                *v = dl * f32::from((x >> (2 * j)) & 3) - ml;
            }
        }
    });
}

/// Q3_K: hmask[32], qs[64], scales[12] (16 six-bit scales − 32), d. Low two bits as Q2_K, the
/// high bit of run j of half h in hmask[l] at bit 4·h + j, subtracting 4 when it is clear.
fn q3_k(b: &[u8; 110], y: &mut [f32; 256]) {
    let (hmask, qs, sc) = (&b[..32], &b[32..96], &b[96..108]);
    let d = half([b[108], b[109]]);
    let mut scales = [0f32; 16];
    for (s, out) in scales.iter_mut().enumerate() {
        let lo = if s < 8 { sc[s] & 0x0f } else { sc[s - 8] >> 4 };
        let hi = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
        *out = d * f32::from((lo | (hi << 4)) as i8 - 32);
    }
    runs(y, |h, j, run| {
        let q = &qs[32 * h..32 * h + 32];
        let bit = 4 * h + j;
        for (part, ((out, q), m)) in run
            .chunks_exact_mut(16)
            .zip(q.chunks_exact(16))
            .zip(hmask.chunks_exact(16))
            .enumerate()
        {
            let dl = scales[8 * h + 2 * j + part];
            for ((v, &x), &m) in out.iter_mut().zip(q).zip(m) {
                let lo = (x >> (2 * j)) & 3;
                let high_clear = ((m >> bit) & 1) ^ 1;
                *v = dl * f32::from(lo as i8 - (high_clear << 2) as i8);
            }
        }
    });
}

/// The 8 six-bit scales and minima of Q4_K and Q5_K packed in 12 bytes.
fn scale_min_k4(sc: &[u8]) -> ([u8; 8], [u8; 8]) {
    let (mut s, mut m) = ([0u8; 8], [0u8; 8]);
    for j in 0..4 {
        s[j] = sc[j] & 0x3f;
        m[j] = sc[4 + j] & 0x3f;
        s[4 + j] = (sc[8 + j] & 0x0f) | ((sc[j] >> 2) & 0x30);
        m[4 + j] = (sc[8 + j] >> 4) | ((sc[4 + j] >> 2) & 0x30);
    }
    (s, m)
}

/// Q4_K: d, dmin, scales[12], qs[128]; sub-block s = i / 32 reads nibble s % 2 of
/// qs[32·(s / 2) + i % 32].
fn q4_k(b: &[u8; 144], y: &mut [f32; 256]) {
    let (d, dmin) = (half([b[0], b[1]]), half([b[2], b[3]]));
    let (s, m) = scale_min_k4(&b[4..16]);
    let qs = &b[16..];
    for (sub, chunk) in y.chunks_exact_mut(32).enumerate() {
        let dl = d * f32::from(s[sub]);
        let ml = dmin * f32::from(m[sub]);
        let shift = 4 * (sub % 2);
        for (l, v) in chunk.iter_mut().enumerate() {
            let q = (qs[32 * (sub / 2) + l] >> shift) & 0x0f;
            *v = dl * f32::from(q) - ml;
        }
    }
}

/// Q5_K: Q4_K plus qh[32], the fifth bit of value i in qh[i % 32] at bit i / 32.
fn q5_k(b: &[u8; 176], y: &mut [f32; 256]) {
    let (d, dmin) = (half([b[0], b[1]]), half([b[2], b[3]]));
    let (s, m) = scale_min_k4(&b[4..16]);
    let (qh, qs) = (&b[16..48], &b[48..]);
    for (sub, chunk) in y.chunks_exact_mut(32).enumerate() {
        let dl = d * f32::from(s[sub]);
        let ml = dmin * f32::from(m[sub]);
        let shift = 4 * (sub % 2);
        for (l, v) in chunk.iter_mut().enumerate() {
            let q = ((qs[32 * (sub / 2) + l] >> shift) & 0x0f) | (((qh[l] >> sub) & 1) << 4);
            *v = dl * f32::from(q) - ml;
        }
    }
}

/// Q6_K: ql[128], qh[64], scales[16] (i8), d. Value l of run j of half h: nibble j / 2 of
/// ql[64·h + 32·(j % 2) + l], high two bits of qh[32·h + l] at bit 2·j.
fn q6_k(b: &[u8; 210], y: &mut [f32; 256]) {
    let (ql, qh, sc) = (&b[..128], &b[128..192], &b[192..208]);
    let d = half([b[208], b[209]]);
    runs(y, |h, j, run| {
        let lo = &ql[64 * h + 32 * (j % 2)..][..32];
        let hi = &qh[32 * h..32 * h + 32];
        let (ls, hs) = (4 * (j / 2), 2 * j);
        for (part, ((out, lo), hi)) in run
            .chunks_exact_mut(16)
            .zip(lo.chunks_exact(16))
            .zip(hi.chunks_exact(16))
            .enumerate()
        {
            let dl = d * f32::from(sc[8 * h + 2 * j + part] as i8);
            for ((v, &l), &h) in out.iter_mut().zip(lo).zip(hi) {
                let q = ((l >> ls) & 0x0f) | (((h >> hs) & 3) << 4);
                *v = dl * f32::from(q as i8 - 32);
            }
        }
    });
}

fn q8_k(b: &[u8; 292], y: &mut [f32; 256]) {
    let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    for (v, &x) in y.iter_mut().zip(&b[4..260]) {
        *v = d * f32::from(x as i8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Block sizes agree with ggml's type traits (gguf-py's GGML_QUANT_SIZES).
    #[test]
    fn block_sizes() {
        let sizes: Vec<(usize, usize)> = Quant::ALL
            .iter()
            .map(|q| (q.block_values(), q.block_bytes()))
            .collect();
        assert_eq!(
            sizes,
            [
                (32, 18),
                (32, 20),
                (32, 22),
                (32, 24),
                (32, 34),
                (256, 84),
                (256, 110),
                (256, 144),
                (256, 176),
                (256, 210),
                (256, 292)
            ]
        );
    }

    /// Hand-built blocks with known values.
    #[test]
    fn known_blocks() {
        // Q8_0: scale 0.5, values −128..=−97.
        let mut b = f16::from_f32(0.5).to_le_bytes().to_vec();
        b.extend((0..32u8).map(|i| i.wrapping_add(128)));
        let mut y = [0f32; 32];
        dequantize(Quant::Q8_0, &b, &mut y);
        assert_eq!(y[0], -64.0);
        assert_eq!(y[31], -48.5);
        // Q4_1: scale 2, min −1, nibbles 0..15 low then 15..0 high.
        let mut b = f16::from_f32(2.0).to_le_bytes().to_vec();
        b.extend(f16::from_f32(-1.0).to_le_bytes());
        b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        dequantize(Quant::Q4_1, &b, &mut y);
        assert_eq!((y[0], y[15], y[16], y[31]), (-1.0, 29.0, 29.0, -1.0));
        // Q8_K: f32 scale 0.25.
        let mut b = 0.25f32.to_le_bytes().to_vec();
        b.extend((0..256).map(|i| (i as u8).wrapping_sub(128)));
        b.extend([0u8; 32]);
        let mut y = [0f32; 256];
        dequantize(Quant::Q8K, &b, &mut y);
        assert_eq!((y[0], y[128], y[255]), (-32.0, 0.0, 31.75));
    }
}
