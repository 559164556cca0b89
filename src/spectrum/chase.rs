//! Band → tridiagonal by Householder bulge chasing (the sweeps of LAPACK's `sytrd_sb2st`), on
//! one thread or pipelined over two.
//!
//! Sweep j annihilates column j below its subdiagonal, then chases the bulge down the band one
//! b × b block at a time, annihilating only its first column; the rest of the bulge is removed
//! by the next sweep, so the band never exceeds 2b diagonals. The work is O(n²b) on small
//! blocks that stay in L1.
//!
//! **Two threads.** A step of sweep j at column s touches band columns s..s+b only (and its
//! first step column j too). Sweep j + 1's step at s′ overlaps sweep j's steps up to the one
//! at s′ + b − 1, so it may run as soon as sweep j has moved on to s′ + 2b − 1, and from then
//! on the two touch disjoint columns. One thread runs the even sweeps and the other the odd
//! ones, each publishing where its sweep has got to and waiting (spinning) on the other's. The
//! band is stored in blocks of b columns, each behind its own lock; the schedule keeps the two
//! threads' blocks apart, so the locks are never contended and only make the sharing safe. The
//! result is bit-for-bit that of one thread: every entry sees the same operations in the same
//! order. The odd sweeps are a rayon job: when no pool thread is free to start it (every one
//! busy with other blocks), the even sweeps' thread takes it over and runs the rest alone, so
//! a block given two threads inside a busy pool neither deadlocks nor oversubscribes.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use faer::{MatRef, Par};

use super::symeig::{Real, axpy, dot, make_reflector};

/// Smallest n chased on two threads (measured, f32: 2.8 ms against 3.6 ms on one thread for
/// 512 with b = 16, 54 ms against 77 ms for 2048 with b = 32; at 384, 2.8 ms against 2.1 ms:
/// below, starting the thread and moving the band between cores cost more than the second core
/// gives).
const TWO_THREADS_MIN: usize = 512;

/// Reduces the lower band (half-bandwidth b) of `a` to tridiagonal; returns (diagonal,
/// subdiagonal). With `par` of two or more threads and n ≥ [`TWO_THREADS_MIN`], the sweeps run
/// on two threads.
pub(super) fn band_to_tridiagonal<T: Real>(
    a: MatRef<'_, T>,
    b: usize,
    par: Par,
) -> (Vec<T>, Vec<T>) {
    let n = a.nrows();
    if par.degree() > 1 && n >= TWO_THREADS_MIN && b >= 1 {
        return two_threads(a, b);
    }
    struct One<'a, T>(MatRef<'a, T>, usize);
    impl<T: Real> crate::simd::Kernel for One<'_, T> {
        type Output = (Vec<T>, Vec<T>);
        #[inline(always)]
        fn run(self) -> Self::Output {
            one_thread(self.0, self.1)
        }
    }
    crate::simd::run(One(a, b))
}

/// Column access to the lower band: entry (c + d0 + i, c) for i < len.
trait Columns<T> {
    /// Column c from row c + d0, `len` entries.
    fn col(&mut self, c: usize, d0: usize, len: usize) -> &mut [T];
}

/// Band storage of a symmetric matrix's lower triangle: entry (i, c), 0 ≤ i − c < `ld`, at
/// `ab[c·ld + i − c]`.
struct Band<T> {
    ab: Vec<T>,
    ld: usize,
}

impl<T> Columns<T> for Band<T> {
    #[inline(always)]
    fn col(&mut self, c: usize, d0: usize, len: usize) -> &mut [T] {
        let at = c * self.ld + d0;
        &mut self.ab[at..at + len]
    }
}

/// Leading dimension of the band storage for half-bandwidth b: the band plus the bulge.
fn leading_dim(b: usize) -> usize {
    2 * b + 1
}

/// Copies the lower band of `a` into column `c`'s storage `dst` (`ld` entries).
#[inline(always)]
fn fill_column<T: Real>(a: MatRef<'_, T>, b: usize, c: usize, dst: &mut [T]) {
    let len = (b + 1).min(a.nrows() - c);
    for (d, s) in dst.iter_mut().zip(a.col(c).subrows(c, len).iter()) {
        *d = *s;
    }
}

/// One sweep in flight: the reflector H = I − τ v vᵀ it chases down rows s..s+len.
struct Sweep<T> {
    s: usize,
    len: usize,
    tau: T,
    v: Vec<T>,
    v2: Vec<T>,
    work: Vec<T>,
}

impl<T: Real> Sweep<T> {
    fn new(b: usize) -> Self {
        Sweep {
            s: 0,
            len: 0,
            tau: T::zero(),
            v: vec![T::zero(); b],
            v2: vec![T::zero(); b],
            work: vec![T::zero(); 2 * b],
        }
    }

