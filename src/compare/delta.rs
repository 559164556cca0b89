//! The change ΔW = W_other − W_base of one block: its size, its numerical rank, and how far
//! its top singular subspace moved.
//!
//! **Numerical rank.** `delta_rank = #{i : νᵢ(ΔW) > tol}` with
//!
//! ```text
//! tol = max( c_method · ν₁(ΔW),  2 · u · rms(W) · (√m + √n) )
//! ```
//!
//! - `c_method` is the relative floor of the method that found the values. ΔW goes through the
//!   engine's `Fast` method: an f64 Gram matrix whose eigenvalues are accurate to about
//!   c·ε·λ₁, so a singular value to √(c·ε)·ν₁. Below p = 512 the reduction runs in f64
//!   (floor 4·√(p·ε₆₄)); from p = 512 on it runs in f32 (measured 2e-6 relative on the large
//!   eigenvalues of a 2048² block, ≈ 33·ε₃₂; floor √(64·ε₃₂) ≈ 2e-3). A bidiagonal SVD
//!   (`--precise`) or the factored LoRA spectrum: max(m, n)·ε₆₄ (numpy's `matrix_rank` rule).
//!   ε₆₄ = 2⁻⁵³, ε₃₂ = 2⁻²⁴. (Measured on the 1B shape: the f64 Gram path costs 0.8 s on a
//!   2048² ΔW against 0.45 s for `Fast`, which is why `Fast` is used.)
//! - `u` is the unit round-off of the *finer* of the two stored dtypes (f32 2⁻²⁴, f16 2⁻¹¹,
//!   bf16 2⁻⁸, …) and rms(W) the larger of the two blocks' root-mean-square entries. Storing
//!   W + U rounds every entry by at most u·|w|; such rounding errors are independent and of
//!   root-mean-square at most u·rms(W)/√3, so their largest singular value is about
//!   0.58·u·rms(W)·(√m + √n) (the MP edge): the factor 2 leaves a margin of 3.5. Rounding of
//!   the finer dtype is thus never counted, while the change *to* a coarser dtype (an f32 model
//!   against its bf16 copy, a GGUF quantization) is a real, full-rank change and is counted.
//! - Bit-identical blocks (ΔW = 0) have rank 0 and no spectrum.

use faer::MatRef;

use crate::checkpoint::Dtype;

/// Machine epsilon of f64 (unit round-off 2⁻⁵³).
const EPS64: f64 = f64::EPSILON / 2.0;

/// Unit round-off of a stored dtype: half the spacing of representable values relative to a
/// value (2⁻²⁴ for f32, 2⁻⁸ for bf16). Block quantizations count as 2^−(b−1) for b bits per
/// weight (their step is about the block's absolute maximum over 2^(b−1)); an unknown dtype
/// counts as f32.
pub fn unit_roundoff(d: &Dtype) -> f64 {
    use crate::checkpoint::Quant::*;
    let bits: i32 = match d {
        Dtype::F64 => 53,
        Dtype::F32 | Dtype::Unsupported(_) => 24,
        Dtype::F16 => 11,
        Dtype::BF16 => 8,
        Dtype::F8E4M3 => 4,
        Dtype::F8E5M2 => 3,
        Dtype::Quant(q) => match q {
            Q8_0 | Q8K => 7,
            Q6K => 5,
            Q5_0 | Q5_1 | Q5K => 4,
            Q4_0 | Q4_1 | Q4K => 3,
            Q3K => 2,
            Q2K => 1,
        },
    };
    (2.0f64).powi(-bits)
}

/// How the singular values of ΔW were found (decides the relative floor of the rank).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeltaMethod {
    /// ΔW is exactly zero: no values computed.
    Zero,
    /// Eigenvalues of ΔW's f64 Gram matrix, reduced in f32 from p = 512 on (the engine's
    /// `Fast` method).
    Gram,
    /// Bidiagonal SVD of ΔW in f64 (`--precise`).
    Svd,
    /// LoRA: QR of both factors and an r × r SVD, never forming ΔW.
    Factored,
}

