//! Where the user is: which row (layer or loose matrix), projection and head (or expert).

use crate::anatomy::{Anatomy, MatrixId, Proj};

/// What a projection's second axis walks: its heads (after the whole matrix), or its routed
/// experts (each a whole matrix; there is no matrix of all experts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    /// Attention heads: position 0 is the whole matrix, h + 1 is head h.
    Heads(usize),
    /// Routed experts: position e is expert e.
    Experts(usize),
}

impl Axis {
    /// Number of heads or experts.
    pub fn len(self) -> usize {
        match self {
            Axis::Heads(n) | Axis::Experts(n) => n,
        }
    }

    /// True when there are no members.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// Number of positions: the whole matrix plus the heads, or the experts.
    fn positions(self) -> usize {
        match self {
            Axis::Heads(n) => n + 1,
            Axis::Experts(n) => n,
        }
    }

    /// Member `i` (head or expert) of the matrix `id`.
    pub fn member(self, id: MatrixId, i: usize) -> MatrixId {
        match self {
            Axis::Heads(_) => MatrixId {
                expert: None,
                ..id.with_head(i)
            },
            Axis::Experts(_) => id.with_expert(i),
        }
    }

    /// The member index of `id` along this axis, if it is a member.
    pub fn index(self, id: &MatrixId) -> Option<usize> {
        match self {
            Axis::Heads(_) => id.head,
            Axis::Experts(_) => id.expert,
        }
    }

    /// "heads" or "experts".
    pub fn noun(self) -> &'static str {
        match self {
            Axis::Heads(_) => "heads",
            Axis::Experts(_) => "experts",
        }
    }

    /// "h" or "e", the prefix of a member's label.
    pub fn prefix(self) -> &'static str {
        match self {
            Axis::Heads(_) => "h",
            Axis::Experts(_) => "e",
        }
    }
}

/// One entry of the left-hand list: a layer, or a matrix outside the layers.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    /// A transformer layer with its projections in display order.
    Layer {
        /// Layer index.
        layer: usize,
        /// Projections present in this layer, with their heads or experts (`None` = neither).
        projs: Vec<(Proj, Option<Axis>)>,
    },
    /// A matrix outside the layers (embedding, reference, other).
    Loose {
        /// Its id.
        id: MatrixId,
        /// Its display name.
        name: String,
    },
}

/// The navigable shape of a model plus the current position in it.
#[derive(Debug, Clone)]
pub struct Nav {
    /// Every row of the left-hand list.
    pub rows: Vec<Row>,
    /// Selected row.
    pub row: usize,
    /// Selected projection position within a layer row.
    pub proj: usize,
    /// Position on the focused projection's axis: 0 = whole matrix, h + 1 = head h; or, for
    /// routed experts, e = expert e.
    pub head: usize,
}

impl Nav {
    /// Builds the list from an anatomy: layers first, then matrices outside the layers.
    pub fn new(an: &Anatomy) -> Self {
        let mut rows = Vec::new();
        for layer in 0..an.num_layers {
            let mut projs: Vec<(Proj, Option<Axis>)> = Vec::new();
            for b in an.matrices.iter().filter(|b| b.id.layer == Some(layer)) {
                if projs.iter().any(|(p, _)| *p == b.id.proj) {
                    continue;
                }
                let axis = if b.id.expert.is_some() {
                    Some(Axis::Experts(an.experts_of(layer, b.id.proj)))
                } else if b.id.proj.is_attention() {
                    an.heads_of(b.id.proj).map(Axis::Heads)
                } else {
                    None
                };
                projs.push((b.id.proj, axis));
            }
            projs.sort_by_key(|(p, _)| *p);
            if !projs.is_empty() {
                rows.push(Row::Layer { layer, projs });
            }
        }
        for b in an.matrices.iter().filter(|b| b.id.layer.is_none()) {
            rows.push(Row::Loose {
                id: b.id,
                name: b.tensor.clone(),
            });
        }
        Self {
            rows,
            row: 0,
            proj: 0,
            head: 0,
        }
    }

    /// The block in focus, if the model has any matrix at all.
    pub fn focus(&self) -> Option<MatrixId> {
        match self.rows.get(self.row)? {
            Row::Layer { layer, projs } => {
                let (proj, axis) = *projs.get(self.proj.min(projs.len().saturating_sub(1)))?;
                let whole = MatrixId::whole(Some(*layer), proj);
                Some(match axis {
                    Some(Axis::Heads(h)) if self.head > 0 && self.head <= h => {
                        whole.with_head(self.head - 1)
                    }
                    Some(Axis::Experts(n)) => whole.with_expert(self.head.min(n.saturating_sub(1))),
                    _ => whole,
                })
            }
            Row::Loose { id, .. } => Some(*id),
        }
    }

