//! Hot loops compiled for the best SIMD instruction set of the CPU at hand.
//!
//! The crate is built for baseline x86-64 (SSE2), so plain loops would never use AVX2 or
//! AVX-512. A [`Kernel`] body runs inside pulp's runtime dispatch, which compiles it once per
//! instruction set; the body and everything it calls must be `#[inline(always)]` so that it is
//! compiled inside the dispatched function (a closure is not: measured no faster than SSE2).

/// A computation run by [`run`]; `run` must be `#[inline(always)]`.
pub(crate) trait Kernel {
    /// What the computation returns.
    type Output;
    /// The computation.
    fn run(self) -> Self::Output;
}

/// Runs `kernel` compiled for the best instruction set this CPU supports.
pub(crate) fn run<K: Kernel>(kernel: K) -> K::Output {
    struct Dispatch<K>(K);
    impl<K: Kernel> pulp::WithSimd for Dispatch<K> {
        type Output = K::Output;
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _: S) -> K::Output {
            self.0.run()
        }
    }
    pulp::Arch::new().dispatch(Dispatch(kernel))
}

/// Clears the upper halves of the AVX registers (`vzeroupper`).
///
/// faer's hand-written AVX-512 matrix kernels return with the upper register halves dirty, and
/// every plain (SSE-encoded) loop that runs afterwards then pays a transition penalty on this
/// machine: measured, the KS CDF pass over 2048 entries took 46 µs instead of 13 µs right after
/// a faer product. Call this after faer work and before scalar code.
pub(crate) fn clear_upper() {
    #[cfg(target_arch = "x86_64")]
    if let Some(avx) = pulp::core_arch::x86::Avx::try_new() {
        avx._mm256_zeroupper();
    }
}
