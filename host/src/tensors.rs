//! The tensors a forward pass takes and returns: input pre-activations on the host
//! ([`Input`]) or the device ([`DeviceInput`]), one layer's outputs on the host ([`Output`]) or
//! the device ([`DeviceOutput`]), and a whole model's outputs ([`ModelOutput`], the type the GPU
//! model and the CPU reference both return).
//!
//! Shapes are row-major, in PyTorch's layout: `U` is `[T][B][G·H]`, a layer's `h` `[T][B][H]`
//! and its final `c` `[B][H]`.

use cust::memory::{CopyDestination, DeviceBuffer};

#[cfg(feature = "test-hooks")]
use crate::driver;
use crate::error::{cust_err, Result};
use crate::gpu::Gpu;

/// Input pre-activations on the host.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// f32 values.
    F32(&'a [f32]),
    /// fp16 values.
    F16(&'a [half::f16]),
}

impl Input<'_> {
    /// Number of values.
    pub(crate) fn len(&self) -> usize {
        match self {
            Input::F32(v) => v.len(),
            Input::F16(v) => v.len(),
        }
    }
}

/// Input pre-activations on the device.
#[derive(Debug)]
pub enum DeviceInput {
    /// f32 values.
    F32(DeviceBuffer<f32>),
    /// fp16 values as their bit patterns.
    F16(DeviceBuffer<u16>),
}

impl DeviceInput {
    /// Uploads host input.
    pub fn upload(gpu: &Gpu, u: Input<'_>) -> Result<DeviceInput> {
        gpu.make_current()?;
        Ok(match u {
            Input::F32(v) => DeviceInput::F32(DeviceBuffer::from_slice(v).map_err(cust_err("cuMemAlloc"))?),
            Input::F16(v) => {
                let bits: Vec<u16> = v.iter().map(|x| x.to_bits()).collect();
                DeviceInput::F16(DeviceBuffer::from_slice(&bits).map_err(cust_err("cuMemAlloc"))?)
            }
        })
    }

    /// Allocates an f32 input of `len` values (zeros): the output buffer of
    /// [`crate::projection::InputProjection::project`].
    pub fn alloc_f32(gpu: &Gpu, len: usize) -> Result<DeviceInput> {
        gpu.make_current()?;
        Ok(DeviceInput::F32(DeviceBuffer::zeroed(len).map_err(cust_err("cuMemAlloc"))?))
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            DeviceInput::F32(b) => b.len(),
            DeviceInput::F16(b) => b.len(),
        }
    }

    /// Whether it holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills the values with NaN (fp16 or f32), so a value a kernel does not write cannot pass a
    /// check. Waits for the fill. (Test hook.)
    #[cfg(feature = "test-hooks")]
    pub fn poison(&mut self, gpu: &Gpu) -> Result<()> {
        gpu.make_current()?;
        let stream = gpu.stream();
        match self {
            DeviceInput::F32(b) => driver::memset_u32(b.as_device_ptr().as_raw(), f32::NAN.to_bits(), b.len(), stream)?,
            DeviceInput::F16(b) => driver::memset_u16(b.as_device_ptr().as_raw(), half::f16::NAN.to_bits(), b.len(), stream)?,
        }
        Ok(driver::synchronize(stream)?)
    }

    /// Copies the values to the host as f32 (fp16 converted exactly).
    pub fn to_host(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        gpu.make_current()?;
        Ok(match self {
            DeviceInput::F32(b) => {
                let mut v = vec![0f32; b.len()];
                b.copy_to(&mut v[..]).map_err(cust_err("cuMemcpyDtoH"))?;
                v
            }
            DeviceInput::F16(b) => {
                let mut v = vec![0u16; b.len()];
                b.copy_to(&mut v[..]).map_err(cust_err("cuMemcpyDtoH"))?;
                v.into_iter().map(|x| half::f16::from_bits(x).to_f32()).collect()
            }
        })
    }

    pub(crate) fn address(&self) -> u64 {
        match self {
            DeviceInput::F32(b) => b.as_device_ptr().as_raw(),
            DeviceInput::F16(b) => b.as_device_ptr().as_raw(),
        }
    }
}

/// Outputs of a forward pass on the host.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    /// Every hidden state, `[T][B][H]`.
    pub h: Vec<f32>,
    /// LSTM: the final cell state, `[B][H]`.
    pub c: Option<Vec<f32>>,
}

/// Outputs of a forward pass on the device, reusable across calls of the same length (copied
/// back, or poisoned, through the layer that writes them: [`DeviceOutput::to_host`]).
#[derive(Debug)]
pub struct DeviceOutput {
    /// Every hidden state, `[T][B][H]`.
    pub h: DeviceBuffer<f32>,
    /// Final cell state `[B][H]` (allocated for every cell; written by LSTM only).
    pub c: DeviceBuffer<f32>,
    pub(crate) steps: usize,
}

impl DeviceOutput {
    /// Steps this output holds.
    pub fn steps(&self) -> usize {
        self.steps
    }
}

/// Output of a whole model ([`crate::model::Model::forward`], and of the CPU reference's
/// [`crate::reference::forward_model`]), in PyTorch's layout (`batch_first = False`).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelOutput {
    /// Last layer's states, `[T][B][D*H]` (`D` = 2 when bidirectional: forward then reverse).
    pub output: Vec<f32>,
    /// Final state of every layer and direction, `[L*D][B][H]` (index `l * D + d`).
    pub h_n: Vec<f32>,
    /// Final LSTM cell states, `[L*D][B][H]`; `None` for the other cells.
    pub c_n: Option<Vec<f32>>,
}