impl DeltaMethod {
    /// Relative floor c_method of the values of a rows × cols ΔW (see the module doc).
    pub fn floor(self, rows: usize, cols: usize) -> f64 {
        match self {
            DeltaMethod::Zero => 0.0,
            DeltaMethod::Gram => {
                let p = rows.min(cols);
                // The engine's `Fast` reduces in f32 from p = 512 on (svd.rs, MIXED_MIN).
                if p >= 512 {
                    (64.0 * f64::from(f32::EPSILON) / 2.0).sqrt()
                } else {
                    4.0 * (p as f64 * EPS64).sqrt()
                }
            }
            DeltaMethod::Svd | DeltaMethod::Factored => rows.max(cols) as f64 * EPS64,
        }
    }
}

/// The rank tolerance of the module doc: `max(floor · ν₁, 2 · u · rms · (√m + √n))`.
pub fn rank_tolerance(nu1: f64, floor: f64, u: f64, rms: f64, rows: usize, cols: usize) -> f64 {
    let rounding = 2.0 * u * rms * ((rows as f64).sqrt() + (cols as f64).sqrt());
    (floor * nu1).max(rounding)
}

/// Number of values above `tol`.
pub fn numerical_rank(values: &[f64], tol: f64) -> usize {
    values.iter().filter(|&&v| v > tol).count()
}

/// Frobenius norm of a matrix.
pub fn frobenius(m: MatRef<'_, f64>) -> f64 {
    m.norm_l2()
}

/// Root mean square of a matrix's entries (0 for an empty one).
pub fn rms(m: MatRef<'_, f64>) -> f64 {
    let n = (m.nrows() * m.ncols()) as f64;
    if n == 0.0 {
        0.0
    } else {
        frobenius(m) / n.sqrt()
    }
}

/// Mean cos² of the principal angles between span(a) and span(b), both orthonormal sets of
/// vectors of one length: ‖AᵀB‖²_F / k with k = min(#a, #b) (1 for identical spans, k′/k when
/// k′ directions are shared, about k/n for unrelated random spans). `None` when either is
/// empty.
pub fn subspace_overlap(a: &[Vec<f64>], b: &[Vec<f64>]) -> Option<f64> {
    let k = a.len().min(b.len());
    if k == 0 {
        return None;
    }
    let mut sum = 0.0;
    for x in &a[..k] {
        for y in &b[..k] {
            let d: f64 = x.iter().zip(y).map(|(p, q)| p * q).sum();
            sum += d * d;
        }
    }
    Some((sum / k as f64).min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundoff_orders_dtypes() {
        assert_eq!(unit_roundoff(&Dtype::F32), 2f64.powi(-24));
        assert_eq!(unit_roundoff(&Dtype::BF16), 2f64.powi(-8));
        assert!(unit_roundoff(&Dtype::F16) < unit_roundoff(&Dtype::BF16));
        assert!(
            unit_roundoff(&Dtype::Quant(crate::checkpoint::Quant::Q4_0))
                > unit_roundoff(&Dtype::Quant(crate::checkpoint::Quant::Q8_0))
        );
    }

    #[test]
    fn tolerance_takes_the_larger_floor() {
        // Rounding term 2·2⁻⁸·0.1·(8 + 8) = 0.0125; floor term 1e-6·10.
        let t = rank_tolerance(10.0, 1e-6, 2f64.powi(-8), 0.1, 64, 64);
        assert!((t - 0.0125).abs() < 1e-12);
        assert_eq!(rank_tolerance(10.0, 1e-2, 0.0, 0.1, 64, 64), 0.1);
        assert_eq!(numerical_rank(&[3.0, 1.0, 0.1, 0.0], 0.1), 2);
    }

    #[test]
    fn overlap_of_shared_and_rotated_spans() {
        let e = |i: usize| {
            let mut v = vec![0.0; 4];
            v[i] = 1.0;
            v
        };
        assert_eq!(subspace_overlap(&[e(0), e(1)], &[e(1), e(0)]), Some(1.0));
        assert_eq!(subspace_overlap(&[e(0), e(1)], &[e(0), e(2)]), Some(0.5));
        assert_eq!(subspace_overlap(&[e(0)], &[e(3)]), Some(0.0));
        let c = std::f64::consts::FRAC_1_SQRT_2;
        let r = subspace_overlap(&[e(0)], &[vec![c, c, 0.0, 0.0]]).unwrap();
        assert!((r - 0.5).abs() < 1e-15);
        assert_eq!(subspace_overlap(&[], &[e(0)]), None);
    }
}