    /// Projections of the selected row (empty for a loose matrix).
    pub fn projs(&self) -> &[(Proj, Option<Axis>)] {
        match self.rows.get(self.row) {
            Some(Row::Layer { projs, .. }) => projs,
            _ => &[],
        }
    }

    /// The focused projection's axis (heads or experts), when it has one.
    pub fn axis(&self) -> Option<Axis> {
        self.projs().get(self.proj).and_then(|(_, a)| *a)
    }

    /// Head (or expert) count of the focused projection (0 when it has none).
    pub fn head_count(&self) -> usize {
        self.axis().map_or(0, Axis::len)
    }

    /// The widest axis `proj` has in any layer (experts of an MoE layer win over a dense
    /// layer's none).
    pub fn axis_of(&self, proj: Proj) -> Option<Axis> {
        self.rows
            .iter()
            .filter_map(|r| match r {
                Row::Layer { projs, .. } => projs.iter().find(|(p, _)| *p == proj)?.1,
                Row::Loose { .. } => None,
            })
            .max_by_key(|a| a.len())
    }

    /// Moves `delta` rows, keeping the projection by name when the new row has it.
    pub fn move_row(&mut self, delta: isize) {
        if self.rows.is_empty() {
            return;
        }
        let current = self.projs().get(self.proj).map(|(p, _)| *p);
        let last = self.rows.len() as isize - 1;
        self.row = (self.row as isize + delta).clamp(0, last) as usize;
        if let Some(i) = current.and_then(|p| self.projs().iter().position(|(q, _)| *q == p)) {
            self.proj = i;
        }
        self.clamp();
    }

    /// Jumps to a row.
    pub fn set_row(&mut self, row: usize) {
        self.row = row.min(self.rows.len().saturating_sub(1));
        self.clamp();
    }

    /// Cycles the projection by `delta` (wrapping), keeping the head when it still exists.
    pub fn move_proj(&mut self, delta: isize) {
        let n = self.projs().len() as isize;
        if n == 0 {
            return;
        }
        self.proj = (self.proj as isize + delta).rem_euclid(n) as usize;
        self.clamp();
    }

    /// Moves the head position by `delta` (wrapping over whole + heads, or over experts).
    pub fn move_head(&mut self, delta: isize) {
        let n = self.axis().map_or(1, Axis::positions).max(1) as isize;
        self.head = (self.head as isize + delta).rem_euclid(n) as usize;
    }

    /// Focuses exactly `id`, when it is in the list.
    pub fn select(&mut self, id: MatrixId) -> bool {
        for (r, row) in self.rows.iter().enumerate() {
            match row {
                Row::Layer { layer, projs } if Some(*layer) == id.layer => {
                    if let Some(p) = projs.iter().position(|(q, _)| *q == id.proj) {
                        self.row = r;
                        self.proj = p;
                        self.head = match id.expert {
                            Some(e) => e,
                            None => id.head.map(|h| h + 1).unwrap_or(0),
                        };
                        self.clamp();
                        return true;
                    }
                }
                Row::Loose { id: other, .. } if *other == MatrixId { head: None, ..id } => {
                    self.row = r;
                    self.proj = 0;
                    self.head = 0;
                    return true;
                }
                _ => {}
            }
        }
        false
    }

