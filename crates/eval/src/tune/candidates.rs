//! The map settings a method is tuned over.

/// The map settings of one method: variant 0 is the given one (reported on every image at the
/// given blur and threshold); the grid tries [`Candidates::searched`].
///
/// Maps are stored once per distinct variant: a tried variant equal to an earlier one (the
/// given one included) reuses its map.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidates<V> {
    variants: Vec<V>,
    searched: Vec<usize>,
}

impl<V: PartialEq> Candidates<V> {
    /// The given variant and those the grid tries, in the grid's order.
    pub fn new(given: V, tried: impl IntoIterator<Item = V>) -> Self {
        let mut variants = vec![given];
        let mut searched = Vec::new();
        for v in tried {
            let at = variants.iter().position(|x| *x == v).unwrap_or_else(|| {
                variants.push(v);
                variants.len() - 1
            });
            searched.push(at);
        }
        Self { variants, searched }
    }
}

impl<V> Candidates<V> {
    /// The distinct variants, the given one first: one stored map each.
    pub fn variants(&self) -> &[V] {
        &self.variants
    }

    /// The variants the grid tries, as indices into [`Candidates::variants`].
    pub fn searched(&self) -> &[usize] {
        &self.searched
    }
}
