//! Minimum s-t cut of a graph with terminal capacities: the Boykov–Kolmogorov max-flow
//! algorithm (search trees grown from both terminals and reused between augmentations).
//!
//! Written here rather than taken from a crate: no Boykov–Kolmogorov (or push-relabel)
//! max-flow crate was found that suits a pixel grid with per-node terminal capacities (the
//! registry's search could not be reached from this machine; the graph crates we know,
//! `pathfinding`'s Edmonds–Karp and `petgraph`'s Ford–Fulkerson, find each augmenting path by
//! a fresh breadth-first search; they were not measured here). Capacities are integers, so no
//! residual of 1e-13 is augmented again and again. Measured cost: GrabCut's three rounds on a
//! 76x76 grid take 13-70 ms on the shared 2-core machine, the cut about 60 % of it
//! (`docs/results.md`, "GrabCut against the two-histogram colour model").
//!
//! Node and arc ids are indices into this structure's own vectors, created by it and never
//! taken from outside; the indexing below cannot go out of bounds unless this file is wrong.
#![allow(
    clippy::indexing_slicing,
    reason = "the search indexes its vectors by node and arc ids that this graph created"
)]

use std::collections::VecDeque;

/// No arc: a free node's parent.
const NONE: usize = usize::MAX;
/// The parent of a node linked to its terminal.
const TERMINAL: usize = usize::MAX - 1;
/// The parent of an orphan (being re-attached).
const ORPHAN: usize = usize::MAX - 2;
/// No distance known.
const INFINITE_D: u32 = u32::MAX;

/// A graph of `n` nodes with capacities to the source and the sink and between nodes.
#[derive(Debug, Clone)]
pub(crate) struct Graph {
    /// Residual capacity from the source (positive) or to the sink (negative).
    tr_cap: Vec<i64>,
    /// The first arc leaving each node (`NONE` for none).
    first: Vec<usize>,
    /// Per arc: its head, the next arc of the same tail, its residual capacity. Arc `a`'s
    /// reverse is `a ^ 1`.
    head: Vec<usize>,
    next: Vec<usize>,
    r_cap: Vec<i64>,
    /// The flow pushed by terminal capacities cancelling each other.
    flow: i64,
}

/// The search state of one max-flow run.
struct Search {
    parent: Vec<usize>,
    is_sink: Vec<bool>,
    ts: Vec<u32>,
    dist: Vec<u32>,
    active: Vec<bool>,
    queue: VecDeque<usize>,
    orphans: VecDeque<usize>,
    time: u32,
}

impl Graph {
    /// A graph of `nodes` nodes, room for `edges` edges, no capacities.
    pub(crate) fn new(nodes: usize, edges: usize) -> Self {
        Self {
            tr_cap: vec![0; nodes],
            first: vec![NONE; nodes],
            head: Vec::with_capacity(2 * edges),
            next: Vec::with_capacity(2 * edges),
            r_cap: Vec::with_capacity(2 * edges),
            flow: 0,
        }
    }

    /// Adds the capacities of node `i` from the source and to the sink (added to any
    /// before); ids out of range are ignored.
    pub(crate) fn add_terminal(&mut self, i: usize, source: i64, sink: i64) {
        let Some(t) = self.tr_cap.get_mut(i) else {
            return;
        };
        let (mut s, mut k) = (source, sink);
        if *t > 0 {
            s = s.saturating_add(*t);
        } else {
            k = k.saturating_sub(*t);
        }
        self.flow = self.flow.saturating_add(s.min(k));
        *t = s - k;
    }

    /// Adds an edge `i -> j` of capacity `cap` and `j -> i` of capacity `rev_cap`; ids out of
    /// range (or `i == j`) are ignored.
    pub(crate) fn add_edge(&mut self, i: usize, j: usize, cap: i64, rev_cap: i64) {
        let n = self.first.len();
        if i >= n || j >= n || i == j {
            return;
        }
        for (tail, hd, c) in [(i, j, cap), (j, i, rev_cap)] {
            self.head.push(hd);
            self.next.push(self.first[tail]);
            self.r_cap.push(c);
            self.first[tail] = self.head.len() - 1;
        }
    }

