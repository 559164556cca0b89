//! Little-endian stored elements to f32/f64, and stored row-major blocks to faer matrices.
//!
//! Stored data may sit at any byte offset, so elements are read from byte arrays
//! (`from_le_bytes`), never by casting the read buffer.

use std::io;
use std::ops::Range;

use faer::Mat;
use faer::traits::ComplexField;
use half::f16;
use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};

use super::quant::{self, Quant};

/// A stored element type that can be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    F64,
    F32,
    F16,
    BF16,
    E4M3,
    E5M2,
    /// GGML blocks of several values with their own scales.
    Block(Quant),
}

impl Kind {
    /// Bytes per stored element (per block for block kinds).
    pub(crate) fn size(self) -> usize {
        match self {
            Kind::F64 => 8,
            Kind::F32 => 4,
            Kind::F16 | Kind::BF16 => 2,
            Kind::E4M3 | Kind::E5M2 => 1,
            Kind::Block(q) => q.block_bytes(),
        }
    }

    /// Values per stored element (per block for block kinds).
    pub(crate) fn values(self) -> usize {
        match self {
            Kind::Block(q) => q.block_values(),
            _ => 1,
        }
    }

    /// Bytes of a stored row of `ncols` values; `None` when a block kind's row is not whole
    /// blocks or the size overflows.
    pub(crate) fn row_bytes(self, ncols: usize) -> Option<usize> {
        if !ncols.is_multiple_of(self.values()) {
            return None;
        }
        (ncols / self.values()).checked_mul(self.size())
    }

    /// The stored bytes, within a row, of the blocks holding columns `cols` (the elements
    /// themselves for element kinds), and how many decoded values of the first block come
    /// before `cols.start`.
    pub(crate) fn span(self, cols: &Range<usize>) -> (Range<usize>, usize) {
        let (bv, bb) = (self.values(), self.size());
        let (b0, b1) = (cols.start / bv, cols.end.div_ceil(bv));
        (b0 * bb..b1 * bb, cols.start - b0 * bv)
    }
}

/// Reusable working space of the row decoders.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    halves: Vec<u16>,
    values: Vec<f32>,
}

/// Decodes `dst.len()` values from `bytes`, the stored span [`Kind::span`] gave for them,
/// skipping the first `skip` decoded values (those of a block before the selected columns).
pub(crate) fn decode_span<T: Elem>(
    kind: Kind,
    bytes: &[u8],
    skip: usize,
    dst: &mut [T],
    scratch: &mut Scratch,
) {
    let Kind::Block(q) = kind else {
        T::decode_row(kind, bytes, dst, &mut scratch.halves);
        return;
    };
    // The blocks covering the columns, decoded whole, then the columns copied out.
    scratch
        .values
        .resize(bytes.len() / q.block_bytes() * q.block_values(), 0.0);
    quant::dequantize(q, bytes, &mut scratch.values);
    let n = dst.len();
    for (d, &v) in dst.iter_mut().zip(&scratch.values[skip..skip + n]) {
        *d = T::from_f32(v);
    }
}

/// Decodes an OCP FP8 E4M3FN byte: bias 7, subnormals, no infinities, S.1111.111 is NaN.
pub(crate) const fn e4m3_to_f32(b: u8) -> f32 {
    let sign = ((b >> 7) as u32) << 31;
    let e = ((b >> 3) & 0x0f) as u32;
    let m = (b & 0x07) as u32;
    let bits = if e == 15 && m == 7 {
        0x7fc0_0000
    } else if e == 0 {
        if m == 0 {
            0
        } else {
            // m · 2^-9 with m in 1..=7: normalise around its leading bit p.
            let p = 31 - m.leading_zeros();
            ((p + 127 - 9) << 23) | ((m - (1 << p)) << (23 - p))
        }
    } else {
        ((e + 127 - 7) << 23) | (m << 20)
    };
    f32::from_bits(sign | bits)
}

