//! The Marchenko–Pastur law in singular-value form, and its eigenvalue form λ = ν²/q.
//!
//! For an m × n block of iid entries of variance σ², p = min(m, n), q = max(m, n):
//!
//! ```text
//! ν± = σ(√q ± √p)
//! g(ν) = √((ν+² − ν²)(ν² − ν−²)) / (π σ² p ν)      on [ν−, ν+]
//! ```
//!
//! **CDF in closed form.** With x = ν², a = ν−², b = ν+², c = (a+b)/2, d = (b−a)/2 and the
//! substitution x = c − d·cos θ (θ ∈ [0, π], which removes both square-root edges),
//! g(ν) dν = d² sin²θ / (2πσ²p (c − d cos θ)) dθ, and
//!
//! ```text
//! F(θ) = [ d sin θ + c θ − 2√(ab) · atan2(√b sin(θ/2), √a cos(θ/2)) ] / (2π σ² p)
//! ```
//!
//! (F(π) = (c − √(ab))/(2σ²p) = (ν+ − ν−)²/(4σ²p) = 1). It is evaluated in half-angle form
//! (see [`Cdf::at`]): two square roots and two arctangents, no sine or arccosine. The tests
//! check it against adaptive Gauss–Legendre integration of g in θ to 1e-12.

use serde::{Deserialize, Serialize};

use super::error::SpectrumError;

/// Which unit a spectrum is expressed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Unit {
    /// Singular values ν.
    #[default]
    Singular,
    /// Eigenvalues λ = ν²/q (classic MP with ratio p/q and variance σ²).
    Eigen,
}

/// The Marchenko–Pastur law of the singular values of a p × q (or q × p) iid block.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MpLaw {
    /// Entry scale σ (standard deviation of the entries).
    pub sigma: f64,
    /// Short side p = min(rows, cols).
    pub p: usize,
    /// Long side q = max(rows, cols).
    pub q: usize,
}

impl MpLaw {
    /// The law for a rows × cols block with entry scale `sigma` (positive and finite).
    pub fn new(sigma: f64, rows: usize, cols: usize) -> Result<Self, SpectrumError> {
        if !(sigma.is_finite() && sigma > 0.0) {
            return Err(SpectrumError::InvalidSigma { sigma, rows, cols });
        }
        if rows == 0 || cols == 0 {
            return Err(SpectrumError::NoEntries { rows, cols });
        }
        Ok(Self {
            sigma,
            p: rows.min(cols),
            q: rows.max(cols),
        })
    }

    fn sqrt_pq(&self) -> (f64, f64) {
        ((self.p as f64).sqrt(), (self.q as f64).sqrt())
    }

    /// Lower edge ν− = σ(√q − √p) (0 for a square block).
    pub fn lower_edge(&self) -> f64 {
        let (sp, sq) = self.sqrt_pq();
        self.sigma * (sq - sp)
    }

    /// Upper edge ν+ = σ(√q + √p).
    pub fn upper_edge(&self) -> f64 {
        let (sp, sq) = self.sqrt_pq();
        self.sigma * (sq + sp)
    }

    /// Second moment E(ν²) = q σ² (so p values have Σν² = p q σ²).
    pub fn second_moment(&self) -> f64 {
        self.q as f64 * self.sigma * self.sigma
    }

    /// Density g(ν) = √((ν+² − ν²)(ν² − ν−²)) / (π σ² p ν) inside [ν−, ν+], else 0.
    pub fn density(&self, nu: f64) -> f64 {
        let (lo, hi) = (self.lower_edge(), self.upper_edge());
        if !(nu > lo && nu < hi) {
            return 0.0;
        }
        let s2p = self.sigma * self.sigma * self.p as f64;
        // (ν+² − ν²)(ν² − ν−²)/ν² written without cancellation, also for ν− = 0.
        let upper = (hi - nu) * (hi + nu);
        let lower = (nu - lo) * (nu + lo);
        (upper * lower).sqrt() / (std::f64::consts::PI * s2p * nu)
    }

    /// The CDF with its constants worked out once, for evaluating it at many values.
    pub(crate) fn cdf_fn(&self) -> Cdf {
        let (lo, hi) = (self.lower_edge(), self.upper_edge());
        let s2p = self.sigma * self.sigma * self.p as f64;
        Cdf {
            lo,
            hi,
            c: (lo * lo + hi * hi) / 2.0,
            arc: 2.0 * lo * hi,
            norm: 1.0 / (2.0 * std::f64::consts::PI * s2p),
        }
    }

    /// Cumulative distribution F(ν) = ∫₀^ν g (closed form, accurate to ~1e-13).
    pub fn cdf(&self, nu: f64) -> f64 {
        self.cdf_fn().at(nu)
    }

