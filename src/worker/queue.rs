//! The pending-job order: the focused block first, then its layer and projection, then the rest.

use crate::anatomy::MatrixId;

/// Priority tier of a job relative to the focus (lower runs sooner).
pub fn tier(id: &MatrixId, focus: Option<&MatrixId>) -> u8 {
    let Some(f) = focus else { return 3 };
    if id == f {
        0
    } else if id.layer == f.layer && id.proj == f.proj {
        1
    } else if id.layer == f.layer {
        2
    } else {
        3
    }
}

/// Pending job indices kept so that the next job to run is at the end (a cheap `pop`).
#[derive(Debug, Default)]
pub struct Pending {
    items: Vec<usize>,
}

impl Pending {
    /// Every index in `0..n` pending, ordered for `focus`.
    pub fn all(n: usize, ids: &[MatrixId], focus: Option<&MatrixId>) -> Self {
        let mut p = Self {
            items: (0..n).collect(),
        };
        p.reorder(ids, focus);
        p
    }

    /// Re-sorts what is pending for a new focus; nothing is dropped.
    pub fn reorder(&mut self, ids: &[MatrixId], focus: Option<&MatrixId>) {
        // Descending by (tier, index) so that the best job sits at the end.
        self.items
            .sort_unstable_by_key(|&i| std::cmp::Reverse((tier(&ids[i], focus), i)));
    }

    /// Takes the next job to run.
    pub fn pop(&mut self) -> Option<usize> {
        self.items.pop()
    }

    /// Removes every pending job for which `drop` says yes; returns how many went.
    pub fn cancel(&mut self, mut drop: impl FnMut(usize) -> bool) -> usize {
        let before = self.items.len();
        self.items.retain(|&i| !drop(i));
        before - self.items.len()
    }

    /// Number of jobs still waiting.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The waiting jobs in the order they will run.
    pub fn in_run_order(&self) -> impl Iterator<Item = usize> + '_ {
        self.items.iter().rev().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anatomy::Proj;

    fn id(layer: usize, proj: Proj, head: Option<usize>) -> MatrixId {
        MatrixId {
            layer: Some(layer),
            proj,
            head,
            expert: None,
        }
    }

    #[test]
    fn focus_then_its_projection_then_its_layer_then_layer_order() {
        let ids = vec![
            id(0, Proj::Q, None),
            id(0, Proj::K, None),
            id(1, Proj::Q, None),
            id(1, Proj::Q, Some(0)),
            id(1, Proj::K, None),
            id(2, Proj::Q, None),
        ];
        let p = Pending::all(ids.len(), &ids, Some(&ids[3]));
        let order: Vec<usize> = p.in_run_order().collect();
        assert_eq!(order, vec![3, 2, 4, 0, 1, 5]);
        let none = Pending::all(ids.len(), &ids, None);
        assert_eq!(
            none.in_run_order().collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn the_focused_experts_siblings_come_next() {
        let gate = MatrixId::whole(Some(1), Proj::Gate);
        let ids = vec![
            id(1, Proj::Q, None),
            gate.with_expert(0),
            gate.with_expert(1),
            MatrixId::whole(Some(1), Proj::Up).with_expert(1),
            MatrixId::whole(Some(0), Proj::Gate).with_expert(2),
        ];
        let p = Pending::all(ids.len(), &ids, Some(&ids[2]));
        assert_eq!(p.in_run_order().collect::<Vec<_>>(), vec![2, 1, 0, 3, 4]);
    }

    #[test]
    fn refocus_keeps_everything_and_cancel_removes() {
        let ids: Vec<MatrixId> = (0..5).map(|l| id(l, Proj::V, None)).collect();
        let mut p = Pending::all(5, &ids, None);
        assert_eq!(p.pop(), Some(0));
        p.reorder(&ids, Some(&ids[3]));
        assert_eq!(p.in_run_order().collect::<Vec<_>>(), vec![3, 1, 2, 4]);
        assert_eq!(p.cancel(|i| i % 2 == 0), 2);
        assert_eq!(p.in_run_order().collect::<Vec<_>>(), vec![3, 1]);
        assert_eq!(p.len(), 2);
    }
}