    /// Computes a maximum flow; returns its value and, per node, whether it lies on the
    /// source side of a minimum cut (the nodes reachable from the source in the residual
    /// graph).
    pub(crate) fn max_flow(mut self) -> (i64, Vec<bool>) {
        let n = self.first.len();
        let mut s = Search {
            parent: vec![NONE; n],
            is_sink: vec![false; n],
            ts: vec![0; n],
            dist: vec![0; n],
            active: vec![false; n],
            queue: VecDeque::new(),
            orphans: VecDeque::new(),
            time: 0,
        };
        for i in 0..n {
            if self.tr_cap[i] != 0 {
                s.is_sink[i] = self.tr_cap[i] < 0;
                s.parent[i] = TERMINAL;
                s.dist[i] = 1;
                s.set_active(i);
            }
        }
        let mut current: Option<usize> = None;
        loop {
            let i = match current.take() {
                Some(i) if s.parent[i] != NONE => {
                    s.active[i] = false;
                    i
                }
                Some(i) => {
                    s.active[i] = false;
                    match s.next_active() {
                        Some(i) => i,
                        None => break,
                    }
                }
                None => match s.next_active() {
                    Some(i) => i,
                    None => break,
                },
            };
            let Some(middle) = self.grow(&mut s, i) else {
                continue;
            };
            s.time = s.time.wrapping_add(1);
            // Process i again next: it may have more paths.
            s.active[i] = true;
            current = Some(i);
            self.augment(&mut s, middle);
            while let Some(o) = s.orphans.pop_front() {
                if s.is_sink[o] {
                    self.adopt_sink_orphan(&mut s, o);
                } else {
                    self.adopt_source_orphan(&mut s, o);
                }
            }
        }
        let source_side = (0..n)
            .map(|i| s.parent[i] != NONE && !s.is_sink[i])
            .collect();
        (self.flow, source_side)
    }

    /// Grows the tree of active node `i`; returns the arc (from the source tree to the sink
    /// tree) of a path found.
    fn grow(&self, s: &mut Search, i: usize) -> Option<usize> {
        let mut a = self.first[i];
        while a != NONE {
            let j = self.head[a];
            let open = if s.is_sink[i] {
                self.r_cap[a ^ 1] > 0
            } else {
                self.r_cap[a] > 0
            };
            if open {
                if s.parent[j] == NONE {
                    s.is_sink[j] = s.is_sink[i];
                    s.parent[j] = a ^ 1;
                    s.ts[j] = s.ts[i];
                    s.dist[j] = s.dist[i].saturating_add(1);
                    s.set_active(j);
                } else if s.is_sink[j] != s.is_sink[i] {
                    return Some(if s.is_sink[i] { a ^ 1 } else { a });
                } else if s.ts[j] <= s.ts[i] && s.dist[j] > s.dist[i] {
                    // A shorter way to j's terminal: re-hang j on i.
                    s.parent[j] = a ^ 1;
                    s.ts[j] = s.ts[i];
                    s.dist[j] = s.dist[i].saturating_add(1);
                }
            }
            a = self.next[a];
        }
        None
    }

    /// Pushes the bottleneck flow along the path through `middle`; the nodes cut off from
    /// their trees become orphans.
    fn augment(&mut self, s: &mut Search, middle: usize) {
        // The bottleneck: the source tree, the middle arc, the sink tree.
        let mut b = self.r_cap[middle];
        let mut i = self.head[middle ^ 1];
        while s.parent[i] != TERMINAL {
            let a = s.parent[i];
            b = b.min(self.r_cap[a ^ 1]);
            i = self.head[a];
        }
        b = b.min(self.tr_cap[i]);
        let mut i = self.head[middle];
        while s.parent[i] != TERMINAL {
            let a = s.parent[i];
            b = b.min(self.r_cap[a]);
            i = self.head[a];
        }
        b = b.min(self.tr_cap[i].saturating_neg());

        self.r_cap[middle ^ 1] += b;
        self.r_cap[middle] -= b;
        let mut i = self.head[middle ^ 1];
        while s.parent[i] != TERMINAL {
            let a = s.parent[i];
            self.r_cap[a] += b;
            self.r_cap[a ^ 1] -= b;
            if self.r_cap[a ^ 1] <= 0 {
                s.set_orphan_front(i);
            }
            i = self.head[a];
        }
        self.tr_cap[i] -= b;
        if self.tr_cap[i] <= 0 {
            s.set_orphan_front(i);
        }
        let mut i = self.head[middle];
        while s.parent[i] != TERMINAL {
            let a = s.parent[i];
            self.r_cap[a ^ 1] += b;
            self.r_cap[a] -= b;
            if self.r_cap[a] <= 0 {
                s.set_orphan_front(i);
            }
            i = self.head[a];
        }
        self.tr_cap[i] += b;
        if self.tr_cap[i] >= 0 {
            s.set_orphan_front(i);
        }
        self.flow = self.flow.saturating_add(b);
    }

