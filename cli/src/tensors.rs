//! The `run` subcommand's files: input `u` (and optional `h0`, `c0`) in, `h` (and `c`) out, as
//! safetensors.
//!
//! Input file: tensor `u`, F32 or F16, shape `[T, B, G·H]` (`W_ih x_t + b_ih` for every step and
//! sequence, gates in PyTorch's order; **without** `b_hh`, which the layer adds); optional `h0`
//! and (LSTM) `c0`, F32 or F16, shape `[B, H]`. Other tensors are ignored. Output file: `h`, F32
//! `[T, B, H]` (every step's hidden state) and, for LSTM, `c`, F32 `[B, H]` (the final cell
//! state), with metadata `sprnn.cell` and `sprnn.engine`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use half::f16;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::{CliResult, Failure};

/// A floating-point tensor read from a file.
pub struct Tensor {
    /// Shape.
    pub shape: Vec<usize>,
    /// Values as f32 (F16 converted exactly).
    pub values: Vec<f32>,
    /// The values as stored, when they were F16.
    pub f16: Option<Vec<f16>>,
}

/// The tensors of a file by name.
pub struct File {
    bytes: Vec<u8>,
    path: String,
}

impl File {
    /// Reads `path` and checks that it is a safetensors file.
    pub fn read(path: &Path) -> CliResult<File> {
        let bytes = std::fs::read(path).map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
        let path = path.display().to_string();
        SafeTensors::deserialize(&bytes).map_err(|e| Failure::new(format!("{path}: not a valid safetensors file: {e}")))?;
        Ok(File { bytes, path })
    }

    /// Tensor `name`, `None` when absent; F32 or F16 only.
    pub fn get(&self, name: &str) -> CliResult<Option<Tensor>> {
        let st = SafeTensors::deserialize(&self.bytes).expect("checked when read");
        let t = match st.tensor(name) {
            Ok(t) => t,
            Err(_) => return Ok(None),
        };
        let data = t.data();
        let (values, f16) = match t.dtype() {
            Dtype::F32 => (data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(), None),
            Dtype::F16 => {
                let h: Vec<f16> = data.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]])).collect();
                (h.iter().map(|x| x.to_f32()).collect(), Some(h))
            }
            other => {
                return Err(Failure::new(format!("{}: tensor {name} has dtype {other:?}; F32 or F16 expected", self.path)))
            }
        };
        Ok(Some(Tensor { shape: t.shape().to_vec(), values, f16 }))
    }

    /// Path, for messages.
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// Longest safetensors header read by [`read_header`] (the format's own limit is 100 MB).
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// The JSON header of the safetensors file at `path`, read without the tensor data.
pub fn read_header(path: &Path) -> std::io::Result<serde_json::Value> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut n = [0u8; 8];
    f.read_exact(&mut n)?;
    let n = u64::from_le_bytes(n);
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    if n > MAX_HEADER_BYTES || n > f.metadata()?.len() {
        return Err(bad("header too long"));
    }
    let mut json = Vec::with_capacity(n as usize);
    f.take(n).read_to_end(&mut json)?;
    serde_json::from_slice(&json).map_err(|e| bad(&e.to_string()))
}

/// Writes F32 tensors `(name, shape, values)` with `metadata` to `path`, atomically: the bytes go
/// to a temporary file beside the target, are flushed to disk, and the temporary file is renamed
/// onto `path`. A failure (a full disk, say) leaves any previous file at `path` untouched and
/// removes the temporary file. When `path` is a symbolic link, the file it points to is replaced.
pub fn write(path: &Path, tensors: &[(&str, Vec<usize>, &[f32])], metadata: HashMap<String, String>) -> CliResult {
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let views: Vec<(&str, TensorView<'_>)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| (*name, TensorView::new(Dtype::F32, shape.clone(), b).expect("sizes follow the shapes")))
        .collect();
    let out = safetensors::serialize(views, &Some(metadata)).map_err(|e| Failure::new(format!("serialising the output: {e}")))?;
    write_atomically(path, &out).map_err(|e| Failure::new(format!("{}: {e}", path.display())))
}

/// Writes `bytes` to a temporary file in `path`'s folder and renames it onto `path` (the target
/// of `path` when it is a symbolic link).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path)?,
        _ => path.to_path_buf(),
    };
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target.file_name().ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let tmp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Whether `a` and `b` name the same file (through links, relative paths or hard links); `false`
/// when either does not exist.
pub fn same_file(a: &Path, b: &Path) -> bool {
    let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) else { return false };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        ma.dev() == mb.dev() && ma.ino() == mb.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = (ma, mb);
        matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y)
    }
}