    /// Starts sweep j: the reflector that annihilates column j below its subdiagonal (touches
    /// column j).
    #[inline(always)]
    fn start(&mut self, cols: &mut impl Columns<T>, j: usize, n: usize, b: usize) {
        self.s = j + 1;
        self.len = b.min(n - self.s);
        let x = cols.col(j, 1, self.len);
        self.tau = make_reflector(x);
        self.v[0] = T::one();
        self.v[1..self.len].copy_from_slice(&x[1..]);
        x[1..].fill(T::zero());
    }

    /// One step at s (touches columns s..s+len): D ← H D H on the diagonal block, then the
    /// block O below it: O ← O H, and a reflector H₂ that annihilates O's first column, applied
    /// to the rest. Returns false when the sweep has left the matrix.
    #[inline(always)]
    fn step(&mut self, cols: &mut impl Columns<T>, n: usize, b: usize) -> bool {
        let (s, len, tau) = (self.s, self.len, self.tau);
        let t = s + len;
        if tau != T::zero() {
            apply_two_sided(cols, s, len, &self.v[..len], tau, &mut self.work);
        }
        if t >= n {
            return false;
        }
        let len2 = b.min(n - t);
        // Column c' of O = A[t..t+len2, s..s+len] is col(s + c', len − c', len2).
        if tau != T::zero() {
            // O ← O H: w = O v, O −= τ w vᵀ.
            let w = &mut self.work[..len2];
            w.fill(T::zero());
            for (c, &vc) in self.v[..len].iter().enumerate() {
                axpy(vc, cols.col(s + c, len - c, len2), w);
            }
            for (c, &vc) in self.v[..len].iter().enumerate() {
                axpy(
                    -tau * vc,
                    &self.work[..len2],
                    cols.col(s + c, len - c, len2),
                );
            }
        }
        let tau2 = {
            let x = cols.col(s, len, len2);
            let tau2 = make_reflector(x);
            self.v2[0] = T::one();
            self.v2[1..len2].copy_from_slice(&x[1..]);
            x[1..].fill(T::zero());
            tau2
        };
        if tau2 != T::zero() {
            // O[:, 1..] ← H₂ O[:, 1..].
            let v2 = &self.v2[..len2];
            for c in 1..len {
                let col = cols.col(s + c, len - c, len2);
                axpy(-tau2 * dot(v2, col), v2, col);
            }
        }
        std::mem::swap(&mut self.v, &mut self.v2);
        self.tau = tau2;
        self.s = t;
        self.len = len2;
        true
    }
}

/// D ← H D H for the diagonal block D = A[s..s+len]² (lower triangle), H = I − τ v vᵀ.
#[inline(always)]
fn apply_two_sided<T: Real>(
    cols: &mut impl Columns<T>,
    s: usize,
    len: usize,
    v: &[T],
    tau: T,
    work: &mut [T],
) {
    let y = &mut work[..len];
    y.fill(T::zero());
    // y = D v from the lower triangle.
    for c in 0..len {
        let col = cols.col(s + c, 0, len - c);
        let below = &col[1..];
        y[c] += col[0] * v[c] + dot(below, &v[c + 1..]);
        axpy(v[c], below, &mut y[c + 1..]);
    }
    // w = τ y − ½ τ² (yᵀv) v.
    let alpha = T::from_f64(-0.5) * tau * tau * dot(y, v);
    for (yi, vi) in y.iter_mut().zip(v) {
        *yi = tau * *yi + alpha * *vi;
    }
    // D −= v wᵀ + w vᵀ.
    for c in 0..len {
        let col = cols.col(s + c, 0, len - c);
        let (wc, vc) = (y[c], v[c]);
        for ((d, vi), wi) in col.iter_mut().zip(&v[c..]).zip(&y[c..]) {
            *d -= *vi * wc + *wi * vc;
        }
    }
}

/// The chase on one thread (inlined into [`band_to_tridiagonal`]'s SIMD dispatch).
#[inline(always)]
fn one_thread<T: Real>(a: MatRef<'_, T>, b: usize) -> (Vec<T>, Vec<T>) {
    let n = a.nrows();
    let ld = leading_dim(b);
    let mut band = Band {
        ab: vec![T::zero(); ld * n],
        ld,
    };
    for (c, dst) in band.ab.chunks_exact_mut(ld).enumerate() {
        fill_column(a, b, c, dst);
    }
    let mut sweep = Sweep::new(b);
    for j in 0..n.saturating_sub(2) {
        sweep.start(&mut band, j, n, b);
        while sweep.step(&mut band, n, b) {}
    }
    tridiagonal(n, |c, i| band.ab[c * ld + i])
}

