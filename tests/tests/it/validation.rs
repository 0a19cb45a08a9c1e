//! The bad-input table, CPU part: one test per row of `docs/VALIDATION.md` for every public
//! entry point that runs without a GPU (sparse matrices, the planner, weight files, the CPU
//! reference, opening a GPU on a machine without one). Each test checks the typed error variant
//! and that its message names the bad value and the limit it broke.
//!
//! The rows that need a CUDA device are in `validation_gpu.rs`.

use std::collections::HashMap;

use safetensors::tensor::Dtype;
use sprnn::layout::{layout_with, plan, synthetic, ArgumentError, DeviceInfo, Geometry, LaunchContract, Plan, PlanError, PlanOptions, WeightOrder};
use sprnn::reference::{forward_model, forward_u, forward_u_permuted, forward_x, Precision, RefOutput, ReferenceError, Sequences};
use sprnn::sparse::{random_recurrent, Dense, Matrix, PruneMode};
use sprnn::weights::{DType, LayerWeights, ModelWeights, SaveOptions, Storage, WeightsError};
use sprnn::{Cell, Csr, Error, Gpu, SparseError};

use crate::common::{f32s, file, i64s, raw, rnn_tensors, says, T};

/// One row of the table as a test: `name: call => Pattern, [parts]` (or `=> == value`), with
/// statements before the call in braces (`name: { let x = ..; } call => ..`): `call` returns
/// `Err(e)`, `e` matches the pattern (equals the value), and `e`'s message contains every part
/// (the bad value and the limit, usually).
macro_rules! refused {
    (@test $(#[$m:meta])* $name:ident, { $($setup:tt)* }, $call:expr, == $want:expr $(, [$($part:expr),* $(,)?])?) => {
        $(#[$m])*
        #[test]
        fn $name() {
            $($setup)*
            let e = $call.unwrap_err();
            assert_eq!(e, $want);
            $(says(&e, &[$($part),*]);)?
        }
    };
    (@test $(#[$m:meta])* $name:ident, { $($setup:tt)* }, $call:expr, $pat:pat $(if $guard:expr)? $(, [$($part:expr),* $(,)?])?) => {
        $(#[$m])*
        #[test]
        fn $name() {
            $($setup)*
            let e = $call.unwrap_err();
            assert!(matches!(&e, $pat $(if $guard)?), "{e:?}");
            $(says(&e, &[$($part),*]);)?
        }
    };
    ($(#[$m:meta])* $name:ident: { $($setup:tt)* } $call:expr => $($expect:tt)*) => {
        refused!(@test $(#[$m])* $name, { $($setup)* }, $call, $($expect)*);
    };
    ($(#[$m:meta])* $name:ident: $call:expr => $($expect:tt)*) => {
        refused!(@test $(#[$m])* $name, {}, $call, $($expect)*);
    };
}

// ---------------------------------------------------------------------------------------------
// sparse: Csr::new, Csr::from_dense, Csr::from_dense_pruned, Csr::pruned, Csr::map_values,
// Dense::new, random_recurrent
// ---------------------------------------------------------------------------------------------

refused!(csr_new_row_ptr_wrong_length: Csr::new(3, 3, vec![0, 0, 0], vec![], vec![])
    => SparseError::RowPtr { .. }, ["3 entries for 3 rows", "rows + 1"]);

// rows + 1 wraps to 0 for usize::MAX: must not be taken for an empty row pointer.
refused!(csr_new_row_count_that_overflows: Csr::new(usize::MAX, 1, vec![], vec![], vec![])
    => SparseError::RowPtr { .. }, ["0 entries", &format!("{} rows", usize::MAX), "rows + 1"]);

refused!(csr_new_row_ptr_not_starting_at_zero: Csr::new(1, 2, vec![1, 1], vec![0], vec![1.0])
    => SparseError::RowPtr { .. }, ["starts at 1", "not 0"]);

refused!(csr_new_row_ptr_decreasing: Csr::new(2, 2, vec![0, 2, 1], vec![0], vec![1.0])
    => SparseError::RowPtr { .. }, ["decreases at row 1", "2 then 1"]);

refused!(csr_new_row_ptr_end_not_nnz: Csr::new(1, 2, vec![0, 1], vec![0, 1], vec![1.0, 2.0])
    => SparseError::RowPtr { .. }, ["ends at 1", "2 nonzeros"]);

refused!(csr_new_length_mismatch: Csr::new(1, 2, vec![0, 2], vec![0, 1], vec![1.0])
    => == SparseError::LengthMismatch { cols: 2, values: 1 }, ["2 column indices", "1 values"]);

refused!(csr_new_column_out_of_range: Csr::new(1, 3, vec![0, 1], vec![5], vec![1.0])
    => == SparseError::ColumnOutOfRange { row: 0, col: 5, cols: 3 }, ["column index 5", "3 columns"]);

refused!(csr_new_unsorted_columns: Csr::new(1, 3, vec![0, 2], vec![2, 1], vec![1.0, 1.0])
    => == SparseError::Unsorted { row: 0, prev: 2, col: 1 }, ["row 0", "strictly increasing", "2 then 1"]);

refused!(csr_new_duplicate_column: Csr::new(2, 3, vec![0, 0, 2], vec![1, 1], vec![1.0, 1.0])
    => == SparseError::Unsorted { row: 1, prev: 1, col: 1 }, ["row 1", "1 then 1"]);

refused!(csr_new_nan_value: Csr::new(2, 2, vec![0, 1, 2], vec![0, 1], vec![1.0, f32::NAN])
    => SparseError::NonFinite { row: 1, col: 1, value } if value.is_nan(), ["row 1, column 1", "NaN", "not finite"]);

refused!(csr_new_infinite_value: Csr::new(1, 2, vec![0, 1], vec![0], vec![f32::NEG_INFINITY])
    => SparseError::NonFinite { row: 0, col: 0, .. }, ["-inf", "not finite"]);

refused!(csr_from_dense_wrong_length: Csr::from_dense(&[1.0; 5], 2, 3)
    => == SparseError::DenseShape { rows: 2, cols: 3, len: 5 }, ["5 values", "2 x 3"]);

refused!(csr_from_dense_infinite_value: Csr::from_dense(&[0.0, 1.0, f32::INFINITY, 0.0], 2, 2)
    => SparseError::NonFinite { row: 1, col: 0, .. }, ["row 1, column 0", "inf"]);

refused!(csr_from_dense_too_many_columns: {
    let cols = u32::MAX as usize + 1;
} Csr::from_dense(&[], 0, cols) => == SparseError::TooManyColumns { cols }, [&cols.to_string(), "32-bit"]);

refused!(csr_from_dense_pruned_density_above_one: Csr::from_dense_pruned(&[1.0], 1, 1, 1.5, PruneMode::Global)
    => == SparseError::Density { density: 1.5 }, ["1.5", "[0, 1]"]);

refused!(csr_from_dense_pruned_negative_density: Csr::from_dense_pruned(&[1.0], 1, 1, -0.1, PruneMode::PerRow)
    => == SparseError::Density { density: -0.1 }, ["-0.1", "[0, 1]"]);

refused!(csr_from_dense_pruned_nan_density: Csr::from_dense_pruned(&[1.0], 1, 1, f64::NAN, PruneMode::PerRow)
    => SparseError::Density { density } if density.is_nan(), ["NaN", "[0, 1]"]);

refused!(csr_from_dense_pruned_nan_that_pruning_would_drop: Csr::from_dense_pruned(&[5.0, f32::NAN], 1, 2, 0.5, PruneMode::PerRow)
    => SparseError::NonFinite { row: 0, col: 1, .. }, ["row 0, column 1", "NaN"]);

refused!(csr_pruned_density_above_one: {
    let m = Csr::from_dense(&[1.0, 2.0], 1, 2).unwrap();
} m.pruned(2.0, PruneMode::Global) => == SparseError::Density { density: 2.0 }, ["density 2", "[0, 1]"]);

refused!(csr_map_values_to_nan: {
    let m = Csr::from_dense(&[1.0, 0.0, 0.0, -1.0], 2, 2).unwrap();
} m.map_values(|v| v.sqrt()) => SparseError::NonFinite { row: 1, col: 1, .. }, ["row 1, column 1", "NaN"]);

refused!(dense_new_wrong_length: Dense::new(2, 2, vec![0.0; 3])
    => == SparseError::DenseShape { rows: 2, cols: 2, len: 3 }, ["3 values", "2 x 2"]);

refused!(dense_new_shape_that_overflows: Dense::new(usize::MAX, 2, vec![])
    => SparseError::DenseShape { len: 0, .. }, ["0 values", &format!("{} x 2", usize::MAX)]);

refused!(random_recurrent_rows_not_gate_blocks: random_recurrent(0, 10, 4, 0.5, 1.0)
    => == SparseError::NotGateBlocks { rows: 10, cols: 4 }, ["10 rows", "multiple of 4 columns"]);

refused!(random_recurrent_rows_without_columns: random_recurrent(0, 3, 0, 0.5, 1.0)
    => == SparseError::NotGateBlocks { rows: 3, cols: 0 }, ["3 rows", "0 columns"]);

refused!(random_recurrent_zero_radius: random_recurrent(0, 8, 4, 0.5, 0.0)
    => == SparseError::Radius { radius: 0.0 }, ["radius 0", "finite positive"]);

refused!(random_recurrent_infinite_radius: random_recurrent(0, 8, 4, 0.5, f64::INFINITY)
    => SparseError::Radius { .. }, ["radius inf", "finite positive"]);

refused!(random_recurrent_density_out_of_range: random_recurrent(0, 8, 4, 1.01, 1.0)
    => == SparseError::Density { density: 1.01 }, ["1.01", "[0, 1]"]);

refused!(random_recurrent_too_many_columns: {
    let cols = u32::MAX as usize + 1;
} random_recurrent(0, 0, cols, 0.5, 1.0)
    => == SparseError::TooManyColumns { cols }, [&cols.to_string(), "32-bit"]);

// ---------------------------------------------------------------------------------------------
// layout: plan, layout_with
// ---------------------------------------------------------------------------------------------

fn h200(w: &Csr, cell: Cell, batch: usize, opts: &PlanOptions) -> Result<Plan, PlanError> {
    plan(w, cell, batch, &DeviceInfo::h200(), opts)
}

fn rnn(hidden: usize, density: f64) -> Csr {
    synthetic::uniform(hidden, hidden, density, 7)
}

/// The plan of an RNN layer with H = 32 (d = 0.3) at batch 1 with the options `o`.
fn with_options(o: PlanOptions) -> Result<Plan, PlanError> {
    h200(&rnn(32, 0.3), Cell::RnnTanh, 1, &o)
}

refused!(plan_hidden_zero: h200(&Csr::new(0, 0, vec![0], vec![], vec![]).unwrap(), Cell::RnnTanh, 1, &PlanOptions::default())
    => == PlanError::EmptyHidden, ["hidden size is 0", "at least 1"]);

refused!(plan_hidden_above_65535: h200(&Csr::new(65536, 65536, vec![0; 65537], vec![], vec![]).unwrap(), Cell::RnnTanh, 1, &PlanOptions::default())
    => == PlanError::HiddenTooLarge { hidden: 65536, max: 65535 }, ["65536", "65535"]);

refused!(plan_rows_not_gates_times_hidden: h200(&rnn(32, 0.3), Cell::Lstm, 1, &PlanOptions::default())
    => == PlanError::Shape { cell: Cell::Lstm, rows: 32, cols: 32, expected_rows: 128 }, ["32 x 32", "128 x 32"]);

refused!(plan_batch_zero: h200(&rnn(32, 0.3), Cell::RnnTanh, 0, &PlanOptions::default())
    => == PlanError::ZeroBatch, ["batch size is 0", "at least 1"]);

refused!(plan_batch_beyond_32_bits: { let b = u32::MAX as usize + 1; } h200(&rnn(32, 0.3), Cell::RnnTanh, b, &PlanOptions::default())
    => PlanError::BadOption { option: "batch", value, .. } if *value == b, [&b.to_string(), &u32::MAX.to_string()]);

// Every size derived from B must be computed without overflow before the refusal.
refused!(plan_batch_usize_max: h200(&rnn(32, 0.3), Cell::RnnTanh, usize::MAX, &PlanOptions::default())
    => PlanError::BadOption { option: "batch", .. }, [&usize::MAX.to_string(), &u32::MAX.to_string()]);

refused!(plan_weight_overflowing_fp16: h200(&Csr::new(2, 2, vec![0, 1, 2], vec![1, 0], vec![0.5, 65520.0]).unwrap(), Cell::RnnTanh, 1, &PlanOptions::default())
    => == PlanError::ValueOutOfRange { row: 1, col: 0, value: 65520.0 }, ["row 1, column 0", "65520", "65504"]);

#[test]
fn plan_weight_at_the_fp16_maximum_is_accepted() {
    // The boundary of the row above: 65504 is the largest finite fp16 value.
    let w = Csr::new(2, 2, vec![0, 1, 2], vec![1, 0], vec![0.5, -65504.0]).unwrap();
    h200(&w, Cell::RnnTanh, 1, &PlanOptions::default()).expect("65504 fits fp16");
}

refused!(plan_threads_per_row_not_a_power_of_two: with_options(PlanOptions { threads_per_row: Some(3), ..PlanOptions::default() })
    => PlanError::BadOption { option: "threads_per_row", value: 3, .. }, ["threads_per_row = 3", "1, 2, 4, 8, 16 or 32"]);

refused!(plan_list_len_not_instantiated: with_options(PlanOptions { list_len: Some(10), ..PlanOptions::default() })
    => PlanError::BadOption { option: "list_len", value: 10, .. }, ["list_len = 10", "[8, 16, 24, 32, 48, 64, 96]"]);

refused!(plan_ctas_zero: with_options(PlanOptions { ctas: Some(0), ..PlanOptions::default() })
    => PlanError::BadOption { option: "ctas", value: 0, .. }, ["ctas = 0", "at least 1"]);

refused!(plan_ctas_above_hidden: with_options(PlanOptions { ctas: Some(40), ..PlanOptions::default() })
    => PlanError::BadOption { option: "ctas", value: 40, .. }, ["ctas = 40", "at most H = 32"]);

refused!(plan_ctas_not_co_resident: h200(&rnn(400, 0.01), Cell::RnnTanh, 1, &PlanOptions { ctas: Some(200), ..PlanOptions::default() })
    => == PlanError::NotCoResident { ctas: 200, ctas_per_sm: 1, sm_count: 132 }, ["200 CTAs", "132 SMs x 1 CTAs per SM = 132"]);

refused!(plan_ctas_per_sm_zero: with_options(PlanOptions { ctas_per_sm: Some(0), ..PlanOptions::default() })
    => PlanError::BadOption { option: "ctas_per_sm", value: 0, .. }, ["ctas_per_sm = 0", "1 to 64"]);

#[test]
fn plan_ctas_per_sm_too_large() {
    // usize::MAX used to overflow sm_count x ctas_per_sm.
    for cps in [65, usize::MAX] {
        let o = PlanOptions { ctas_per_sm: Some(cps), ..PlanOptions::default() };
        let e = h200(&rnn(32, 0.3), Cell::RnnTanh, 1, &o).unwrap_err();
        assert!(matches!(e, PlanError::BadOption { option: "ctas_per_sm", value, .. } if value == cps), "{e:?}");
        says(&e, &[&format!("ctas_per_sm = {cps}"), "1 to 64"]);
    }
}

refused!(plan_row_longer_than_forced_shape: {
    let o = PlanOptions { threads_per_row: Some(1), list_len: Some(8), ..PlanOptions::default() };
} h200(&synthetic::uniform(32, 32, 1.0, 3), Cell::RnnTanh, 1, &o)
    => PlanError::RowTooLong { nnz: 32, threads_per_row: 1, list_len: 8, .. }, ["32 nonzeros", "1 threads x 8 words hold only 8"]);

#[test]
fn plan_shared_memory_exceeded() {
    let w = synthetic::uniform(2304, 2304, 0.01, 4);
    let e = h200(&w, Cell::RnnTanh, 64, &PlanOptions::default()).unwrap_err();
    let PlanError::SharedMemory { need_bytes, have_bytes, batch: 64, max_batch } = e else { panic!("{e:?}") };
    assert!(need_bytes > have_bytes && max_batch > 0 && max_batch < 64);
    says(&e, &[&format!("{need_bytes} bytes"), &format!("batch 64, {have_bytes} available"), &format!("batch <= {max_batch}")]);
}

#[test]
fn plan_does_not_fit_in_registers() {
    // LSTM, H = 1152, d = 0.9: ~1040 nonzeros per row, more than any sparse launch shape holds
    // in registers alone (the dense slab would hold it, and so would registers and shared
    // memory together).
    let w = synthetic::uniform(4 * 1152, 1152, 0.9, 5);
    let registers_only = PlanOptions { kernel: Some(sprnn::layout::KernelKind::Sparse), shared_words: Some(0), ..PlanOptions::default() };
    let e = h200(&w, Cell::Lstm, 4, &registers_only).unwrap_err();
    let PlanError::DoesNotFit { need_regs, have_regs, max_row_nnz, max_row_fit, .. } = e else { panic!("{e:?}") };
    assert!(need_regs > have_regs && max_row_nnz > max_row_fit);
    says(&e, &["NVIDIA H200", &format!("{need_regs} registers per SM"), &format!("{have_regs} available"), &format!("{max_row_nnz} nonzeros, at most {max_row_fit}")]);
}

fn geometry(w: &Csr, cell: Cell, batch: usize) -> Geometry {
    h200(w, cell, batch, &PlanOptions::default()).unwrap().geometry()
}

/// `layout_with` of an RNN layer with H = 64 (d = 0.2) at batch 1, in `order`, for the geometry
/// `g` makes of the planner's.
fn layout_64(g: impl FnOnce(Geometry) -> Geometry, order: WeightOrder) -> Result<Plan, PlanError> {
    let w = rnn(64, 0.2);
    layout_with(&w, Cell::RnnTanh, 1, &g(geometry(&w, Cell::RnnTanh, 1)), order)
}

refused!(layout_with_grid_zero: layout_64(|g| Geometry { grid: 0, ..g }, WeightOrder::BankAware)
    => PlanError::BadOption { option: "grid", value: 0, .. }, ["grid = 0", "H = 64", ">= 1"]);

refused!(layout_with_too_few_unit_slots: layout_64(|_| Geometry { grid: 2, units_per_cta: 31, threads_per_cta: 1024, threads_per_row: 1, list_len: 32, shared_words: 0, gated_kernel: false }, WeightOrder::BankAware)
    => PlanError::BadOption { option: "grid", value: 2, .. }, ["grid = 2", "grid x units_per_cta >= H = 64"]);

refused!(layout_with_slot_count_that_overflows: layout_64(|_| Geometry { grid: usize::MAX, units_per_cta: 2, threads_per_cta: 64, threads_per_row: 1, list_len: 32, shared_words: 0, gated_kernel: false }, WeightOrder::BankAware)
    => PlanError::BadOption { option: "grid", .. }, [&format!("grid = {}", usize::MAX), "H = 64"]);

refused!(layout_with_units_per_cta_above_hidden: layout_64(|_| Geometry { grid: 1, units_per_cta: 1 << 40, threads_per_cta: 64, threads_per_row: 1, list_len: 32, shared_words: 0, gated_kernel: false }, WeightOrder::BankAware)
    => PlanError::BadOption { option: "units_per_cta", .. }, [&format!("units_per_cta = {}", 1u64 << 40), "at most H = 64"]);

refused!(layout_with_threads_not_a_multiple_of_32: layout_64(|g| Geometry { threads_per_cta: 100, ..g }, WeightOrder::BankAware)
    => PlanError::BadOption { option: "threads_per_cta", value: 100, .. }, ["threads_per_cta = 100", "a multiple of 32 from"]);

refused!(layout_with_threads_beyond_padding_limit: layout_64(|g| Geometry { threads_per_cta: 1 << 30, ..g }, WeightOrder::BankAware)
    => PlanError::BadOption { option: "threads_per_cta", .. }, [&format!("threads_per_cta = {}", 1 << 30), "to 1024"]);

refused!(layout_with_threads_per_row_not_supported: layout_64(|g| Geometry { threads_per_row: 64, ..g }, WeightOrder::Naive)
    => PlanError::BadOption { option: "threads_per_row", value: 64, .. }, ["threads_per_row = 64", "1, 2, 4, 8, 16 or 32"]);

refused!(layout_with_list_len_not_instantiated: layout_64(|g| Geometry { list_len: 0, ..g }, WeightOrder::Naive)
    => PlanError::BadOption { option: "list_len", value: 0, .. }, ["list_len = 0", "[8, 16"]);

refused!(layout_with_row_too_long: {
    let w = synthetic::uniform(64, 64, 1.0, 6);
    let g = Geometry { grid: 32, units_per_cta: 2, threads_per_cta: 64, threads_per_row: 1, list_len: 32, shared_words: 0, gated_kernel: false };
} layout_with(&w, Cell::RnnTanh, 1, &g, WeightOrder::BankAware)
    => PlanError::RowTooLong { nnz: 64, threads_per_row: 1, list_len: 32, .. }, ["64 nonzeros", "1 threads x 32 words hold only 32"]);

// ---------------------------------------------------------------------------------------------
// weights: ModelWeights::from_safetensors / LayerWeights::from_safetensors (and load), new,
// to_safetensors (and save)
// ---------------------------------------------------------------------------------------------


fn load(tensors: &[T]) -> Result<ModelWeights, WeightsError> {
    ModelWeights::from_safetensors(&file(tensors, None), Cell::RnnTanh)
}

/// `rnn_tensors("_l0", 2, 3)` and `more`.
fn plus(more: Vec<T>) -> Vec<T> {
    let mut v = rnn_tensors("_l0", 2, 3);
    v.extend(more);
    v
}

/// The file of `rnn_tensors("_l0", 2, 3)` as `corrupt` leaves it, loaded.
fn corrupted(corrupt: impl FnOnce(&mut Vec<u8>)) -> Result<ModelWeights, WeightsError> {
    let mut bytes = file(&rnn_tensors("_l0", 2, 3), None);
    corrupt(&mut bytes);
    ModelWeights::from_safetensors(&bytes, Cell::RnnTanh)
}

/// `rnn_tensors("_l0", 2, 3)` with tensor `i` replaced.
fn with(i: usize, t: T) -> Vec<T> {
    let mut v = rnn_tensors("_l0", 2, 3);
    v[i] = t;
    v
}

/// A CSR-encoded 2 x 2 `weight_hh_l0` with the given parts, and a valid `weight_ih_l0`.
fn csr_file(shape: T, row_ptr: T, col_idx: T, values: T) -> Vec<T> {
    vec![f32s("weight_ih_l0", &[2, 1], &[1.0, 1.0]), shape, row_ptr, col_idx, values]
}

/// [`csr_file`] with the parts as one-dimensional tensors of the dtypes the loader reads: I64
/// `csr_shape` and `csr_row_ptr`, I32 `csr_col_idx`, F32 `csr_values`.
fn csr(shape: &[i64], row_ptr: &[i64], col_idx: &[i32], values: &[f32]) -> Vec<T> {
    csr_file(
        i64s("weight_hh_l0.csr_shape", &[shape.len()], shape),
        i64s("weight_hh_l0.csr_row_ptr", &[row_ptr.len()], row_ptr),
        i32s("weight_hh_l0.csr_col_idx", col_idx),
        f32s("weight_hh_l0.csr_values", &[values.len()], values),
    )
}

fn i32s(name: &str, v: &[i32]) -> T {
    raw(name, Dtype::I32, &[v.len()], v.iter().flat_map(|x| x.to_le_bytes()).collect())
}

#[test]
fn weights_valid_file_loads() {
    // The baseline every weights row breaks one thing of.
    let m = ModelWeights::from_safetensors(&file(&rnn_tensors("_l0", 2, 3), None), Cell::RnnTanh).unwrap();
    assert_eq!((m.input_size(), m.hidden()), (2, 3));
}

refused!(weights_empty_bytes: ModelWeights::from_safetensors(&[], Cell::RnnTanh)
    => WeightsError::Corrupt { .. }, ["not a valid safetensors file"]);

#[test]
fn weights_truncated_file() {
    let bytes = file(&rnn_tensors("_l0", 2, 3), None);
    for cut in [7, 8, 20, bytes.len() / 2, bytes.len() - 1] {
        let e = LayerWeights::from_safetensors(&bytes[..cut], Cell::RnnTanh).unwrap_err();
        assert!(matches!(e, WeightsError::Corrupt { .. }), "cut at {cut}: {e:?}");
        says(&e, &["not a valid safetensors file"]);
    }
}

refused!(weights_header_longer_than_file: corrupted(|bytes| bytes[..8].copy_from_slice(&(1u64 << 40).to_le_bytes()))
    => WeightsError::Corrupt { .. }, ["not a valid safetensors file"]);

refused!(weights_garbage_header: corrupted(|bytes| bytes[8] = b'#') => WeightsError::Corrupt { .. });

refused!(weights_data_longer_than_header_says: corrupted(|bytes| bytes.extend_from_slice(&[0; 4]))
    => WeightsError::Corrupt { .. });

refused!(weights_missing_weight_hh: load(&[])
    => WeightsError::MissingTensor { name } if name == "weight_hh_l0", ["missing tensor weight_hh_l0"]);

refused!(weights_missing_one_bias: {
    let mut t = rnn_tensors("_l0", 2, 3);
    t.remove(3);
} load(&t) => WeightsError::MissingTensor { name } if name == "bias_hh_l0", ["bias_hh_l0"]);

// The layer count comes from names; a name like this one must not allocate 4e9 layers.
refused!(weights_missing_layer_below_a_huge_layer_number: load(&plus(vec![f32s("bias_ih_l4000000000", &[3], &[0.0; 3]), f32s("bias_hh_l18446744073709551615", &[3], &[0.0; 3])]))
    => WeightsError::MissingTensor { name } if name == "weight_hh_l1", ["weight_hh_l1"]);

#[test]
fn weights_missing_csr_part() {
    let t = vec![
        f32s("weight_ih_l0", &[2, 1], &[1.0, 1.0]),
        i64s("weight_hh_l0.csr_shape", &[2], &[2, 2]),
        i64s("weight_hh_l0.csr_row_ptr", &[3], &[0, 0, 0]),
        i32s("weight_hh_l0.csr_col_idx", &[]),
    ];
    let e = load(&t).unwrap_err();
    assert!(matches!(&e, WeightsError::MissingTensor { name } if name == "weight_hh_l0.csr_values"), "{e:?}");
}

refused!(weights_integer_weight: load(&with(1, raw("weight_hh_l0", Dtype::I32, &[3, 3], vec![0; 36])))
    => WeightsError::WrongDtype { name, dtype, .. } if name == "weight_hh_l0" && dtype == "I32", ["weight_hh_l0 has dtype I32", "F32, F16 or BF16"]);

refused!(weights_f64_bias: load(&with(2, raw("bias_ih_l0", Dtype::F64, &[3], vec![0; 24])))
    => WeightsError::WrongDtype { name, .. } if name == "bias_ih_l0", ["dtype F64", "F32, F16 or BF16"]);

refused!(weights_float_csr_row_ptr: {
    let mut t = csr(&[2, 2], &[], &[], &[]);
    t[2] = f32s("weight_hh_l0.csr_row_ptr", &[3], &[0.0, 0.0, 0.0]);
} load(&t)
    => WeightsError::WrongDtype { name, .. } if name == "weight_hh_l0.csr_row_ptr", ["dtype F32", "I64 or I32"]);

refused!(weights_bias_wrong_length: load(&with(2, f32s("bias_ih_l0", &[4], &[0.0; 4])))
    => WeightsError::WrongShape { name, got, .. } if name == "bias_ih_l0" && got == &[4], ["[4]", "G*H=3"]);

refused!(weights_weight_not_a_matrix: load(&with(0, f32s("weight_ih_l0", &[6], &[0.0; 6])))
    => WeightsError::WrongShape { name, .. } if name == "weight_ih_l0", ["[6]", "2 dimensions"]);

refused!(weights_input_weight_wrong_rows: load(&with(0, f32s("weight_ih_l0", &[4, 2], &[0.0; 8])))
    => WeightsError::WrongShape { name, .. } if name == "weight_ih_l0", ["[4, 2]", "G*H=3"]);

refused!(weights_csr_shape_not_two_sizes: load(&csr(&[2, 2, 2], &[0, 0, 0], &[], &[]))
    => WeightsError::WrongShape { name, .. } if name == "weight_hh_l0.csr_shape", ["[3]", "[2] of non-negative sizes"]);

refused!(weights_csr_negative_size: load(&csr(&[-2, 2], &[0, 0, 0], &[], &[]))
    => WeightsError::WrongShape { name, .. } if name == "weight_hh_l0.csr_shape", ["non-negative"]);

refused!(weights_csr_row_ptr_wrong_length: load(&csr(&[2, 2], &[0, 0], &[], &[]))
    => WeightsError::WrongShape { name, got, .. } if name == "weight_hh_l0.csr_row_ptr" && got == &[2], ["[2]", "rows + 1 = 3"]);

refused!(weights_nan_in_weight: {
    let mut w = vec![0.25f32; 9];
    w[5] = f32::NAN;
} load(&with(1, f32s("weight_hh_l0", &[3, 3], &w)))
    => WeightsError::NonFinite { name, index: 5, position, .. } if name == "weight_hh_l0" && position == &[1, 2], ["weight_hh_l0[[1, 2]]", "flat index 5", "NaN"]);

refused!(weights_infinite_bias: load(&with(3, f32s("bias_hh_l0", &[3], &[0.0, f32::NEG_INFINITY, 0.0])))
    => WeightsError::NonFinite { name, index: 1, .. } if name == "bias_hh_l0", ["bias_hh_l0", "flat index 1", "-inf"]);

refused!(weights_infinite_f16_weight: {
    let mut bits = [half::f16::from_f32(0.5).to_bits(); 6];
    bits[4] = half::f16::INFINITY.to_bits();
} load(&with(0, raw("weight_ih_l0", Dtype::F16, &[3, 2], bits.iter().flat_map(|b| b.to_le_bytes()).collect())))
    => WeightsError::NonFinite { name, index: 4, .. } if name == "weight_ih_l0", ["weight_ih_l0[[2, 0]]", "inf"]);

refused!(weights_nan_in_csr_values: load(&csr(&[2, 2], &[0, 1, 1], &[1], &[f32::NAN]))
    => WeightsError::NonFinite { name, index: 0, .. } if name == "weight_hh_l0.csr_values");

refused!(weights_hidden_above_65535_in_file: load(&csr(&[65536, 65536], &[0], &[], &[]))
    => WeightsError::HiddenTooLarge { name, hidden: 65536, max: 65535 } if name == "weight_hh_l0", ["hidden size 65536", "maximum 65535"]);

refused!(weights_gate_count_does_not_match_cell: ModelWeights::from_safetensors(&file(&rnn_tensors("_l0", 2, 3), None), Cell::Gru)
    => WeightsError::GateMismatch { rows: 3, hidden: 3, gates: 3, .. }, ["3 x 3", "gru layer needs 3 * 3 rows"]);

refused!(weights_layers_disagree_on_hidden: load(&plus(rnn_tensors("_l1", 3, 4)))
    => WeightsError::InconsistentLayers { name, .. } if name == "weight_hh_l1", ["hidden size 4", "weight_hh_l0 has 3"]);

refused!(weights_layer_input_not_d_times_h: load(&plus(rnn_tensors("_l1", 2, 3)))
    => WeightsError::InconsistentLayers { name, .. } if name == "weight_ih_l1", ["2 inputs, expected 3"]);

refused!(weights_csr_unsorted_columns: load(&csr(&[2, 2], &[0, 2, 2], &[1, 0], &[1.0, 2.0]))
    => WeightsError::InvalidCsr { name, source: SparseError::Unsorted { .. } } if name == "weight_hh_l0", ["weight_hh_l0: invalid CSR encoding", "1 then 0"]);

refused!(weights_csr_negative_row_ptr: load(&csr(&[2, 2], &[0, -1, 0], &[], &[]))
    => WeightsError::InvalidCsr { source: SparseError::RowPtr { .. }, .. }, ["negative entry -1"]);

// Ends right (0 and nnz) but decreases in between: used to index past col_idx (a panic).
refused!(weights_csr_decreasing_row_ptr: load(&csr(&[2, 2], &[0, 2, 1], &[0], &[1.0]))
    => WeightsError::InvalidCsr { source: SparseError::RowPtr { .. }, .. }, ["decreases at row 1", "2 then 1"]);

refused!(weights_csr_negative_column: load(&csr(&[2, 2], &[0, 1, 1], &[-3], &[1.0]))
    => WeightsError::InvalidCsr { source: SparseError::ColumnOutOfRange { cols: 2, .. }, .. }, ["out of range", "2 columns"]);

refused!(weights_csr_column_out_of_range: load(&csr(&[2, 2], &[0, 0, 1], &[5], &[1.0]))
    => WeightsError::InvalidCsr { source: SparseError::ColumnOutOfRange { row: 1, col: 5, cols: 2 }, .. }, ["column index 5", "2 columns"]);

refused!(weights_cell_metadata_mismatch: {
    let meta: HashMap<String, String> = [("sprnn.cell".to_string(), "lstm".to_string())].into();
} ModelWeights::from_safetensors(&file(&rnn_tensors("_l0", 2, 3), Some(meta)), Cell::RnnTanh)
    => WeightsError::CellMismatch { file, given: Cell::RnnTanh } if file == "lstm", ["\"lstm\"", "rnn_tanh was asked for"]);

refused!(weights_lstm_projection: load(&plus(vec![f32s("weight_hr_l0", &[2, 3], &[0.0; 6])]))
    => WeightsError::Unsupported { name, .. } if name == "weight_hr_l0", ["weight_hr_l0", "proj_size > 0"]);

refused!(weights_dense_and_csr_encoding_both_present: load(&plus(vec![i64s("weight_hh_l0.csr_shape", &[2], &[3, 3])]))
    => WeightsError::Unsupported { name, .. } if name == "weight_hh_l0", ["both a dense and a CSR encoding"]);

fn small_layer(w_ih: f32) -> LayerWeights {
    LayerWeights::new(
        Cell::RnnTanh,
        Matrix::Dense(Dense::new(1, 1, vec![w_ih]).unwrap()),
        Csr::from_dense(&[1.0], 1, 1).unwrap(),
        vec![0.0],
        vec![0.0],
    )
    .unwrap()
}

refused!(weights_save_value_overflowing_f16: small_layer(1e6).to_safetensors(SaveOptions { dtype: DType::F16, storage: Storage::Dense })
    => WeightsError::NotRepresentable { name, index: 0, dtype: DType::F16, .. } if name == "weight_ih_l0", ["weight_ih_l0[0] = 1000000", "F16"]);

refused!(weights_save_value_overflowing_bf16: small_layer(f32::MAX).to_safetensors(SaveOptions { dtype: DType::BF16, storage: Storage::Csr })
    => WeightsError::NotRepresentable { dtype: DType::BF16, .. }, ["overflows BF16"]);

refused!(weights_load_missing_file: LayerWeights::load(std::env::temp_dir().join("sprnn-validation-no-such-file.safetensors"), Cell::RnnTanh)
    => WeightsError::Io { .. }, ["sprnn-validation-no-such-file.safetensors"]);

refused!(weights_save_into_missing_directory: small_layer(1.0).save(std::env::temp_dir().join("sprnn-validation-no-such-dir").join("w.safetensors"), SaveOptions::default())
    => WeightsError::Io { .. }, ["sprnn-validation-no-such-dir"]);

refused!(layer_weights_new_hidden_above_65535: {
    let w_hh = Csr::new(65536, 65536, vec![0; 65537], vec![], vec![]).unwrap();
    let w_ih = Matrix::Dense(Dense::new(65536, 0, vec![]).unwrap());
} LayerWeights::new(Cell::RnnTanh, w_ih, w_hh, vec![0.0; 65536], vec![0.0; 65536])
    => WeightsError::HiddenTooLarge { hidden: 65536, max: 65535, .. }, ["hidden size 65536", "maximum 65535"]);

/// A 2 x 2 `W_hh` of ones.
fn w22() -> Csr {
    Csr::from_dense(&[1.0; 4], 2, 2).unwrap()
}

fn ih(rows: usize) -> Matrix {
    Matrix::Dense(Dense::new(rows, 1, vec![1.0; rows]).unwrap())
}

refused!(layer_weights_new_gate_mismatch: LayerWeights::new(Cell::Lstm, ih(2), w22(), vec![0.0; 2], vec![0.0; 2])
    => WeightsError::GateMismatch { rows: 2, hidden: 2, gates: 4, .. }, ["2 x 2", "lstm layer needs 4 * 2 rows"]);

refused!(layer_weights_new_input_weight_wrong_rows: LayerWeights::new(Cell::RnnTanh, ih(3), w22(), vec![0.0; 2], vec![0.0; 2])
    => WeightsError::WrongShape { name, .. } if name == "w_ih", ["[3, 1]", "G*H=2"]);

refused!(layer_weights_new_bias_wrong_length: LayerWeights::new(Cell::RnnTanh, ih(2), w22(), vec![0.0; 2], vec![0.0; 5])
    => WeightsError::WrongShape { name, got, .. } if name == "b_hh" && got == &[5], ["b_hh has shape [5]", "G*H=2"]);

refused!(layer_weights_new_nan_input_weight: {
    let w_hh = Csr::from_dense(&[1.0; 4], 2, 2).unwrap();
    let w_ih = Matrix::Dense(Dense::new(2, 1, vec![0.0, f32::NAN]).unwrap());
} LayerWeights::new(Cell::RnnTanh, w_ih, w_hh, vec![0.0; 2], vec![0.0; 2])
    => WeightsError::NonFinite { name, index: 1, .. } if name == "w_ih", ["w_ih[[1, 0]]", "NaN"]);

refused!(layer_weights_new_infinite_bias: LayerWeights::new(Cell::RnnTanh, ih(2), w22(), vec![f32::INFINITY, 0.0], vec![0.0; 2])
    => WeightsError::NonFinite { name, index: 0, .. } if name == "b_ih", ["b_ih[[0]]", "inf"]);

refused!(model_weights_new_no_layers: ModelWeights::new(Cell::RnnTanh, vec![])
    => WeightsError::InconsistentLayers { .. }, ["at least one layer"]);

refused!(model_weights_new_three_directions: {
    let l = small_layer(1.0);
} ModelWeights::new(Cell::RnnTanh, vec![vec![l.clone(), l.clone(), l]])
    => WeightsError::InconsistentLayers { .. }, ["3 directions", "must be 1 or 2"]);

refused!(model_weights_new_cell_differs: ModelWeights::new(Cell::Gru, vec![vec![small_layer(1.0)]])
    => WeightsError::InconsistentLayers { .. }, ["direction 0 is rnn_tanh", "model is gru"]);

// ---------------------------------------------------------------------------------------------
// reference: forward_u, forward_u_permuted, forward_x, forward_model
// ---------------------------------------------------------------------------------------------

/// RNN, H = 2: W_hh 2 x 2, b_hh 2 values.
fn tiny() -> (Csr, Vec<f32>) {
    (Csr::from_dense(&[0.1, 0.0, 0.3, -0.7], 2, 2).unwrap(), vec![0.01, -0.02])
}

/// [`forward_u`] of the tiny layer's `W_hh` and `b_hh` as a layer of `cell`.
fn tiny_u(cell: Cell, u: Sequences<'_>, precision: Precision) -> Result<RefOutput, ReferenceError> {
    let (w, b) = tiny();
    forward_u(cell, &w, &b, u, precision)
}

/// [`forward_x`] of the tiny layer with `W_ih` of `rows` ones ([`ih`]) and `b_ih`.
fn tiny_x(rows: usize, b_ih: &[f32], x: Sequences<'_>, precision: Precision) -> Result<RefOutput, ReferenceError> {
    let (w, b) = tiny();
    forward_x(Cell::RnnTanh, &ih(rows), b_ih, &w, &b, x, precision)
}

refused!(reference_u_wrong_length: tiny_u(Cell::RnnTanh, Sequences::new(&[0.0; 3], 1, 1), Precision::F32)
    => ReferenceError::Length { what: "u", expected: 2, got: 3, .. }, ["u has 3 values, expected 2", "[T=1][B=1][G*H=2]"]);

refused!(reference_b_hh_wrong_length: {
    let (w, _) = tiny();
} forward_u(Cell::RnnTanh, &w, &[0.0], Sequences::new(&[0.0; 2], 1, 1), Precision::F32)
    => ReferenceError::Length { what: "b_hh", expected: 2, got: 1, .. }, ["b_hh has 1 values, expected 2"]);

refused!(reference_h0_wrong_length: tiny_u(Cell::RnnTanh, Sequences::new(&[0.0; 4], 1, 2).with_state(Some(&[0.0; 3]), None), Precision::F64)
    => ReferenceError::Length { what: "h0", expected: 4, got: 3, .. }, ["h0 has 3 values, expected 4", "[B=2][H=2]"]);

refused!(reference_c0_wrong_length: {
    let w = Csr::new(8, 2, vec![0; 9], vec![], vec![]).unwrap();
} forward_u(Cell::Lstm, &w, &[0.0; 8], Sequences::new(&[0.0; 8], 1, 1).with_state(None, Some(&[0.0; 5])), Precision::F32)
    => ReferenceError::Length { what: "c0", expected: 2, got: 5, .. }, ["c0 has 5 values, expected 2"]);

refused!(reference_c0_for_a_gru: {
    let w = Csr::new(6, 2, vec![0; 7], vec![], vec![]).unwrap();
} forward_u(Cell::Gru, &w, &[0.0; 6], Sequences::new(&[0.0; 6], 1, 1).with_state(None, Some(&[0.0; 2])), Precision::F32)
    => == ReferenceError::CellStateNotLstm { cell: Cell::Gru }, ["c0 given for a gru layer", "no cell state"]);

refused!(reference_w_hh_not_gates_times_hidden: tiny_u(Cell::Gru, Sequences::new(&[0.0; 2], 1, 1), Precision::F32)
    => == ReferenceError::Layer(PlanError::Shape { cell: Cell::Gru, rows: 2, cols: 2, expected_rows: 6 }), ["W_hh is 2 x 2", "needs 6 x 2"]);

refused!(reference_size_overflow: tiny_u(Cell::RnnTanh, Sequences::new(&[0.0; 2], usize::MAX, 3), Precision::F64)
    => ReferenceError::SizeOverflow { .. }, ["T * B * G * H", &usize::MAX.to_string()]);

refused!(reference_permuted_lanes_not_a_power_of_two: {
    let (w, b) = tiny();
} forward_u_permuted(Cell::RnnTanh, &w, &b, Sequences::new(&[0.0; 2], 1, 1), Precision::DeviceFaithful, (0, 3))
    => == ReferenceError::Lanes { lanes: 3 }, ["3 lanes", "power of two from 1 to 32"]);

#[test]
fn reference_permuted_lanes_above_a_warp() {
    let (w, b) = tiny();
    for lanes in [0, 64] {
        let e = forward_u_permuted(Cell::RnnTanh, &w, &b, Sequences::new(&[0.0; 2], 1, 1), Precision::DeviceFaithful, (0, lanes)).unwrap_err();
        assert_eq!(e, ReferenceError::Lanes { lanes });
        says(&e, &[&format!("{lanes} lanes"), "1 to 32"]);
    }
}

refused!(reference_x_input_weight_wrong_rows: tiny_x(3, &[0.0; 3], Sequences::new(&[0.0], 1, 1), Precision::F64)
    => == ReferenceError::InputRows { rows: 3, expected: 2 }, ["W_ih has 3 rows", "W_hh has 2"]);

refused!(reference_x_b_ih_wrong_length: tiny_x(2, &[0.0; 3], Sequences::new(&[0.0], 1, 1), Precision::F64)
    => ReferenceError::Length { what: "b_ih", expected: 2, got: 3, .. }, ["b_ih has 3 values, expected 2"]);

refused!(reference_x_wrong_length: tiny_x(2, &[0.0; 2], Sequences::new(&[0.0; 5], 2, 2), Precision::F32)
    => ReferenceError::Length { what: "x", expected: 4, got: 5, .. }, ["x has 5 values, expected 4", "[T=2][B=2][I=1]"]);

fn tiny_model() -> ModelWeights {
    ModelWeights::single(small_layer(0.5))
}

refused!(reference_model_x_wrong_length: forward_model(&tiny_model(), Sequences::new(&[0.0; 3], 2, 1), Precision::F64)
    => ReferenceError::Length { what: "x", expected: 2, got: 3, .. }, ["x has 3 values, expected 2"]);

refused!(reference_model_h0_wrong_length: forward_model(&tiny_model(), Sequences::new(&[0.0; 2], 2, 1).with_state(Some(&[0.0; 2]), None), Precision::F64)
    => ReferenceError::Length { what: "h0", expected: 1, got: 2, .. }, ["h0 has 2 values, expected 1", "[L*D=1][B=1][H=1]"]);

refused!(reference_model_c0_for_an_rnn: forward_model(&tiny_model(), Sequences::new(&[0.0; 2], 2, 1).with_state(None, Some(&[0.0])), Precision::F64)
    => == ReferenceError::CellStateNotLstm { cell: Cell::RnnTanh }, ["c0 given for a rnn_tanh layer"]);

refused!(reference_model_size_overflow: forward_model(&tiny_model(), Sequences::new(&[0.0; 2], usize::MAX, 2), Precision::F32)
    => ReferenceError::SizeOverflow { what: "T * B * I" }, ["T * B * I", &usize::MAX.to_string()]);

// ---------------------------------------------------------------------------------------------
// gpu: Gpu::new, try_default_gpu
// ---------------------------------------------------------------------------------------------

/// Without a usable device (this CPU machine), every ordinal gives `NoDriver` or `NoDevice` and
/// nothing panics; with one, an ordinal past the last device gives `NoDevice` naming it.
#[test]
fn gpu_new_ordinal_out_of_range() {
    let opened = std::panic::catch_unwind(sprnn::try_default_gpu).expect("try_default_gpu panicked");
    match opened.expect("try_default_gpu gives Ok(None) without a device") {
        None => {
            for ordinal in [0, 1, 7, u32::MAX] {
                let r = std::panic::catch_unwind(|| Gpu::new(ordinal)).expect("Gpu::new panicked");
                match r {
                    Err(e @ Error::NoDriver { .. }) => says(&e, &["no NVIDIA driver"]),
                    Err(e @ Error::NoDevice { ordinal: o }) => {
                        assert_eq!(o, ordinal);
                        if ordinal > 0 {
                            says(&e, &[&format!("ordinal {ordinal}")]);
                        }
                    }
                    other => panic!("ordinal {ordinal}: expected NoDriver or NoDevice, got {other:?}"),
                }
            }
        }
        Some(_) => {
            let e = Gpu::new(u32::MAX).unwrap_err();
            assert!(matches!(e, Error::NoDevice { ordinal: u32::MAX }), "{e:?}");
            says(&e, &[&format!("ordinal {}", u32::MAX)]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// one validation path: the CPU reference refuses what the GPU refuses, with the same error
// ---------------------------------------------------------------------------------------------

/// A bad layer or input, as `(name, cell, w_hh, b_hh, u, steps, batch, h0, c0)`.
type Parity = (&'static str, Cell, Csr, Vec<f32>, Vec<f32>, usize, usize, Option<Vec<f32>>, Option<Vec<f32>>);

/// Every case the GPU refuses before launching, each with a layer that is otherwise fine.
pub(crate) fn parity_cases() -> Vec<Parity> {
    let ok = |cell: Cell, h: usize| random_recurrent(3, cell.gates() * h, h, 0.5, 0.9).unwrap();
    let u = |cell: Cell, h: usize, t: usize, b: usize| vec![0.1f32; t * b * cell.gates() * h];
    let mut big = Csr::from_dense(&[0.5, 0.0, 0.25, 0.125], 2, 2).unwrap();
    big = big.map_values(|v| if v == 0.25 { 70_000.0 } else { v }).unwrap();
    let mut nan_u = u(Cell::Gru, 4, 2, 1);
    nan_u[5] = f32::NAN;
    let mut inf_b = vec![0.0; 16];
    inf_b[3] = f32::INFINITY;
    vec![
        ("H = 0", Cell::RnnTanh, Csr::new(0, 0, vec![0], vec![], vec![]).unwrap(), vec![], vec![], 1, 1, None, None),
        ("H > 65535", Cell::RnnTanh, Csr::new(65_536, 65_536, vec![0; 65_537], vec![], vec![]).unwrap(), vec![0.0; 65_536], vec![0.0; 65_536], 1, 1, None, None),
        ("W_hh not G*H x H", Cell::Lstm, ok(Cell::Gru, 4), vec![0.0; 12], u(Cell::Gru, 4, 1, 1), 1, 1, None, None),
        ("batch 0", Cell::Gru, ok(Cell::Gru, 4), vec![0.0; 12], vec![], 1, 0, None, None),
        ("weight beyond fp16", Cell::RnnTanh, big, vec![0.0; 2], vec![0.0; 2], 1, 1, None, None),
        ("NaN in u", Cell::Gru, ok(Cell::Gru, 4), vec![0.0; 12], nan_u, 2, 1, None, None),
        ("inf in b_hh", Cell::Lstm, ok(Cell::Lstm, 4), inf_b, u(Cell::Lstm, 4, 1, 1), 1, 1, None, None),
        ("NaN in h0", Cell::RnnTanh, ok(Cell::RnnTanh, 4), vec![0.0; 4], u(Cell::RnnTanh, 4, 1, 2), 1, 2, Some(vec![0.0, f32::NAN, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]), None),
        ("-inf in c0", Cell::Lstm, ok(Cell::Lstm, 4), vec![0.0; 16], u(Cell::Lstm, 4, 1, 1), 1, 1, None, Some(vec![0.0, 0.0, f32::NEG_INFINITY, 0.0])),
    ]
}

/// The reference's refusal of each case is the shared check's ([`sprnn::validate`]), and for
/// the layer checks also what the planner (the GPU layer's next step) says.
#[test]
fn reference_refuses_what_the_gpu_refuses_with_the_same_error() {
    for (name, cell, w, b, u, steps, batch, h0, c0) in parity_cases() {
        let e = forward_u(cell, &w, &b, Sequences::new(&u, steps, batch).with_state(h0.as_deref(), c0.as_deref()), Precision::DeviceFaithful)
            .expect_err(name);
        let shared: String = match sprnn::validate::layer(cell, &w, batch) {
            Err(p) => {
                assert_eq!(e, ReferenceError::Layer(p.clone()), "{name}");
                assert_eq!(plan(&w, cell, batch, &DeviceInfo::h200(), &PlanOptions::default()).unwrap_err(), p, "{name}");
                p.to_string()
            }
            Ok(_) => {
                let values = [("b_hh", Some(&b)), ("u", Some(&u)), ("h0", h0.as_ref()), ("c0", c0.as_ref())];
                let nf = values.iter().find_map(|(n, v)| v.and_then(|v| sprnn::validate::finite(n, v).err())).expect(name);
                // (Debug, not ==: NaN is not equal to itself.)
                assert_eq!(format!("{e:?}"), format!("{:?}", ReferenceError::NotFinite(nf)), "{name}");
                // The GPU layer's error for it (Error::Input) reads the same.
                assert_eq!(Error::from(nf).to_string(), nf.to_string(), "{name}");
                nf.to_string()
            }
        };
        assert_eq!(e.to_string(), shared, "{name}");
        // The other precisions refuse the same.
        for p in [Precision::F32, Precision::F64] {
            let e2 = forward_u(cell, &w, &b, Sequences::new(&u, steps, batch).with_state(h0.as_deref(), c0.as_deref()), p).unwrap_err();
            assert_eq!(format!("{e2:?}"), format!("{e:?}"), "{name} {p:?}");
        }
    }
}

/// The whole-model reference refuses a weight beyond fp16 and a NaN in x as the GPU model does.
#[test]
fn reference_model_refuses_what_the_gpu_model_refuses() {
    let m = tiny_model();
    let (steps, batch, input) = (2, 1, m.input_size());
    let mut x = vec![0.0f32; steps * batch * input];
    x[1] = f32::NAN;
    let e = forward_model(&m, Sequences::new(&x, steps, batch), Precision::F64).unwrap_err();
    assert_eq!(e.to_string(), "invalid x: element 1 is NaN (values must be finite)");
    let e = forward_model(&m, Sequences::new(&[], 0, 0), Precision::F64).unwrap_err();
    assert_eq!(e, ReferenceError::Layer(PlanError::ZeroBatch));
}

// ---------------------------------------------------------------------------------------------
// one error type: weights, reference and GPU errors all `?` into sprnn::Error
// ---------------------------------------------------------------------------------------------

/// The README's whole-model example, verbatim but for the file name: it compiles with
/// `sprnn::Result` (weight-file errors convert with `?`).
fn readme_model_example(path: &std::path::Path, x: &[f32], steps: usize) -> sprnn::Result<Vec<f32>> {
    let weights = ModelWeights::load(path, Cell::Lstm)?;
    let mut model = sprnn::Model::new(&Gpu::new(0)?, &weights, 4, &sprnn::ModelOptions::default())?;
    let out = model.forward(x, steps, None, None)?;
    Ok(out.output)
}

#[test]
fn weights_and_reference_errors_convert_to_the_crate_error() {
    let e = readme_model_example(std::path::Path::new("/nonexistent/lstm.safetensors"), &[], 1).unwrap_err();
    assert!(matches!(e, Error::Weights(WeightsError::Io { .. })), "{e:?}");
    let run = || -> sprnn::Result<()> {
        let (w, b) = tiny();
        forward_u(Cell::RnnTanh, &w, &b, Sequences::new(&[0.0; 3], 1, 1), Precision::F32)?;
        Ok(())
    };
    let e = run().unwrap_err();
    assert!(matches!(e, Error::Reference(ReferenceError::Length { what: "u", .. })), "{e:?}");
    says(&e, &["u has 3 values, expected 2"]);
}

// ---------------------------------------------------------------------------------------------
// layout::LaunchContract: the argument checks of every forward entry point, without a GPU (the
// layer calls these same checks first; `validation_gpu.rs` checks the layer says the same)
// ---------------------------------------------------------------------------------------------

/// The contract of a planned layer of `cell` with H = 256 at batch 2 (the GPU tests' layer).
fn contract(cell: Cell) -> LaunchContract {
    let w = random_recurrent(5, cell.gates() * 256, 256, 0.1, 0.9).unwrap();
    let p = plan(&w, cell, 2, &DeviceInfo::h200(), &PlanOptions::default()).unwrap();
    let c = LaunchContract::of(&p);
    assert_eq!((c.cell, c.hidden, c.batch), (cell, 256, 2));
    c
}

/// The error's argument is `name`, and the layer's `Error::Input` says the same.
fn arg_err(r: Result<(), ArgumentError>, name: &str) -> ArgumentError {
    let e = r.unwrap_err();
    assert_eq!(e.name, name, "{e}");
    let layer_error = Error::from(e.clone());
    assert!(matches!(&layer_error, Error::Input { name: n, .. } if *n == e.name), "{layer_error:?}");
    assert_eq!(layer_error.to_string(), e.to_string());
    e
}

#[test]
fn contract_steps_zero() {
    says(&arg_err(contract(Cell::RnnTanh).check_input(0, 0), "steps"), &["0", "at least one step"]);
}

#[test]
fn contract_too_many_steps_for_32_bit_indices() {
    let c = contract(Cell::Lstm);
    let max = u32::MAX as usize / (2 * 4 * 256);
    c.check_steps(max).expect("the largest step count that fits");
    let e = arg_err(c.check_input(max + 1, 0), "steps");
    says(&e, &[&format!("{} steps", max + 1), &u32::MAX.to_string(), &format!("at most {max} steps")]);
}

#[test]
fn contract_steps_whose_size_wraps_around() {
    let c = contract(Cell::RnnTanh);
    // 2^64 / (B·H) steps: T·B·G·H wraps to 0, which matches an empty U if unchecked.
    let steps = (1usize << 63) / (2 * 256) * 2;
    says(&arg_err(c.check_input(steps, 0), "steps"), &[&format!("{steps} steps"), &u32::MAX.to_string()]);
}

#[test]
fn contract_u_wrong_length() {
    let c = contract(Cell::Gru);
    let n = c.input_len(4);
    assert_eq!(n, 4 * 2 * 3 * 256);
    c.check_input(4, n).expect("the right length");
    says(&arg_err(c.check_input(4, n - 1), "u"), &[&format!("{} values", n - 1), &format!("expected {n}"), "T*B*G*H"]);
}

#[test]
fn contract_u_not_finite() {
    let mut u = vec![0.1f64; 10];
    u[7] = f64::NAN;
    says(&arg_err(sprnn::layout::contract::check_finite("u", u.iter().copied()), "u"), &["element 7 is NaN", "must be finite"]);
    u[7] = f64::NEG_INFINITY;
    says(&arg_err(sprnn::layout::contract::check_finite("u", u), "u"), &["element 7 is -inf"]);
}

#[test]
fn contract_outputs_wrong_length() {
    let c = contract(Cell::RnnTanh);
    c.check_output(3, 3 * 2 * 256, 2 * 256).expect("the right lengths");
    says(&arg_err(c.check_output(3, 3 * 2 * 256 - 1, 2 * 256), "output h"), &["expected 1536", "T*B*H"]);
    says(&arg_err(c.check_output(3, 3 * 2 * 256, 1), "output c"), &["1 values", "expected 512", "B*H"]);
}

#[test]
fn contract_h0_wrong_length_and_not_finite() {
    let c = contract(Cell::RnnTanh);
    c.check_state(Some(&[0.5; 512]), None).expect("a good h0");
    says(&arg_err(c.check_state(Some(&[0.0; 3]), None), "h0"), &["3 values", "expected 512", "B*H"]);
    says(&arg_err(c.check_state(Some(&[f32::INFINITY; 512]), None), "h0"), &["element 0 is inf", "must be finite"]);
}

#[test]
fn contract_c0_only_for_lstm_with_its_length_and_finite() {
    says(&arg_err(contract(Cell::Gru).check_state(None, Some(&[0.0; 512])), "c0"), &["gru layer", "only LSTM has a cell state"]);
    let c = contract(Cell::Lstm);
    c.check_state(Some(&[0.1; 512]), Some(&[0.2; 512])).expect("good h0 and c0");
    says(&arg_err(c.check_state(None, Some(&[0.0; 5])), "c0"), &["5 values", "expected 512"]);
    let mut c0 = vec![0.0; 512];
    c0[511] = f32::NAN;
    says(&arg_err(c.check_state(None, Some(&c0)), "c0"), &["element 511 is NaN", "must be finite"]);
}
