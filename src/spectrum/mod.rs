//! Singular values, the Marchenko–Pastur law, σ estimators, deviation scores and histograms.
//!
//! Knows faer matrices and math; knows nothing of files or UI.
