//! Per-thread lists: which nonzeros each thread holds, and in which order.
//!
//! A warp's 32 lanes serve `32 / TPR` row slots; the nonzeros of a row go to its `TPR` lanes,
//! each lane holding exactly `N` entries (nonzeros or padding). Lists are built warp by warp,
//! as `[lane][k]` arrays of *entries*: the index of a nonzero in the CSR arrays, or [`PAD`].
//!
//! Two orders:
//!
//! - [`WeightOrder::Naive`]: a row's nonzeros in CSR order, cut into `TPR` contiguous chunks of
//!   `⌈nnz / TPR⌉` (lane `j` gets chunk `j`), padding at the end of each list.
//! - [`WeightOrder::BankAware`]: a greedy per position. At position `k` it first gives padding to
//!   lanes whose row is exhausted, then serves lanes that *must* take a nonzero now (a row with
//!   `r` nonzeros left needs `r − TPR·(N−k−1)` of its lanes to take one), then the other lanes.
//!   A lane takes, from the nonzeros its row has left, one whose banks no lane of its phase uses
//!   yet (among those, the bank class the row has most of, to keep options for later); failing
//!   that one that reads a word already read in the phase (broadcast, free); failing that the
//!   bank class that raises the phase's cost least — or padding, for a lane that need not take,
//!   when padding is cheaper. The row's nonzeros are free to go to any of its `TPR` lanes, so
//!   this also chooses the split over threads. Finally the warp's cost under the exact model
//!   ([`BankModel::wavefronts`]) is compared with the naive order's, and the cheaper is kept: the
//!   bank-aware order is never worse than the naive one, warp by warp.

use super::bank::{BankModel, BankStats};
use crate::sparse::Csr;

/// Entry of a lane list that holds padding.
pub const PAD: u32 = u32::MAX;

/// How nonzeros are ordered within and split across a row's threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum WeightOrder {
    /// Greedy bank-conflict avoidance (the default); see the module docs.
    #[default]
    BankAware,
    /// CSR order, contiguous chunks per thread: the baseline the bank-aware order is measured
    /// against.
    Naive,
}

const CLASSES: usize = 64;

/// Builds the lists of one warp at a time; holds the per-layer tables and scratch space.
pub(crate) struct Assigner<'a> {
    w: &'a Csr,
    hidden: u32,
    tpr: usize,
    n: usize,
    model: BankModel,
    masks: [u32; CLASSES],
    conflicts: [u64; CLASSES],
    class_of: Vec<u8>,
    pad_class: usize,
    all_classes: u64,
    // Scratch, one entry per row slot of the warp.
    rows: Vec<RowPool>,
    present: Vec<u64>,
    words_per_row: usize,
}

#[derive(Clone)]
struct RowPool {
    items: Vec<u32>,
    start: [u32; CLASSES],
    live: [u32; CLASSES],
    nonempty: u64,
    remaining: usize,
}

impl Default for RowPool {
    fn default() -> Self {
        RowPool { items: Vec::new(), start: [0; CLASSES], live: [0; CLASSES], nonempty: 0, remaining: 0 }
    }
}

/// Per-phase bookkeeping of one position.
#[derive(Clone, Copy)]
struct Phase {
    occ: u32,
    free: u64,
    counts: [u8; 32],
    max: u8,
    pad: bool,
    words: [u32; 32],
    nwords: usize,
}