    /// The distance from `j` to its terminal through valid parents (`INFINITE_D` when the
    /// way ends at an orphan); marks the way with the current time.
    fn origin_distance(&self, s: &mut Search, start: usize) -> u32 {
        let mut j = start;
        let mut d: u32 = 0;
        loop {
            if s.ts[j] == s.time {
                d = d.saturating_add(s.dist[j]);
                break;
            }
            let a = s.parent[j];
            d = d.saturating_add(1);
            if a == TERMINAL {
                s.ts[j] = s.time;
                s.dist[j] = 1;
                break;
            }
            if a == ORPHAN || a == NONE {
                return INFINITE_D;
            }
            j = self.head[a];
        }
        // Mark the way so later searches stop early.
        let mut j = start;
        let mut dd = d;
        while s.ts[j] != s.time {
            s.ts[j] = s.time;
            s.dist[j] = dd;
            dd = dd.saturating_sub(1);
            j = self.head[s.parent[j]];
        }
        d
    }

    /// Finds orphan `i` of the source tree a new parent, or frees it.
    fn adopt_source_orphan(&self, s: &mut Search, i: usize) {
        self.adopt(s, i, false);
    }

    /// Finds orphan `i` of the sink tree a new parent, or frees it.
    fn adopt_sink_orphan(&self, s: &mut Search, i: usize) {
        self.adopt(s, i, true);
    }

    fn adopt(&self, s: &mut Search, i: usize, sink: bool) {
        // The arc a0 from i to a candidate j carries flow into i's tree direction: for the
        // source tree, j -> i must be open (r_cap[a0 ^ 1]); for the sink tree, i -> j.
        let open = |a0: usize| {
            if sink {
                self.r_cap[a0] > 0
            } else {
                self.r_cap[a0 ^ 1] > 0
            }
        };
        let (mut best, mut d_min) = (NONE, INFINITE_D);
        let mut a0 = self.first[i];
        while a0 != NONE {
            let j = self.head[a0];
            if open(a0) && s.is_sink[j] == sink && s.parent[j] != NONE {
                let d = self.origin_distance(s, j);
                if d < d_min {
                    best = a0;
                    d_min = d;
                }
            }
            a0 = self.next[a0];
        }
        s.parent[i] = best;
        if best != NONE {
            s.ts[i] = s.time;
            s.dist[i] = d_min.saturating_add(1);
            return;
        }
        // Freed: its neighbours in the tree may grow into it again, its children are orphans.
        let mut a0 = self.first[i];
        while a0 != NONE {
            let j = self.head[a0];
            let a = s.parent[j];
            if s.is_sink[j] == sink && a != NONE {
                if open(a0) {
                    s.set_active(j);
                }
                if a != TERMINAL && a != ORPHAN && self.head[a] == i {
                    s.parent[j] = ORPHAN;
                    s.orphans.push_back(j);
                }
            }
            a0 = self.next[a0];
        }
    }
}

impl Search {
    fn set_active(&mut self, i: usize) {
        if !self.active[i] {
            self.active[i] = true;
            self.queue.push_back(i);
        }
    }

    /// The next active node that still belongs to a tree.
    fn next_active(&mut self) -> Option<usize> {
        while let Some(i) = self.queue.pop_front() {
            self.active[i] = false;
            if self.parent[i] != NONE {
                return Some(i);
            }
        }
        None
    }

