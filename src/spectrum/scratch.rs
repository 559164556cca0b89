//! Buffers a worker thread keeps from one block to the next.
//!
//! A block's Gram matrix and its f32 copy for the reduction are a few MiB each. Freed, the
//! allocator soon returns their pages to the system, and the next block's fresh allocation
//! pays a page fault and a zeroing per 4 KiB page (page clearing and memset were 7% of a
//! SmolLM2-shaped scan's profile; reused, its CPU time fell 3%).
//! Kept per thread, they are reused hot. Buffers above [`KEEP_MAX`] entries are never kept,
//! so an embedding-sized block does not stay resident.

use std::cell::RefCell;

use faer::Mat;

/// Largest buffer kept, in entries (32 MiB as f64: a 2048² Gram matrix).
const KEEP_MAX: usize = 1 << 22;

thread_local! {
    static GRAM: RefCell<Mat<f64>> = const { RefCell::new(Mat::new()) };
    static REDUCE: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// A p × p f64 matrix, reusing this thread's kept one: its lower triangle is for the caller
/// to overwrite, its other entries are stale.
pub(super) fn gram(p: usize) -> Mat<f64> {
    let mut g = if p * p <= KEEP_MAX {
        GRAM.with(|cell| {
            cell.try_borrow_mut()
                .map(|mut g| std::mem::replace(&mut *g, Mat::new()))
        })
        .unwrap_or_else(|_| Mat::new())
    } else {
        Mat::new()
    };
    g.resize_with(p, p, |_, _| 0.0);
    g
}

/// Gives a matrix from [`gram`] back to this thread for the next block.
pub(super) fn keep_gram(g: Mat<f64>) {
    if g.nrows() * g.ncols() <= KEEP_MAX {
        GRAM.with(|cell| {
            if let Ok(mut kept) = cell.try_borrow_mut() {
                *kept = g;
            }
        });
    }
}

/// An f32 buffer of `len` entries, reusing this thread's kept one (stale values).
pub(super) fn reduce_buffer(len: usize) -> Vec<f32> {
    let mut v = if len <= KEEP_MAX {
        REDUCE
            .with(|cell| cell.try_borrow_mut().map(|mut v| std::mem::take(&mut *v)))
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    v.resize(len, 0.0);
    v
}

/// Gives a buffer from [`reduce_buffer`] back to this thread for the next block.
pub(super) fn keep_reduce_buffer(v: Vec<f32>) {
    if v.len() <= KEEP_MAX {
        REDUCE.with(|cell| {
            if let Ok(mut kept) = cell.try_borrow_mut() {
                *kept = v;
            }
        });
    }
}