    fn clamp(&mut self) {
        let n = self.projs().len();
        if self.proj >= n {
            self.proj = n.saturating_sub(1);
        }
        let last = self.axis().map_or(0, |a| a.positions().saturating_sub(1));
        if self.head > last {
            self.head = last;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anatomy::{Overrides, from_parts};
    use crate::checkpoint::{Dtype, ModelConfig, TensorInfo};

    fn f32_matrix(name: String, shape: [usize; 2]) -> TensorInfo {
        TensorInfo {
            name,
            dtype: Dtype::F32,
            shape: shape.to_vec(),
            file: 0,
            bytes: 0..shape[0] * shape[1] * 4,
        }
    }

    fn llama(layers: usize) -> Anatomy {
        let mut tensors = Vec::new();
        let mut add = |name: String, shape: [usize; 2]| tensors.push(f32_matrix(name, shape));
        for l in 0..layers {
            let p = format!("model.layers.{l}.");
            add(format!("{p}self_attn.q_proj.weight"), [32, 32]);
            add(format!("{p}self_attn.k_proj.weight"), [16, 32]);
            add(format!("{p}self_attn.v_proj.weight"), [16, 32]);
            add(format!("{p}self_attn.o_proj.weight"), [32, 32]);
            add(format!("{p}mlp.up_proj.weight"), [64, 32]);
        }
        add("reference.kaiming.weight".into(), [8, 24]);
        let cfg = ModelConfig {
            hidden_size: Some(32),
            num_layers: Some(layers),
            num_heads: Some(4),
            num_kv_heads: Some(2),
            ..Default::default()
        };
        from_parts(&tensors, Some(&cfg), &Overrides::default()).unwrap()
    }

    #[test]
    fn rows_are_layers_then_loose_matrices() {
        let nav = Nav::new(&llama(3));
        assert_eq!(nav.rows.len(), 4);
        assert!(matches!(nav.rows[3], Row::Loose { .. }));
        let Row::Layer { projs, .. } = &nav.rows[0] else {
            panic!()
        };
        assert_eq!(
            projs,
            &vec![
                (Proj::Q, Some(Axis::Heads(4))),
                (Proj::K, Some(Axis::Heads(2))),
                (Proj::V, Some(Axis::Heads(2))),
                (Proj::O, Some(Axis::Heads(4))),
                (Proj::Up, None)
            ]
        );
    }

    #[test]
    fn moving_keeps_projection_and_clamps_heads() {
        let mut nav = Nav::new(&llama(3));
        nav.move_proj(3); // o
        nav.move_head(4); // o head 3
        assert_eq!(
            nav.focus(),
            Some(MatrixId::whole(Some(0), Proj::O).with_head(3))
        );
        nav.move_proj(-2); // k has only 2 heads: clamp to head 1
        assert_eq!(nav.focus().unwrap().proj, Proj::K);
        assert_eq!(nav.focus().unwrap().head, Some(1));
        nav.move_row(1);
        assert_eq!(nav.focus().unwrap().layer, Some(1));
        assert_eq!(nav.focus().unwrap().proj, Proj::K);
        nav.move_head(1); // wraps to the whole matrix
        assert_eq!(nav.focus().unwrap().head, None);
        nav.move_row(100); // the loose matrix
        assert_eq!(nav.focus().unwrap().layer, None);
        nav.move_row(-100);
        assert_eq!(nav.row, 0);
        let target = MatrixId::whole(Some(2), Proj::V).with_head(1);
        assert!(nav.select(target));
        assert_eq!(nav.focus(), Some(target));
    }

    /// A DeepSeek-like stack: layer 0 dense, layer 1 with 3 routed experts and a router.
    fn moe() -> Anatomy {
        let mut tensors = Vec::new();
        let mut add = |name: String, shape: [usize; 2]| tensors.push(f32_matrix(name, shape));
        for l in 0..2 {
            let p = format!("model.layers.{l}.");
            add(format!("{p}self_attn.q_proj.weight"), [32, 32]);
            if l == 0 {
                add(format!("{p}mlp.gate_proj.weight"), [64, 32]);
            } else {
                add(format!("{p}mlp.gate.weight"), [3, 32]);
                for e in 0..3 {
                    add(format!("{p}mlp.experts.{e}.gate_proj.weight"), [16, 32]);
                }
            }
        }
        let cfg = ModelConfig {
            num_heads: Some(4),
            ..Default::default()
        };
        from_parts(&tensors, Some(&cfg), &Overrides::default()).unwrap()
    }

    #[test]
    fn experts_are_the_second_axis_of_expert_projections() {
        let mut nav = Nav::new(&moe());
        assert_eq!(
            nav.projs()[1],
            (Proj::Gate, None),
            "layer 0's gate is dense"
        );
        assert_eq!(nav.axis_of(Proj::Gate), Some(Axis::Experts(3)));
        nav.move_row(1);
        assert_eq!(
            nav.projs(),
            &[
                (Proj::Q, Some(Axis::Heads(4))),
                (Proj::Gate, Some(Axis::Experts(3))),
                (Proj::Router, None)
            ]
        );
        nav.move_proj(1);
        let gate = MatrixId::whole(Some(1), Proj::Gate);
        // No matrix of all experts: the first position is expert 0, and they wrap.
        assert_eq!(nav.focus(), Some(gate.with_expert(0)));
        nav.move_head(2);
        assert_eq!(nav.focus(), Some(gate.with_expert(2)));
        nav.move_head(1);
        assert_eq!(nav.focus(), Some(gate.with_expert(0)));
        assert!(nav.select(gate.with_expert(1)));
        assert_eq!(nav.focus(), Some(gate.with_expert(1)));
        // Back to the dense layer: its gate is the whole matrix.
        nav.move_row(-1);
        assert_eq!(nav.focus(), Some(MatrixId::whole(Some(0), Proj::Gate)));
        assert_eq!(Axis::Experts(3).member(gate, 2), gate.with_expert(2));
        assert_eq!(Axis::Heads(4).member(gate, 2), gate.with_head(2));
    }
}