    fn set_orphan_front(&mut self, i: usize) {
        self.parent[i] = ORPHAN;
        self.orphans.push_front(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small pseudo-random generator (xorshift), so the tests need no crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn cap(&mut self) -> i64 {
            // Zero a third of the time, so some arcs are missing.
            match self.next() % 3 {
                0 => 0,
                _ => (self.next() % 20) as i64,
            }
        }
    }

    struct Problem {
        n: usize,
        terminal: Vec<(i64, i64)>,
        edges: Vec<(usize, usize, i64, i64)>,
    }

    impl Problem {
        fn random(rng: &mut Rng, n: usize, edges: usize) -> Self {
            let terminal = (0..n).map(|_| (rng.cap(), rng.cap())).collect();
            let edges = (0..edges)
                .map(|_| {
                    let i = (rng.next() % n as u64) as usize;
                    let j = (rng.next() % n as u64) as usize;
                    (i, j, rng.cap(), rng.cap())
                })
                .filter(|&(i, j, ..)| i != j)
                .collect();
            Self { n, terminal, edges }
        }

        fn graph(&self) -> Graph {
            let mut g = Graph::new(self.n, self.edges.len());
            for (i, &(s, t)) in self.terminal.iter().enumerate() {
                g.add_terminal(i, s, t);
            }
            for &(i, j, c, r) in &self.edges {
                g.add_edge(i, j, c, r);
            }
            g
        }

        /// The capacity of the cut with `source_side` on the source side.
        fn cut(&self, source_side: &[bool]) -> i64 {
            let t: i64 = self
                .terminal
                .iter()
                .zip(source_side)
                .map(|(&(s, t), &src)| if src { t } else { s })
                .sum();
            let e: i64 = self
                .edges
                .iter()
                .map(|&(i, j, c, r)| match (source_side[i], source_side[j]) {
                    (true, false) => c,
                    (false, true) => r,
                    _ => 0,
                })
                .sum();
            t + e
        }

        fn brute_force_min_cut(&self) -> i64 {
            (0..1u32 << self.n)
                .map(|bits| {
                    let side: Vec<bool> = (0..self.n).map(|i| bits >> i & 1 == 1).collect();
                    self.cut(&side)
                })
                .min()
                .unwrap_or(0)
        }
    }

    #[test]
    fn max_flow_equals_the_brute_force_min_cut_on_random_graphs() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..300 {
            let n = 1 + round % 10;
            let p = Problem::random(&mut rng, n, 3 * n);
            let (flow, side) = p.graph().max_flow();
            let best = p.brute_force_min_cut();
            assert_eq!(flow, best, "round {round}: flow {flow}, min cut {best}");
            // The returned side is a minimum cut.
            assert_eq!(p.cut(&side), best, "round {round}");
        }
    }

    #[test]
    fn a_chain_is_cut_at_its_weakest_link() {
        // source -> 0 -> 1 -> 2 -> 3 -> sink, the link 1 -> 2 the weakest.
        let mut g = Graph::new(4, 3);
        g.add_terminal(0, 10, 0);
        g.add_terminal(3, 0, 10);
        g.add_edge(0, 1, 5, 0);
        g.add_edge(1, 2, 2, 0);
        g.add_edge(2, 3, 7, 0);
        let (flow, side) = g.max_flow();
        assert_eq!(flow, 2);
        assert_eq!(side, vec![true, true, false, false]);
    }

    #[test]
    fn a_grid_separates_along_a_weak_column() {
        // A 6x4 grid: the left column tied to the source, the right to the sink, strong
        // links everywhere but between columns 2 and 3.
        let (w, h) = (6, 4);
        let mut g = Graph::new(w * h, 2 * w * h);
        for y in 0..h {
            g.add_terminal(y * w, 100, 0);
            g.add_terminal(y * w + w - 1, 0, 100);
            for x in 0..w - 1 {
                let c = if x == 2 { 1 } else { 10 };
                g.add_edge(y * w + x, y * w + x + 1, c, c);
            }
        }
        for y in 0..h - 1 {
            for x in 0..w {
                g.add_edge(y * w + x, (y + 1) * w + x, 10, 10);
            }
        }
        let (flow, side) = g.max_flow();
        assert_eq!(flow, 4);
        for y in 0..h {
            for x in 0..w {
                assert_eq!(side[y * w + x], x <= 2, "({x}, {y})");
            }
        }
    }
}