impl<'a> Assigner<'a> {
    pub(crate) fn new(w: &'a Csr, tpr: usize, n: usize, model: BankModel) -> Assigner<'a> {
        let hidden = w.cols() as u32;
        let mut masks = [0u32; CLASSES];
        for (c, m) in masks.iter_mut().enumerate() {
            *m = model.class_mask(c);
        }
        let mut conflicts = [0u64; CLASSES];
        for a in 0..CLASSES {
            for b in 0..CLASSES {
                if masks[a] & masks[b] != 0 {
                    conflicts[a] |= 1 << b;
                }
            }
        }
        let class_of = (0..=hidden).map(|c| model.class(c) as u8).collect();
        let slots = 32 / tpr;
        let words_per_row = (hidden as usize + 1).div_ceil(64);
        Assigner {
            w,
            hidden,
            tpr,
            n,
            model,
            masks,
            conflicts,
            class_of,
            pad_class: model.class(hidden),
            all_classes: u64::MAX,
            rows: vec![RowPool::default(); slots],
            present: vec![0; slots * words_per_row],
            words_per_row,
        }
    }

    /// Column an entry reads.
    #[inline]
    pub(crate) fn col(&self, e: u32) -> u32 {
        if e == PAD {
            self.hidden
        } else {
            self.w.col_idx()[e as usize]
        }
    }

    /// Naive lists for a warp whose slot `s` holds row `slots[s]`; `out[lane * N + k]`.
    pub(crate) fn naive(&self, slots: &[Option<u32>], out: &mut [u32]) {
        out.fill(PAD);
        for (s, row) in slots.iter().enumerate() {
            let Some(r) = *row else { continue };
            let (a, b) = (self.w.row_ptr()[r as usize], self.w.row_ptr()[r as usize + 1]);
            let q = (b - a).div_ceil(self.tpr);
            for (i, e) in (a..b).enumerate() {
                let lane = s * self.tpr + i / q;
                out[lane * self.n + i % q] = e as u32;
            }
        }
    }

    /// Adds the wavefronts of every position of a warp's lists to `stats`; returns their sum.
    pub(crate) fn measure(&self, out: &[u32], stats: &mut BankStats) -> u64 {
        let mut total = 0;
        let mut cols = [0u32; 32];
        for k in 0..self.n {
            for (lane, c) in cols.iter_mut().enumerate() {
                *c = self.col(out[lane * self.n + k]);
            }
            let wf = self.model.wavefronts(&cols);
            stats.add(wf);
            total += wf as u64;
        }
        total
    }

    /// Bank-aware lists for a warp (see the module docs); `out[lane * N + k]`.
    pub(crate) fn bank_aware(&mut self, slots: &[Option<u32>], out: &mut [u32]) {
        out.fill(PAD);
        let (tpr, n) = (self.tpr, self.n);
        for (s, row) in slots.iter().enumerate() {
            self.fill_pool(s, *row);
        }
        let lpp = self.model.lanes_per_phase;
        let mut done = [false; 32];
        for k in 0..n {
            let mut phases = [Phase {
                occ: 0,
                free: self.all_classes,
                counts: [0; 32],
                max: 0,
                pad: false,
                words: [0; 32],
                nwords: 0,
            }; 4];
            done.fill(false);
            // Pass 0: padding where the row is exhausted.
            for lane in 0..32 {
                if self.rows[lane / tpr].remaining == 0 {
                    self.place_pad(&mut phases[lane / lpp]);
                    done[lane] = true;
                }
            }
            // Pass 1: lanes that must take a nonzero now.
            for s in 0..slots.len() {
                let must = self.rows[s].remaining.saturating_sub(tpr * (n - k - 1));
                for lane in s * tpr..s * tpr + must {
                    let e = self.take(s, &mut phases[lane / lpp], true).expect("forced take");
                    out[lane * n + k] = e;
                    done[lane] = true;
                }
            }
            // Pass 2: the others, where it is cheap.
            for lane in 0..32 {
                if done[lane] {
                    continue;
                }
                let s = lane / tpr;
                let p = &mut phases[lane / lpp];
                if self.rows[s].remaining == 0 {
                    self.place_pad(p);
                } else if let Some(e) = self.take(s, p, false) {
                    out[lane * n + k] = e;
                } else {
                    self.place_pad(p);
                }
            }
        }
        for (s, row) in self.rows.iter().enumerate() {
            debug_assert_eq!(row.remaining, 0, "slot {s} not drained");
        }
    }

    fn fill_pool(&mut self, s: usize, row: Option<u32>) {
        let wpr = self.words_per_row;
        let pool = &mut self.rows[s];
        pool.items.clear();
        pool.live = [0; CLASSES];
        pool.nonempty = 0;
        pool.remaining = 0;
        self.present[s * wpr..(s + 1) * wpr].fill(0);
        let Some(r) = row else { return };
        let (a, b) = (self.w.row_ptr()[r as usize], self.w.row_ptr()[r as usize + 1]);
        for e in a..b {
            let col = self.w.col_idx()[e];
            pool.live[self.class_of[col as usize] as usize] += 1;
            self.present[s * wpr + col as usize / 64] |= 1 << (col % 64);
        }
        let mut acc = 0u32;
        for c in 0..CLASSES {
            pool.start[c] = acc;
            acc += pool.live[c];
            if pool.live[c] > 0 {
                pool.nonempty |= 1 << c;
            }
        }
        pool.items.resize(b - a, 0);
        let mut fill = pool.start;
        for e in a..b {
            let c = self.class_of[self.w.col_idx()[e] as usize] as usize;
            pool.items[fill[c] as usize] = e as u32;
            fill[c] += 1;
        }
        pool.remaining = b - a;
    }

    fn place_pad(&self, p: &mut Phase) {
        if !p.pad {
            p.pad = true;
            self.occupy(p, self.pad_class);
        }
    }

    fn occupy(&self, p: &mut Phase, class: usize) {
        let m = self.masks[class];
        p.occ |= m;
        p.free &= !self.conflicts[class];
        let mut bits = m;
        while bits != 0 {
            let b = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            p.counts[b] += 1;
            p.max = p.max.max(p.counts[b]);
        }
    }

    /// Phase cost after adding one more access of `class` (counting it as a new word).
    fn cost_with(&self, p: &Phase, class: usize) -> u8 {
        let mut bits = self.masks[class];
        let mut m = p.max;
        while bits != 0 {
            let b = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            m = m.max(p.counts[b] + 1);
        }
        m
    }

    /// One nonzero of slot `s` for a lane of phase `p`, or `None` when the lane need not take
    /// one and padding is cheaper.
    fn take(&mut self, s: usize, p: &mut Phase, forced: bool) -> Option<u32> {
        let cand = self.rows[s].nonempty & p.free;
        if cand != 0 {
            let c = Self::most_live(&self.rows[s], cand);
            let e = self.pop(s, c);
            self.record(p, e);
            return Some(e);
        }
        if let Some(e) = self.broadcast(s, p) {
            return Some(e);
        }
        // Least-cost class.
        let pool = &self.rows[s];
        let mut bits = pool.nonempty;
        let (mut best, mut best_cost, mut best_live) = (usize::MAX, u8::MAX, 0);
        while bits != 0 {
            let c = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let cost = self.cost_with(p, c);
            if cost < best_cost || (cost == best_cost && pool.live[c] > best_live) {
                (best, best_cost, best_live) = (c, cost, pool.live[c]);
            }
        }
        if !forced && best_cost > p.max {
            let pad_cost = if p.pad { p.max } else { self.cost_with(p, self.pad_class) };
            if pad_cost < best_cost {
                return None;
            }
        }
        let e = self.pop(s, best);
        self.record(p, e);
        Some(e)
    }

    fn most_live(pool: &RowPool, mut cand: u64) -> usize {
        let (mut best, mut best_live) = (0, 0);
        while cand != 0 {
            let c = cand.trailing_zeros() as usize;
            cand &= cand - 1;
            if pool.live[c] > best_live {
                (best, best_live) = (c, pool.live[c]);
            }
        }
        best
    }

    fn record(&self, p: &mut Phase, e: u32) {
        let col = self.w.col_idx()[e as usize];
        let word = self.model.word(col);
        if p.words[..p.nwords].contains(&word) {
            return;
        }
        p.words[p.nwords] = word;
        p.nwords += 1;
        self.occupy(p, self.class_of[col as usize] as usize);
    }

    /// A nonzero of slot `s` whose column is read through a word already read in the phase.
    fn broadcast(&mut self, s: usize, p: &mut Phase) -> Option<u32> {
        let batch = self.model.batch as u32;
        for i in 0..p.nwords {
            let word = p.words[i];
            let (lo, hi) = if batch == 1 { (2 * word, 2 * word + 1) } else { (word * 2 / batch, word * 2 / batch) };
            for col in lo..=hi.min(self.hidden - 1) {
                if self.present[s * self.words_per_row + col as usize / 64] & (1 << (col % 64)) != 0 {
                    return Some(self.remove_col(s, col));
                }
            }
        }
        None
    }

    fn pop(&mut self, s: usize, c: usize) -> u32 {
        let pool = &mut self.rows[s];
        let i = (pool.start[c] + pool.live[c] - 1) as usize;
        let e = pool.items[i];
        self.finish_take(s, c, e);
        e
    }

    fn remove_col(&mut self, s: usize, col: u32) -> u32 {
        let c = self.class_of[col as usize] as usize;
        let pool = &mut self.rows[s];
        let (a, len) = (pool.start[c] as usize, pool.live[c] as usize);
        let cols = self.w.col_idx();
        let i = (a..a + len).find(|&i| cols[pool.items[i] as usize] == col).expect("present column");
        pool.items.swap(i, a + len - 1);
        let e = pool.items[a + len - 1];
        self.finish_take(s, c, e);
        e
    }

    fn finish_take(&mut self, s: usize, c: usize, e: u32) {
        let col = self.w.col_idx()[e as usize];
        let pool = &mut self.rows[s];
        pool.live[c] -= 1;
        if pool.live[c] == 0 {
            pool.nonempty &= !(1 << c);
        }
        pool.remaining -= 1;
        self.present[s * self.words_per_row + col as usize / 64] &= !(1 << (col % 64));
    }
}