/// Decodes an FP8 E5M2 byte: IEEE-like, bias 15, subnormals, infinities and NaNs.
pub(crate) const fn e5m2_to_f32(b: u8) -> f32 {
    let sign = ((b >> 7) as u32) << 31;
    let e = ((b >> 2) & 0x1f) as u32;
    let m = (b & 0x03) as u32;
    let bits = if e == 31 {
        if m == 0 { 0x7f80_0000 } else { 0x7fc0_0000 }
    } else if e == 0 {
        if m == 0 {
            0
        } else {
            // m · 2^-16 with m in 1..=3.
            let p = 31 - m.leading_zeros();
            ((p + 127 - 16) << 23) | ((m - (1 << p)) << (23 - p))
        }
    } else {
        ((e + 127 - 15) << 23) | (m << 21)
    };
    f32::from_bits(sign | bits)
}

macro_rules! table {
    ($f:ident) => {{
        let mut t = [0.0f32; 256];
        let mut i = 0;
        while i < 256 {
            t[i] = $f(i as u8);
            i += 1;
        }
        t
    }};
}

/// Every E4M3FN byte decoded.
pub(crate) static E4M3_TABLE: [f32; 256] = table!(e4m3_to_f32);
/// Every E5M2 byte decoded.
pub(crate) static E5M2_TABLE: [f32; 256] = table!(e5m2_to_f32);

/// An output element type: f32 or f64.
pub(crate) trait Elem: ComplexField + Copy + Default + 'static {
    /// The nearest value of this type to an f32 (exact for f64).
    fn from_f32(x: f32) -> Self;
    /// The nearest value of this type to an f64 (exact for f64).
    fn from_f64(x: f64) -> Self;
    /// Converts a run of f16 values in bulk (`half`'s SIMD conversions).
    fn from_f16_slice(src: &[f16], dst: &mut [Self]);

    /// Decodes `dst.len()` elements of `kind` from `src` (exactly `dst.len() * kind.size()`
    /// bytes); `scratch` is reusable working space.
    fn decode_row(kind: Kind, src: &[u8], dst: &mut [Self], scratch: &mut Vec<u16>) {
        match kind {
            Kind::F32 => {
                let (c, _) = src.as_chunks::<4>();
                for (d, &c) in dst.iter_mut().zip(c) {
                    *d = Self::from_f32(f32::from_le_bytes(c));
                }
            }
            Kind::F64 => {
                let (c, _) = src.as_chunks::<8>();
                for (d, &c) in dst.iter_mut().zip(c) {
                    *d = Self::from_f64(f64::from_le_bytes(c));
                }
            }
            Kind::BF16 => {
                let (c, _) = src.as_chunks::<2>();
                for (d, &c) in dst.iter_mut().zip(c) {
                    *d = Self::from_f32(f32::from_bits(u32::from(u16::from_le_bytes(c)) << 16));
                }
            }
            Kind::F16 => {
                load_u16(src, dst.len(), scratch);
                Self::from_f16_slice(scratch.reinterpret_cast(), dst);
            }
            Kind::E4M3 => {
                for (d, &b) in dst.iter_mut().zip(src) {
                    *d = Self::from_f32(E4M3_TABLE[usize::from(b)]);
                }
            }
            Kind::E5M2 => {
                for (d, &b) in dst.iter_mut().zip(src) {
                    *d = Self::from_f32(E5M2_TABLE[usize::from(b)]);
                }
            }
            Kind::Block(q) => {
                let mut values = vec![0f32; dst.len()];
                quant::dequantize(q, src, &mut values);
                for (d, v) in dst.iter_mut().zip(values) {
                    *d = Self::from_f32(v);
                }
            }
        }
    }
}

/// Copies little-endian u16 halves into `scratch` so `half` can convert them in bulk.
fn load_u16(src: &[u8], n: usize, scratch: &mut Vec<u16>) {
    scratch.clear();
    let (pairs, _) = src.as_chunks::<2>();
    scratch.extend(pairs.iter().take(n).map(|&p| u16::from_le_bytes(p)));
}

impl Elem for f32 {
    fn from_f32(x: f32) -> Self {
        x
    }
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn from_f16_slice(src: &[f16], dst: &mut [f32]) {
        src.convert_to_f32_slice(dst);
    }
}

impl Elem for f64 {
    fn from_f32(x: f32) -> Self {
        f64::from(x)
    }
    fn from_f64(x: f64) -> Self {
        x
    }
    fn from_f16_slice(src: &[f16], dst: &mut [f64]) {
        src.convert_to_f64_slice(dst);
    }
}

