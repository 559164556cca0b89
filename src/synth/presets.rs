//! Named specs: real model shapes for trying and benchmarking, and the bundled demo.

use super::recipe::{Bulk, CollapseSpec, ColumnScaleSpec, HeavyTailSpec, Span, SpikeSpec, Target};
use super::spec::{ExtraTensor, SynthDtype, SynthFamily, SynthProj, SynthSpec};

/// Names accepted by [`preset`].
pub const PRESETS: [&str; 3] = ["llama-3.2-1b", "llama-3.1-8b", "demo"];

/// The spec of a named preset (`llama-3.2-1b`, `llama-3.1-8b`, `demo`), if the name is known.
pub fn preset(name: &str) -> Option<SynthSpec> {
    match name {
        "llama-3.2-1b" => Some(llama(16, 2048, 32, 8, 64, 8192, 2)),
        "llama-3.1-8b" => Some(llama(32, 4096, 32, 8, 128, 14336, 4)),
        "demo" => Some(demo()),
        _ => None,
    }
}

/// A plain Kaiming-uniform Llama of real shape (untied `lm_head`, vocab 128256, bf16).
fn llama(
    layers: usize,
    hidden: usize,
    heads: usize,
    kv: usize,
    d: usize,
    i: usize,
    shards: usize,
) -> SynthSpec {
    let mut s = SynthSpec::new(SynthFamily::Llama, layers, hidden, heads);
    s.kv_heads = kv;
    s.head_dim = Some(d);
    s.intermediate = Some(i);
    s.vocab = 128_256;
    s.positions = 131_072;
    s.dtype = SynthDtype::Bf16;
    s.shards = shards;
    s.seed = 1;
    s
}

/// Seed of the bundled demo (changing it changes the committed asset).
pub const DEMO_SEED: u64 = 2024;

/// The bundled demo: a small bf16 Llama (8 layers, hidden 384, 6 heads of 64, 2 kv heads,
/// intermediate 64, vocab 256; 9.44 MB) telling the seed's story, plus the three
/// Kaiming-uniform reference matrices 128×3072, 256×512, 512×512 (gain 1, fan_in = columns).
///
/// Early layers sit far from MP: q and k get a heavy-tailed bulk, strong whole-matrix spikes,
/// spikes in every head, outlier input features (log-normal column scales, τ 0.9 in layer 0
/// down to 0.15 in layer 5, so right singular vectors localise and `vector_p` drops) and
/// collapsed heads (rank 8 + 5 % noise: a pile-up of small singular values). The strength
/// decays with depth; layers 6–7 are plain Kaiming-uniform. v and o get only mild spikes and
/// mild column scales in layers 0–1 (v also 2), the MLP one spike per matrix in layers 0–1.
fn demo() -> SynthSpec {
    use SynthProj::*;
    let mut s = SynthSpec::new(SynthFamily::Llama, 8, 384, 6);
    s.kv_heads = 2;
    s.head_dim = Some(64);
    s.intermediate = Some(64);
    s.vocab = 256;
    s.positions = 2048;
    s.dtype = SynthDtype::Bf16;
    s.shards = 1;
    s.seed = DEMO_SEED;

    let spikes = |l: usize, p, count, a, b| SpikeSpec {
        target: Target::layer(l, p),
        count,
        multiple: a,
        multiple_to: (a != b).then_some(b),
    };
    let heads_spikes = |l: usize, p, heads: Span, count, a, b| SpikeSpec {
        target: Target {
            layers: Some(Span::one(l)),
            proj: p,
            heads: Some(heads),
        },
        count,
        multiple: a,
        multiple_to: (a != b).then_some(b),
    };
    // q and k: heavy tails thinning out with depth.
    for (l, dof) in [(0, 3), (1, 3), (2, 4), (3, 6)] {
        for p in [Q, K] {
            s.heavy_tail.push(HeavyTailSpec {
                target: Target::layer(l, p),
                bulk: Bulk::StudentT { dof },
            });
        }
    }
    // q and k: whole-matrix spikes, fewer and weaker with depth.
    for (l, count, top) in [
        (0, 6, 8.0),
        (1, 5, 6.5),
        (2, 4, 5.0),
        (3, 3, 4.0),
        (4, 2, 3.0),
        (5, 1, 2.0),
    ] {
        for p in [Q, K] {
            s.spikes.push(spikes(l, p, count, top, 1.5f64.min(top)));
        }
    }
    // Spikes inside heads.
    s.spikes
        .push(heads_spikes(0, Q, Span { first: 0, last: 5 }, 2, 5.0, 3.0));
    s.spikes
        .push(heads_spikes(0, K, Span { first: 0, last: 1 }, 2, 5.0, 3.0));
    s.spikes
        .push(heads_spikes(1, Q, Span { first: 0, last: 5 }, 1, 4.0, 4.0));
    s.spikes
        .push(heads_spikes(1, K, Span { first: 0, last: 1 }, 1, 4.0, 4.0));
    s.spikes
        .push(heads_spikes(2, Q, Span { first: 0, last: 2 }, 1, 3.0, 3.0));
    // Collapsed heads: a pile-up of small singular values.
    for (l, p, h) in [(0, Q, 1), (0, Q, 4), (0, K, 1), (1, Q, 2), (2, Q, 5)] {
        s.collapse.push(CollapseSpec {
            target: Target::head(l, p, h),
            rank: Some(8),
            eps: 0.05,
        });
    }
    // Outlier input features: q and k strongest, v and o mild, fading with depth.
    let taus: [(&[SynthProj], &[f64]); 3] = [
        (&[Q, K], &[0.9, 0.7, 0.5, 0.35, 0.25, 0.15]),
        (&[V], &[0.35, 0.25, 0.15]),
        (&[O], &[0.2, 0.12]),
    ];
    for (projs, per_layer) in taus {
        for (l, &tau) in per_layer.iter().enumerate() {
            for &p in projs {
                s.column_scale.push(ColumnScaleSpec {
                    target: Target::layer(l, p),
                    tau,
                });
            }
        }
    }
    // v and o: mild, early only.
    for (l, top) in [(0, 2.5), (1, 1.8)] {
        for p in [V, O] {
            s.spikes.push(spikes(l, p, 1, top, top));
        }
    }
    // MLP: one spike per matrix in the first two layers.
    for l in 0..2 {
        for p in [Gate, Up, Down] {
            s.spikes.push(spikes(l, p, 1, 2.5, 2.5));
        }
    }
    for (m, n) in [(128, 3072), (256, 512), (512, 512)] {
        s.extras.push(ExtraTensor::kaiming_reference(m, n, 1.0));
    }
    s
}