/// (diagonal, subdiagonal) from `entry(c, i)` = band entry (c + i, c).
fn tridiagonal<T: Real>(n: usize, entry: impl Fn(usize, usize) -> T) -> (Vec<T>, Vec<T>) {
    let d = (0..n).map(|c| entry(c, 0)).collect();
    let e = (0..n)
        .map(|c| if c + 1 < n { entry(c, 1) } else { T::zero() })
        .collect();
    (d, e)
}

/// The band in blocks of `w` columns, each behind its own lock.
struct Blocks<T> {
    blocks: Vec<Mutex<Vec<T>>>,
    ld: usize,
    w: usize,
}

/// The (at most two) locked blocks holding columns lo..hi.
struct Window<'a, T> {
    k0: usize,
    guards: [Option<MutexGuard<'a, Vec<T>>>; 2],
    ld: usize,
    w: usize,
}

impl<T> Blocks<T> {
    /// Locks the blocks of columns lo..hi (hi − lo ≤ w + 1, so at most two).
    fn window(&self, lo: usize, hi: usize) -> Window<'_, T> {
        let k0 = lo / self.w;
        let k1 = (hi - 1) / self.w;
        let lock = |k: usize| {
            self.blocks
                .get(k)
                .map(|m| m.lock().unwrap_or_else(PoisonError::into_inner))
        };
        Window {
            k0,
            guards: [lock(k0), if k1 > k0 { lock(k1) } else { None }],
            ld: self.ld,
            w: self.w,
        }
    }
}

impl<T> Columns<T> for Window<'_, T> {
    #[inline(always)]
    fn col(&mut self, c: usize, d0: usize, len: usize) -> &mut [T] {
        let at = (c % self.w) * self.ld + d0;
        let block = self.guards[c / self.w - self.k0]
            .as_deref_mut()
            .expect("a step touches only the columns of its window");
        &mut block[at..at + len]
    }
}

/// A sweep's published position: the column of its next step, or [`DONE`].
#[repr(align(64))]
struct Progress(AtomicUsize);

/// Position of a sweep that has left the matrix.
const DONE: usize = usize::MAX;

/// Sets the flag if the thread unwinds, so the other one stops waiting for it.
struct AbortOnUnwind<'a>(&'a AtomicBool);

impl Drop for AbortOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Release);
        }
    }
}

/// The chase with the even sweeps on this thread and the odd ones on another rayon thread
/// (or on this one too, when none is free).
fn two_threads<T: Real>(a: MatRef<'_, T>, b: usize) -> (Vec<T>, Vec<T>) {
    let n = a.nrows();
    let (ld, w) = (leading_dim(b), b);
    let blocks = Blocks {
        blocks: (0..n.div_ceil(w))
            .map(|k| {
                let mut buf = vec![T::zero(); ld * w];
                for (i, dst) in buf.chunks_exact_mut(ld).enumerate() {
                    if k * w + i < n {
                        fill_column(a, b, k * w + i, dst);
                    }
                }
                Mutex::new(buf)
            })
            .collect(),
        ld,
        w,
    };
    let sweeps = n.saturating_sub(2);
    let progress: Vec<Progress> = (0..sweeps).map(|_| Progress(AtomicUsize::new(0))).collect();
    let abort = AtomicBool::new(false);
    let odd = AtomicU8::new(UNCLAIMED);
    struct Half<'a, T> {
        blocks: &'a Blocks<T>,
        progress: &'a [Progress],
        abort: &'a AtomicBool,
        odd: &'a AtomicU8,
        parity: usize,
        n: usize,
        b: usize,
    }
    impl<T: Real> crate::simd::Kernel for Half<'_, T> {
        type Output = ();
        #[inline(always)]
        fn run(self) {
            half(
                self.blocks,
                self.progress,
                self.abort,
                self.odd,
                self.parity,
                self.n,
                self.b,
            )
        }
    }
    let run = |parity| {
        crate::simd::run(Half {
            blocks: &blocks,
            progress: &progress,
            abort: &abort,
            odd: &odd,
            parity,
            n,
            b,
        })
    };
    rayon::join(|| run(0), || run(1));
    let blocks: Vec<Vec<T>> = blocks
        .blocks
        .into_iter()
        .map(|m| m.into_inner().unwrap_or_else(PoisonError::into_inner))
        .collect();
    tridiagonal(n, |c, i| blocks[c / w][(c % w) * ld + i])
}

/// What waiting for the previous sweep ended in.
enum Wait {
    /// It is far enough ahead.
    Go,
    /// The other thread panicked.
    Abort,
    /// The odd sweeps' thread never started (every pool thread is busy): run them here.
    TakeOver,
}

/// States of the odd sweeps' job.
const UNCLAIMED: u8 = 0;
const RUNNING: u8 = 1;
const TAKEN: u8 = 2;