/// Stored rows decoded per block before being scattered into column-major output.
const ROW_BLOCK: usize = 64;

/// Columns of `m` as slices (an owned faer matrix is always column-major).
fn columns<T>(m: &mut Mat<T>) -> Vec<&mut [T]> {
    m.col_iter_mut()
        .map(|c| {
            c.try_as_col_major_mut()
                .expect("owned faer matrices have contiguous columns")
                .as_slice_mut()
        })
        .collect()
}

/// Largest run of stored bytes read at once (consecutive rows of a block).
const READ_MAX: usize = 1 << 20;

/// Largest gap between the selected parts of two consecutive rows that is read through rather
/// than skipped with a separate read (about what a system call costs in copying).
const GAP_MAX: usize = 4096;

/// Reads the stored rows `rows` of a row-major tensor of `stride` bytes per row through
/// `read(offset within the tensor, buffer)` and hands each row's bytes `span` to `row`, in
/// order. Consecutive rows are read in one run of at most [`READ_MAX`] bytes unless the
/// unselected gap between them exceeds [`GAP_MAX`].
fn each_row(
    read: &mut dyn FnMut(usize, &mut [u8]) -> io::Result<()>,
    stride: usize,
    span: &Range<usize>,
    rows: &[Range<usize>],
    mut row: impl FnMut(&[u8]),
) -> io::Result<()> {
    let take = span.len();
    let per_read = if stride - take > GAP_MAX {
        1
    } else {
        (READ_MAX / stride.max(1)).clamp(1, ROW_BLOCK)
    };
    let mut raw = Vec::new();
    for r in rows {
        let mut first = r.start;
        while first < r.end {
            let n = per_read.min(r.end - first);
            raw.resize((n - 1) * stride + take, 0);
            read(first * stride + span.start, &mut raw)?;
            for i in 0..n {
                row(&raw[i * stride..i * stride + take]);
            }
            first += n;
        }
    }
    Ok(())
}

/// Cuts `rows` × `cols` out of a row-major `[.., ncols]` tensor read through `read` (offset
/// within the tensor, buffer to fill) into `out`, column-major, transposed when asked; `out`
/// is reshaped, reusing its allocation when it is at least as large in both dimensions.
///
/// Block kinds read the whole blocks holding the selected columns of each row. The caller has
/// checked every range against the shape and that the tensor holds
/// `nrows · kind.row_bytes(ncols)` bytes; a failed read (a file that shrank) is returned.
#[allow(clippy::too_many_arguments)]
pub(crate) fn cut_from<T: Elem>(
    kind: Kind,
    read: &mut dyn FnMut(usize, &mut [u8]) -> io::Result<()>,
    ncols: usize,
    rows: &[Range<usize>],
    cols: Range<usize>,
    total_rows: usize,
    transpose: bool,
    out: &mut Mat<T>,
) -> io::Result<()> {
    let stride_bytes = kind.row_bytes(ncols).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a row is not a whole number of blocks",
        )
    })?;
    let (span, skip) = kind.span(&cols);
    let width = cols.len();
    let (nr, nc) = if transpose {
        (width, total_rows)
    } else {
        (total_rows, width)
    };
    if nr <= out.nrows() && nc <= out.ncols() {
        // Shrinking only truncates; every kept value is overwritten below.
        out.resize_with(nr, nc, |_, _| T::default());
    } else {
        // Emptied first so that growing copies nothing; the allocation is kept when its
        // capacity holds nr × nc (warm pages instead of a fresh allocation's page faults).
        out.truncate(0, 0);
        out.resize_with(nr, nc, |_, _| T::default());
    }
    if nr == 0 || nc == 0 {
        return Ok(());
    }
    let mut scratch = Scratch::default();
    let mut out_cols = columns(out);

    if transpose {
        // Stored row i becomes output column i: contiguous in column-major, decode in place.
        let mut next = out_cols.iter_mut();
        return each_row(read, stride_bytes, &span, rows, |bytes| {
            if let Some(col) = next.next() {
                decode_span(kind, bytes, skip, col, &mut scratch);
            }
        });
    }

    // Stored row i becomes output row i: decode a block of rows into a row-major buffer,
    // then copy it out column by column (each column receives a contiguous run). The buffer's
    // row stride is padded: a power-of-two stride would map one column's values to a single
    // cache set and thrash it.
    let stride = width + 16;
    let mut buf = vec![T::default(); ROW_BLOCK * stride];
    let (mut n, mut i0) = (0, 0);
    each_row(read, stride_bytes, &span, rows, |bytes| {
        let dst = &mut buf[n * stride..][..width];
        decode_span(kind, bytes, skip, dst, &mut scratch);
        n += 1;
        if n == ROW_BLOCK {
            scatter(&buf, stride, n, &mut out_cols, i0);
            i0 += n;
            n = 0;
        }
    })?;
    scatter(&buf, stride, n, &mut out_cols, i0);
    Ok(())
}