    /// Expected count of p values in each bin between consecutive `edges`: p·(F(e_{i+1}) − F(e_i)).
    pub fn expected_counts(&self, edges: &[f64]) -> Vec<f64> {
        let p = self.p as f64;
        let cdf: Vec<f64> = edges.iter().map(|&e| self.cdf(e)).collect();
        cdf.windows(2).map(|w| p * (w[1] - w[0])).collect()
    }

    /// Tracy–Widom scale at the upper edge in eigenvalue units of ν²:
    /// σ² (√q + √p)(1/√p + 1/√q)^{1/3}.
    pub fn tw_scale_squared(&self) -> f64 {
        let (sp, sq) = self.sqrt_pq();
        self.sigma * self.sigma * (sq + sp) * (1.0 / sp + 1.0 / sq).cbrt()
    }

    /// Tracy–Widom scale at the upper edge in singular-value units: the ν² scale / (2ν+).
    pub fn tw_scale(&self) -> f64 {
        self.tw_scale_squared() / (2.0 * self.upper_edge())
    }

    /// The same ν² scale converted at the lower edge: ν² scale / (2ν−) (infinite when ν− = 0).
    pub fn lower_tw_scale(&self) -> f64 {
        let lo = self.lower_edge();
        if lo > 0.0 {
            self.tw_scale_squared() / (2.0 * lo)
        } else {
            f64::INFINITY
        }
    }

    /// Ratio p/q of the eigenvalue form.
    pub fn ratio(&self) -> f64 {
        self.p as f64 / self.q as f64
    }

    /// Edges (λ−, λ+) = σ²(1 ∓ √(p/q))² of the eigenvalue form λ = ν²/q.
    pub fn eigen_edges(&self) -> (f64, f64) {
        let q = self.q as f64;
        (self.lower_edge().powi(2) / q, self.upper_edge().powi(2) / q)
    }

    /// Eigenvalue-form density f(λ) = √((λ+ − λ)(λ − λ−)) / (2π σ² y λ), y = p/q.
    pub fn eigen_density(&self, lambda: f64) -> f64 {
        let (lo, hi) = self.eigen_edges();
        if !(lambda > lo && lambda < hi) {
            return 0.0;
        }
        ((hi - lambda) * (lambda - lo)).sqrt()
            / (2.0 * std::f64::consts::PI * self.sigma * self.sigma * self.ratio() * lambda)
    }

    /// Eigenvalue-form CDF: F(λ) = F_ν(√(qλ)).
    pub fn eigen_cdf(&self, lambda: f64) -> f64 {
        self.cdf((self.q as f64 * lambda.max(0.0)).sqrt())
    }

    /// Support edges in `unit`.
    pub fn edges_in(&self, unit: Unit) -> (f64, f64) {
        match unit {
            Unit::Singular => (self.lower_edge(), self.upper_edge()),
            Unit::Eigen => self.eigen_edges(),
        }
    }

    /// Density in `unit`.
    pub fn density_in(&self, unit: Unit, x: f64) -> f64 {
        match unit {
            Unit::Singular => self.density(x),
            Unit::Eigen => self.eigen_density(x),
        }
    }

    /// CDF in `unit`.
    pub fn cdf_in(&self, unit: Unit, x: f64) -> f64 {
        match unit {
            Unit::Singular => self.cdf(x),
            Unit::Eigen => self.eigen_cdf(x),
        }
    }

    /// A singular value ν expressed in `unit` (ν itself, or ν²/q).
    pub fn to_unit(&self, unit: Unit, nu: f64) -> f64 {
        match unit {
            Unit::Singular => nu,
            Unit::Eigen => nu * nu / self.q as f64,
        }
    }
}

/// [`MpLaw::cdf`] with the law's constants precomputed (edges ν∓, c = (ν−² + ν+²)/2,
/// 2ν−ν+ and 1/(2πσ²p)).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cdf {
    lo: f64,
    hi: f64,
    c: f64,
    arc: f64,
    norm: f64,
}