/// How long the even sweeps wait for the odd sweeps' job to start before doing them too
/// (a sleeping pool thread wakes within tens of µs).
const TAKE_OVER_AFTER: std::time::Duration = std::time::Duration::from_micros(200);

/// Runs the sweeps j ≡ parity (mod 2), each step once sweep j − 1 is far enough ahead. The
/// odd job first claims `odd`; when the even job finds it still unclaimed after
/// [`TAKE_OVER_AFTER`], it takes it and runs every remaining sweep itself, in order.
#[inline(always)]
fn half<T: Real>(
    blocks: &Blocks<T>,
    progress: &[Progress],
    abort: &AtomicBool,
    odd: &AtomicU8,
    parity: usize,
    n: usize,
    b: usize,
) {
    let _guard = AbortOnUnwind(abort);
    if parity == 1
        && odd
            .compare_exchange(UNCLAIMED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
    {
        return;
    }
    // Sweep j's step at s may run once sweep j − 1 has moved on to s + 2b − 1.
    let wait = |j: usize, s: usize| {
        let need = s + 2 * b - 1;
        let start = std::time::Instant::now();
        let mut spins = 0u32;
        while progress[j - 1].0.load(Ordering::Acquire) < need {
            if abort.load(Ordering::Acquire) {
                return Wait::Abort;
            }
            spins += 1;
            if spins.is_multiple_of(1024)
                && parity == 0
                && odd.load(Ordering::Acquire) == UNCLAIMED
                && start.elapsed() > TAKE_OVER_AFTER
                && odd
                    .compare_exchange(UNCLAIMED, TAKEN, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                return Wait::TakeOver;
            }
            if spins < 1 << 12 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        Wait::Go
    };
    let mut alone = false;
    let mut sweep = Sweep::new(b);
    let mut j = parity;
    while j < progress.len() {
        let s = j + 1;
        if !alone && j > 0 {
            match wait(j, s) {
                Wait::Go => {}
                Wait::Abort => return,
                Wait::TakeOver => {
                    // No odd sweep has started, so j − 1 is the first one not done.
                    alone = true;
                    j -= 1;
                    continue;
                }
            }
        }
        let mut more = {
            let mut window = blocks.window(j, s + b.min(n - s));
            sweep.start(&mut window, j, n, b);
            sweep.step(&mut window, n, b)
        };
        loop {
            progress[j]
                .0
                .store(if more { sweep.s } else { DONE }, Ordering::Release);
            if !more {
                break;
            }
            // Mid-sweep the previous sweep has started, so its thread is running.
            if !alone && j > 0 && !matches!(wait(j, sweep.s), Wait::Go) {
                return;
            }
            let mut window = blocks.window(sweep.s, sweep.s + sweep.len);
            more = sweep.step(&mut window, n, b);
        }
        j += if alone { 1 } else { 2 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::Mat;

    /// A random symmetric band of half-bandwidth b in a dense lower triangle.
    fn band_matrix(n: usize, b: usize, seed: u64) -> Mat<f64> {
        let mut rng = crate::rng::Rng::new(seed);
        Mat::from_fn(n, n, |i, j| {
            if i >= j && i - j <= b {
                rng.normal()
            } else {
                0.0
            }
        })
    }

    #[test]
    fn two_threads_give_the_one_thread_result_bit_for_bit() {
        let m = TWO_THREADS_MIN;
        for (n, b) in [(m, 16), (m + 45, 7), (m + 1, 32), (m + 3, 1)] {
            let a = band_matrix(n, b, n as u64 + b as u64);
            let one = band_to_tridiagonal(a.as_ref(), b, Par::Seq);
            let two = band_to_tridiagonal(a.as_ref(), b, Par::rayon(2));
            assert_eq!(one, two, "n={n} b={b}");
        }
    }

    #[test]
    fn with_no_free_thread_the_even_sweeps_take_the_odd_ones_over() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let (n, b) = (TWO_THREADS_MIN + 20, 16);
        let a = band_matrix(n, b, 3);
        let one = band_to_tridiagonal(a.as_ref(), b, Par::Seq);
        let two = pool.install(|| band_to_tridiagonal(a.as_ref(), b, Par::rayon(2)));
        assert_eq!(one, two);
    }

    #[test]
    fn the_tridiagonal_keeps_the_eigenvalues() {
        let (n, b) = (TWO_THREADS_MIN + 10, 8);
        let a = band_matrix(n, b, 5);
        let want = super::super::testing::reference_eigenvalues(a.as_ref());
        for par in [Par::Seq, Par::rayon(2)] {
            let (mut d, mut e) = band_to_tridiagonal(a.as_ref(), b, par);
            assert!(super::super::tridiag::eigenvalues(&mut d, &mut e));
            let top = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            for (g, w) in d.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-12 * top, "{par:?}: {g} vs {w}");
            }
        }
    }
}