/// [`cut_from`] bytes in memory (`data` holds the whole tensor).
#[cfg(test)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn cut_into<T: Elem>(
    kind: Kind,
    data: &[u8],
    ncols: usize,
    rows: &[Range<usize>],
    cols: Range<usize>,
    total_rows: usize,
    transpose: bool,
    out: &mut Mat<T>,
) {
    let mut read = |offset: usize, buf: &mut [u8]| {
        buf.copy_from_slice(&data[offset..offset + buf.len()]);
        Ok(())
    };
    cut_from(
        kind, &mut read, ncols, rows, cols, total_rows, transpose, out,
    )
    .expect("reading memory cannot fail");
}

/// Writes the `n` buffered rows (row stride `stride`) into rows `i0..i0 + n` of the output
/// columns: a contiguous run per column, strided reads from a cache-resident buffer.
fn scatter<T: Elem>(buf: &[T], stride: usize, n: usize, cols: &mut [&mut [T]], i0: usize) {
    for (j, col) in cols.iter_mut().enumerate() {
        let src = buf[j..].iter().step_by(stride);
        for (d, &v) in col[i0..i0 + n].iter_mut().zip(src) {
            *d = v;
        }
    }
}

/// [`cut_into`] a fresh matrix.
#[cfg(test)]
pub(crate) fn cut<T: Elem>(
    kind: Kind,
    data: &[u8],
    ncols: usize,
    rows: &[Range<usize>],
    cols: Range<usize>,
    total_rows: usize,
    transpose: bool,
) -> Mat<T> {
    let mut out = Mat::new();
    cut_into(
        kind, data, ncols, rows, cols, total_rows, transpose, &mut out,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference decoding straight from the format definitions, with powi.
    fn e4m3_ref(b: u8) -> f32 {
        let s = if b & 0x80 != 0 { -1.0 } else { 1.0 };
        let e = i32::from((b >> 3) & 0xf);
        let m = f32::from(b & 7);
        if e == 15 && b & 7 == 7 {
            f32::NAN
        } else if e == 0 {
            s * m / 8.0 * 2f32.powi(-6)
        } else {
            s * (1.0 + m / 8.0) * 2f32.powi(e - 7)
        }
    }

    fn e5m2_ref(b: u8) -> f32 {
        let s = if b & 0x80 != 0 { -1.0 } else { 1.0 };
        let e = i32::from((b >> 2) & 0x1f);
        let m = f32::from(b & 3);
        if e == 31 {
            if m == 0.0 {
                s * f32::INFINITY
            } else {
                f32::NAN
            }
        } else if e == 0 {
            s * m / 4.0 * 2f32.powi(-14)
        } else {
            s * (1.0 + m / 4.0) * 2f32.powi(e - 15)
        }
    }

    #[test]
    fn fp8_tables_match_reference() {
        for b in 0..=255u8 {
            let (t, r) = (E4M3_TABLE[b as usize], e4m3_ref(b));
            assert!(
                t.to_bits() == r.to_bits() || (t.is_nan() && r.is_nan()),
                "e4m3 {b:#x}"
            );
            let (t, r) = (E5M2_TABLE[b as usize], e5m2_ref(b));
            assert!(
                t.to_bits() == r.to_bits() || (t.is_nan() && r.is_nan()),
                "e5m2 {b:#x}"
            );
        }
    }

    #[test]
    fn fp8_known_values() {
        assert_eq!(E4M3_TABLE[0x38], 1.0);
        assert_eq!(E4M3_TABLE[0x7e], 448.0);
        assert_eq!(E4M3_TABLE[0xfe], -448.0);
        assert_eq!(E4M3_TABLE[0x01], 2f32.powi(-9));
        assert_eq!(E4M3_TABLE[0x07], 7.0 * 2f32.powi(-9));
        assert_eq!(E4M3_TABLE[0x08], 2f32.powi(-6));
        assert!(E4M3_TABLE[0x7f].is_nan() && E4M3_TABLE[0xff].is_nan());
        assert!(E4M3_TABLE[0x78].is_finite());
        assert_eq!(E4M3_TABLE[0x80].to_bits(), (-0.0f32).to_bits());
        assert_eq!(E5M2_TABLE[0x3c], 1.0);
        assert_eq!(E5M2_TABLE[0x7b], 57344.0);
        assert_eq!(E5M2_TABLE[0x7c], f32::INFINITY);
        assert_eq!(E5M2_TABLE[0xfc], f32::NEG_INFINITY);
        assert!(E5M2_TABLE[0x7d].is_nan());
        assert_eq!(E5M2_TABLE[0x01], 2f32.powi(-16));
        assert_eq!(E5M2_TABLE[0x04], 2f32.powi(-14));
    }

    #[test]
    fn cut_matches_naive_for_every_kind_and_orientation() {
        let (nr, nc) = (37, 23);
        let vals: Vec<f32> = (0..nr * nc).map(|k| (k as f32 - 300.0) / 8.0).collect();
        let encodings: Vec<(Kind, Vec<u8>)> = vec![
            (
                Kind::F32,
                vals.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
            (
                Kind::F64,
                vals.iter()
                    .flat_map(|&v| f64::from(v).to_le_bytes())
                    .collect(),
            ),
            (
                Kind::F16,
                vals.iter()
                    .flat_map(|&v| f16::from_f32(v).to_le_bytes())
                    .collect(),
            ),
            (
                Kind::BF16,
                vals.iter()
                    .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
                    .collect(),
            ),
            (Kind::E4M3, (0..nr * nc).map(|k| (k % 256) as u8).collect()),
            (
                Kind::E5M2,
                (0..nr * nc).map(|k| (k * 7 % 256) as u8).collect(),
            ),
        ];
        let rows = [3..20, 0..2, 30..37, 5..5];
        let cols = 4..21;
        let picked: Vec<usize> = rows.iter().flat_map(|r| r.clone()).collect();
        for (kind, bytes) in &encodings {
            // Odd offset: stored data need not be aligned.
            let mut shifted = vec![0u8];
            shifted.extend_from_slice(bytes);
            let data = &shifted[1..];
            let mut all = vec![0f64; nr * nc];
            let mut scratch = Vec::new();
            f64::decode_row(*kind, data, &mut all, &mut scratch);
            let a: Mat<f32> = cut(*kind, data, nc, &rows, cols.clone(), picked.len(), false);
            let b: Mat<f64> = cut(*kind, data, nc, &rows, cols.clone(), picked.len(), true);
            assert_eq!((a.nrows(), a.ncols()), (picked.len(), cols.len()));
            assert_eq!((b.nrows(), b.ncols()), (cols.len(), picked.len()));
            for (i, &r) in picked.iter().enumerate() {
                for (j, c) in cols.clone().enumerate() {
                    let want = all[r * nc + c];
                    let (x, y) = (f64::from(a[(i, j)]), b[(j, i)]);
                    assert!(
                        x == want || (x.is_nan() && want.is_nan()),
                        "{kind:?} {r} {c}"
                    );
                    assert!(
                        y == want || (y.is_nan() && want.is_nan()),
                        "{kind:?} {r} {c}"
                    );
                }
            }
        }
    }

    /// Block kinds read each row's whole blocks around the selected columns: wide rows (one
    /// read per row) and narrow ones (runs of rows), columns starting and ending mid-block.
    #[test]
    fn block_cut_matches_whole_rows_dequantized() {
        let mut rng = crate::rng::Rng::new(5);
        for (q, scales, blocks_per_row) in [
            (Quant::Q8_0, &[0usize][..], 160),
            (Quant::Q8_0, &[0][..], 3),
            (Quant::Q4K, &[0, 2][..], 2),
        ] {
            let (bv, bb) = (q.block_values(), q.block_bytes());
            let (nr, nc) = (9, blocks_per_row * bv);
            let mut data: Vec<u8> = (0..nr * blocks_per_row * bb)
                .map(|_| rng.next_u64() as u8)
                .collect();
            for b in data.chunks_exact_mut(bb) {
                for &o in scales {
                    let v = f16::from_f32(rng.uniform() as f32 - 0.5);
                    b[o..o + 2].copy_from_slice(&v.to_le_bytes());
                }
            }
            let mut all = vec![0f32; nr * nc];
            quant::dequantize(q, &data, &mut all);
            let rows = [6..9, 0..2, 4..5];
            let picked: Vec<usize> = rows.iter().flat_map(|r| r.clone()).collect();
            for cols in [bv - 3..bv + 5, bv + 3..2 * bv - 5, 0..nc, 1..bv - 1] {
                let a: Mat<f32> = cut(Kind::Block(q), &data, nc, &rows, cols.clone(), 6, false);
                let b: Mat<f64> = cut(Kind::Block(q), &data, nc, &rows, cols.clone(), 6, true);
                for (i, &r) in picked.iter().enumerate() {
                    for (j, c) in cols.clone().enumerate() {
                        let want = all[r * nc + c];
                        assert_eq!(a[(i, j)].to_bits(), want.to_bits(), "{q:?} {r} {c}");
                        assert_eq!(b[(j, i)], f64::from(want), "{q:?} {r} {c}");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod bench {
    use super::*;
    use std::time::Instant;

    /// Times decoding a 2048×2048 block; run with `cargo test --lib decode_speed -- --ignored
    /// --nocapture`.
    #[test]
    #[ignore = "timing, not a check"]
    #[allow(clippy::single_range_in_vec_init)]
    fn decode_speed() {
        let n = 2048;
        let mut rng = crate::rng::Rng::new(7);
        let vals: Vec<f32> = (0..n * n).map(|_| rng.uniform() as f32 - 0.5).collect();
        let bf: Vec<u8> = vals
            .iter()
            .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
            .collect();
        let h: Vec<u8> = vals
            .iter()
            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
            .collect();
        let f: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let e4: Vec<u8> = (0..n * n).map(|k| (k % 251) as u8).collect();
        let rows = [0..n];
        for (name, kind, data) in [
            ("bf16", Kind::BF16, &bf),
            ("f16", Kind::F16, &h),
            ("f32", Kind::F32, &f),
            ("e4m3", Kind::E4M3, &e4),
        ] {
            for transpose in [false, true] {
                let mut best32 = f64::INFINITY;
                let mut best64 = f64::INFINITY;
                for _ in 0..5 {
                    let t = Instant::now();
                    let m: Mat<f32> = cut(kind, data, n, &rows, 0..n, n, transpose);
                    best32 = best32.min(t.elapsed().as_secs_f64());
                    std::hint::black_box(m);
                    let t = Instant::now();
                    let m: Mat<f64> = cut(kind, data, n, &rows, 0..n, n, transpose);
                    best64 = best64.min(t.elapsed().as_secs_f64());
                    std::hint::black_box(m);
                }
                let mut reuse32 = Mat::<f32>::new();
                let mut reuse64 = Mat::<f64>::new();
                let mut into32 = f64::INFINITY;
                let mut into64 = f64::INFINITY;
                for _ in 0..5 {
                    let t = Instant::now();
                    cut_into(kind, data, n, &rows, 0..n, n, transpose, &mut reuse32);
                    into32 = into32.min(t.elapsed().as_secs_f64());
                    let t = Instant::now();
                    cut_into(kind, data, n, &rows, 0..n, n, transpose, &mut reuse64);
                    into64 = into64.min(t.elapsed().as_secs_f64());
                }
                println!(
                    "{name:5} transpose={transpose:5}: fresh f32 {:6.2} ms, f64 {:6.2} ms; \
                     reused f32 {:6.2} ms, f64 {:6.2} ms",
                    best32 * 1e3,
                    best64 * 1e3,
                    into32 * 1e3,
                    into64 * 1e3
                );
            }
        }
    }
}