impl Cdf {
    /// F(ν), by the half-angle form of the module notes: with u = ν² − a and w = b − ν²
    /// (u + w = 2d), sin(θ/2) = √(u/2d) and cos(θ/2) = √(w/2d), so θ = 2·atan2(√u, √w),
    /// d sin θ = √(uw) and the arc term's angle is atan2(ν+√u, ν−√w): two square roots and
    /// two arctangents, and no cancellation near either edge.
    #[inline]
    pub(crate) fn at(&self, nu: f64) -> f64 {
        if nu <= self.lo {
            return 0.0;
        }
        if nu >= self.hi {
            return 1.0;
        }
        let su = ((nu - self.lo) * (nu + self.lo)).sqrt();
        let sw = ((self.hi - nu) * (self.hi + nu)).sqrt();
        let theta = 2.0 * su.atan2(sw);
        let arc = if self.lo > 0.0 {
            self.arc * (self.hi * su).atan2(self.lo * sw)
        } else {
            0.0
        };
        ((su * sw + self.c * theta - arc) * self.norm).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// ∫ f over [a, b] by adaptive 10-point Gauss–Legendre (for tests of smooth integrands).
    pub(crate) fn integrate(f: &dyn Fn(f64) -> f64, a: f64, b: f64, tol: f64) -> f64 {
        const X: [f64; 5] = [
            0.148_874_338_981_631_2,
            0.433_395_394_129_247_2,
            0.679_409_568_299_024_4,
            0.865_063_366_688_984_5,
            0.973_906_528_517_171_7,
        ];
        const W: [f64; 5] = [
            0.295_524_224_714_752_9,
            0.269_266_719_309_996_4,
            0.219_086_362_515_982_04,
            0.149_451_349_150_580_6,
            0.066_671_344_308_688_14,
        ];
        let gl = |a: f64, b: f64| {
            let (m, h) = ((a + b) / 2.0, (b - a) / 2.0);
            h * X
                .iter()
                .zip(W)
                .map(|(&x, w)| w * (f(m - h * x) + f(m + h * x)))
                .sum::<f64>()
        };
        fn rec(
            gl: &dyn Fn(f64, f64) -> f64,
            a: f64,
            b: f64,
            whole: f64,
            tol: f64,
            depth: u32,
        ) -> f64 {
            let m = (a + b) / 2.0;
            let (l, r) = (gl(a, m), gl(m, b));
            let err = (l + r - whole).abs();
            if depth == 0 || !err.is_finite() || err <= tol.max(1e-15 * (l + r).abs()) {
                l + r
            } else {
                rec(gl, a, m, l, tol / 2.0, depth - 1) + rec(gl, m, b, r, tol / 2.0, depth - 1)
            }
        }
        if b <= a {
            return 0.0;
        }
        rec(&gl, a, b, gl(a, b), tol, 16)
    }

    /// The substitution angle θ ∈ [0, π] of ν (ν² = c − d cos θ), by its half angle (exact
    /// near the edges, where an arccosine of c − ν² loses the small differences).
    fn theta(law: &MpLaw, nu: f64) -> f64 {
        let (lo, hi) = (law.lower_edge(), law.upper_edge());
        let u = ((nu - lo) * (nu + lo)).max(0.0);
        let w = ((hi - nu) * (hi + nu)).max(0.0);
        2.0 * u.sqrt().atan2(w.sqrt())
    }

    /// The CDF as first written (θ by acos, then sines, cosines and an atan2), which the
    /// half-angle form replaced.
    fn cdf_by_theta(law: &MpLaw, nu: f64) -> f64 {
        let (lo, hi) = (law.lower_edge(), law.upper_edge());
        if nu <= lo {
            return 0.0;
        } else if nu >= hi {
            return 1.0;
        }
        let (a, b) = (lo * lo, hi * hi);
        let (c, d) = ((a + b) / 2.0, (b - a) / 2.0);
        let theta = ((c - nu * nu) / d).clamp(-1.0, 1.0).acos();
        let s2p = law.sigma * law.sigma * law.p as f64;
        let arc = if lo > 0.0 {
            2.0 * lo * hi * (hi * (theta / 2.0).sin()).atan2(lo * (theta / 2.0).cos())
        } else {
            0.0
        };
        ((d * theta.sin() + c * theta - arc) / (2.0 * std::f64::consts::PI * s2p)).clamp(0.0, 1.0)
    }

    #[test]
    fn half_angle_cdf_matches_the_first_form() {
        for law in laws() {
            let (lo, hi) = (law.lower_edge(), law.upper_edge());
            let mut worst = 0.0f64;
            for k in 0..=10_000 {
                let nu = lo + (hi - lo) * (k as f64 / 10_000.0);
                worst = worst.max((law.cdf(nu) - cdf_by_theta(&law, nu)).abs());
            }
            for nu in [lo - 1.0, lo, hi, hi + 1.0] {
                assert_eq!(law.cdf(nu), cdf_by_theta(&law, nu), "{law:?} at {nu}");
            }
            assert!(worst < 1e-12, "{law:?}: {worst:e}");
        }
    }

    /// ∫ h(ν) g(ν) dν over [ν−, ν] computed in θ (smooth integrand).
    fn moment(law: &MpLaw, h: &dyn Fn(f64) -> f64, nu: f64) -> f64 {
        let (a, b) = (law.lower_edge().powi(2), law.upper_edge().powi(2));
        let d = (b - a) / 2.0;
        let s2p = law.sigma * law.sigma * law.p as f64;
        let f = |t: f64| {
            let x = a + 2.0 * d * (t / 2.0).sin().powi(2);
            h(x.sqrt()) * d * d * t.sin().powi(2) / (2.0 * std::f64::consts::PI * s2p * x)
        };
        integrate(&f, 0.0, theta(law, nu), 1e-14)
    }

    fn laws() -> Vec<MpLaw> {
        vec![
            MpLaw::new(1.0, 512, 512).unwrap(),
            MpLaw::new(0.02, 64, 3072).unwrap(),
            MpLaw::new(0.7, 2048, 64).unwrap(),
            MpLaw::new(3.0, 1, 1).unwrap(),
            MpLaw::new(0.01, 256, 512).unwrap(),
        ]
    }

    #[test]
    fn density_integrates_to_one_with_second_moment_q_sigma2() {
        for law in laws() {
            // Directly in ν on a fine midpoint grid (checks `density` itself) ...
            let (lo, hi) = (law.lower_edge(), law.upper_edge());
            let n = 200_000;
            let h = (hi - lo) / n as f64;
            let (mut m0, mut m2) = (0.0, 0.0);
            for i in 0..n {
                let nu = lo + (i as f64 + 0.5) * h;
                let g = law.density(nu) * h;
                m0 += g;
                m2 += g * nu * nu;
            }
            assert!((m0 - 1.0).abs() < 1e-6, "{law:?}: mass {m0}");
            assert!(
                (m2 / law.second_moment() - 1.0).abs() < 1e-6,
                "{law:?}: m2 {m2}"
            );
            // ... and exactly in θ.
            let up = law.upper_edge();
            assert!((moment(&law, &|_| 1.0, up) - 1.0).abs() < 1e-12);
            let m2 = moment(&law, &|v| v * v, up);
            assert!((m2 / law.second_moment() - 1.0).abs() < 1e-12, "{law:?}");
        }
    }

    #[test]
    fn closed_form_cdf_matches_integral() {
        for law in laws() {
            let (lo, hi) = (law.lower_edge(), law.upper_edge());
            for k in 0..=40 {
                let nu = lo + (hi - lo) * (k as f64 / 40.0);
                let num = moment(&law, &|_| 1.0, nu);
                let got = law.cdf(nu);
                assert!((got - num).abs() < 1e-12, "{law:?} ν={nu}: {got} vs {num}");
            }
            // Near the edges, where the square roots bite.
            for eps in [1e-12, 1e-9, 1e-6] {
                for nu in [lo + eps * (hi - lo), hi - eps * (hi - lo)] {
                    assert!((law.cdf(nu) - moment(&law, &|_| 1.0, nu)).abs() < 1e-12);
                }
            }
            assert_eq!(law.cdf(lo), 0.0);
            assert_eq!(law.cdf(hi), 1.0);
        }
    }

    #[test]
    fn eigen_form_is_classic_mp() {
        let law = MpLaw::new(0.5, 128, 512).unwrap();
        let (lo, hi) = law.eigen_edges();
        let y: f64 = 0.25;
        assert!((lo - 0.25 * (1.0 - y.sqrt()).powi(2)).abs() < 1e-15);
        assert!((hi - 0.25 * (1.0 + y.sqrt()).powi(2)).abs() < 1e-15);
        let mass = integrate(&|l| law.eigen_density(l), lo, hi, 1e-10);
        assert!((mass - 1.0).abs() < 1e-6, "{mass}");
        let mean = integrate(&|l| l * law.eigen_density(l), lo, hi, 1e-10);
        assert!((mean - 0.25).abs() < 1e-6, "mean λ = σ²: {mean}");
        // Change of variables: f(λ) = g(ν) q / (2ν).
        let nu = 0.8 * law.upper_edge() + 0.2 * law.lower_edge();
        let l = nu * nu / 512.0;
        assert!((law.eigen_density(l) - law.density(nu) * 512.0 / (2.0 * nu)).abs() < 1e-9);
        assert_eq!(law.eigen_cdf(l), law.cdf(nu));
    }

    #[test]
    fn expected_counts_sum_to_p() {
        let law = MpLaw::new(1.0, 64, 2048).unwrap();
        let edges: Vec<f64> = (0..=50).map(|i| i as f64 * 60.0 / 50.0).collect();
        let e = law.expected_counts(&edges);
        assert!((e.iter().sum::<f64>() - 64.0).abs() < 1e-9);
    }

    #[test]
    fn invalid_sigma_is_an_error() {
        assert!(matches!(
            MpLaw::new(0.0, 3, 3),
            Err(SpectrumError::InvalidSigma { .. })
        ));
        assert!(matches!(
            MpLaw::new(f64::NAN, 3, 3),
            Err(SpectrumError::InvalidSigma { .. })
        ));
    }
}
