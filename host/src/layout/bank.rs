//! The shared-memory bank model and the wavefront measure.
//!
//! # Model
//!
//! Shared memory has 32 banks of 4 bytes; byte address `a` is in word `a / 4`, bank
//! `(a / 4) % 32`. At unrolled position `k` every lane of a warp loads `w = e·BT` bytes of the
//! hidden state (elements of `e` = 2 bytes, fp16, or 4, f32) at
//! [`h_smem_offset`]`(col, tile, B, BT, e)`; `w = 32` (f32, `BT` = 8) is two 16-byte loads,
//! each costed like one. The offset is a multiple of `w`, so a
//! lane touches `⌈w / 4⌉` consecutive words. The hardware splits the warp's request into
//! *phases*: one phase of 32 lanes for `w ≤ 4`, two of 16 lanes for `w = 8`, four of 8 lanes for
//! `w = 16`. A phase costs as many wavefronts as the largest number of *distinct* words any one
//! bank has to deliver in it (lanes reading the same word share it: broadcast). The instruction
//! costs the sum over its phases; the ideal is one wavefront per phase.
//!
//! The tile index only shifts every address of an instruction by the same amount, so the count
//! is the same for every tile; we measure tile 0. Padding words read the zero column `H` and are
//! counted like any other load (all padding lanes of a phase share one word).
//!
//! Consequences of the layout `h[col][b]` for fp16 (column stride `2·B` bytes; f32 doubles
//! every stride):
//!
//! | B | BT | bytes per lane | phases | columns mapping to distinct bank groups |
//! | --- | --- | --- | --- | --- |
//! | 1 | 1 | 2 | 1 × 32 lanes | 64 (two columns share each word) |
//! | 4 | 4 | 8 | 2 × 16 | 16 |
//! | 16 | 8 | 16 | 4 × 8 | 4: 8 lanes over 4 groups, so ≥ 2 wavefronts per phase unless columns repeat |
//! | 64 | 8 | 16 | 4 × 8 | 1: column stride 128 bytes, every column in banks 0–3 |
//!
//! At B = 64 every column lands in the same four banks, so a phase costs the number of distinct
//! columns among its 8 lanes whatever the order: there is nothing for the order to gain (except
//! lanes that happen to read the same column).

use sprnn_kernels::format::h_smem_offset;

/// Largest batch tile (8, 4, 2 or 1) dividing `batch`.
pub fn batch_tile(batch: usize) -> usize {
    [8, 4, 2, 1].into_iter().find(|t| batch % t == 0).unwrap_or(1)
}

/// The bank geometry of the hidden-state loads for one batch size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BankModel {
    /// Batch size B.
    pub batch: usize,
    /// Batch tile BT.
    pub batch_tile: usize,
    /// Phases per warp instruction (the ideal wavefront count).
    pub phases: usize,
    /// Lanes per phase.
    pub lanes_per_phase: usize,
    /// 4-byte words one lane touches per load.
    pub words_per_lane: usize,
    /// Bytes per hidden-state element (2 or 4).
    pub elem_bytes: usize,
    /// Loads per position (2 for f32 with `BT` = 8, else 1).
    pub loads: usize,
}

impl BankModel {
    /// The model for batch size `batch` (`batch ≥ 1`) and hidden-state elements of
    /// `elem_bytes` bytes (2 or 4).
    pub fn new(batch: usize, elem_bytes: usize) -> BankModel {
        let bt = batch_tile(batch);
        let loads = (elem_bytes * bt).div_ceil(16);
        let bytes = elem_bytes * bt / loads;
        let phases = match bytes {
            0..=4 => 1,
            8 => 2,
            _ => 4,
        };
        BankModel {
            batch,
            batch_tile: bt,
            phases: phases * loads,
            lanes_per_phase: 32 / phases,
            words_per_lane: bytes.div_ceil(4),
            elem_bytes,
            loads,
        }
    }

    /// First 4-byte word a lane reading column `col` touches (tile 0).
    #[inline]
    pub fn word(&self, col: u32) -> u32 {
        h_smem_offset(col, 0, self.batch as u32, self.batch_tile as u32, self.elem_bytes as u32) / 4
    }

    /// Bank class of a column: its byte offset modulo 128, halved (0..64). Columns of one class
    /// touch the same banks.
    #[inline]
    pub fn class(&self, col: u32) -> usize {
        ((col as usize % 64) * (self.batch % 64) * self.elem_bytes % 128) / 2
    }

    /// Banks touched by columns of bank class `class` (by the first load), as a bit mask.
    pub fn class_mask(&self, class: usize) -> u32 {
        let first = (class * 2) / 4;
        (0..self.words_per_lane).fold(0u32, |m, i| m | 1 << ((first + i) % 32))
    }

    /// Wavefronts of one warp's loads of one position whose lane `l` reads column `cols[l]`
    /// (the second 16-byte load of an f32 tile of 8 touches the same banks as the first, so it
    /// costs the same).
    pub fn wavefronts(&self, cols: &[u32; 32]) -> u32 {
        let mut total = 0;
        let mut pairs = [0u64; 32];
        for phase in cols.chunks(self.lanes_per_phase) {
            let mut n = 0;
            for &c in phase {
                let w = self.word(c);
                for i in 0..self.words_per_lane as u32 {
                    let word = w + i;
                    pairs[n] = ((word % 32) as u64) << 32 | word as u64;
                    n += 1;
                }
            }
            let p = &mut pairs[..n];
            p.sort_unstable();
            let (mut best, mut run, mut prev) = (0u32, 0u32, u64::MAX);
            for &x in p.iter() {
                if x == prev {
                    continue;
                }
                if prev == u64::MAX || x >> 32 != prev >> 32 {
                    run = 0;
                }
                run += 1;
                best = best.max(run);
                prev = x;
            }
            total += best;
        }
        total * self.loads as u32
    }
}

/// Wavefront statistics of a layout's hidden-state loads, over every warp instruction
/// (every warp of every CTA, every position `k`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BankStats {
    /// Batch tile of the loads.
    pub batch_tile: usize,
    /// Ideal wavefronts per instruction (the phase count).
    pub ideal: u32,
    /// Warp instructions counted.
    pub instructions: u64,
    /// Wavefronts summed over them.
    pub wavefronts: u64,
    /// The most wavefronts of any one instruction.
    pub max: u32,
}

impl BankStats {
    /// Empty statistics for a model.
    pub fn new(model: &BankModel) -> BankStats {
        BankStats { batch_tile: model.batch_tile, ideal: model.phases as u32, ..BankStats::default() }
    }

    /// Adds one instruction of `wavefronts`.
    pub fn add(&mut self, wavefronts: u32) {
        self.instructions += 1;
        self.wavefronts += wavefronts as u64;
        self.max = self.max.max(wavefronts);
    }

    /// Merges another set of statistics (same model).
    pub fn merge(&mut self, other: &BankStats) {
        self.instructions += other.instructions;
        self.wavefronts += other.wavefronts;
        self.max = self.max.max(other.max);
    }

    /// Mean wavefronts per instruction.
    pub fn mean(&self) -> f64 {
        if self.instructions == 0 {
            return 0.0;
        }
        self.wavefronts as f64 / self.instructions as f64
    }

    /// Mean wavefronts per instruction beyond the ideal.
    pub fn mean_excess(&self) -> f64 {
        self.mean() - self.ideal as f64
    }

    /// Most wavefronts of one instruction beyond the ideal.
    pub fn max_excess(&self) -> u32 {
        self.max.saturating_sub(self.ideal)
    }
}
