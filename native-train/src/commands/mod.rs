//! One module per subcommand.

pub mod aggregate;
pub mod bench;
pub mod bench_kernels;
pub mod bench_train;
pub mod classify;
pub mod convert;
pub mod datasets;
pub mod features;
pub mod params;
pub mod pretrain_demo;
pub mod report;
pub mod train;

/// The autodiff device of a training command on `backend`, with burn's gradient checkpointing
/// when asked (`--gradient-checkpointing`).
pub fn training_device(
    backend: petl_ast::backend::Backend,
    gradient_checkpointing: bool,
) -> anyhow::Result<burn::tensor::Device> {
    let device = backend.device().map_err(anyhow::Error::msg)?.autodiff();
    if !gradient_checkpointing {
        return Ok(device);
    }
    if backend == petl_ast::backend::Backend::Flex {
        eprintln!("{CHECKPOINTING_ON_FLEX}");
    }
    Ok(device.gradient_checkpointing())
}

/// Why `--gradient-checkpointing` does not pay on burn-flex (BENCHMARKS.md, "Gradient
/// checkpointing"): burn's balanced strategy recomputes memory-bound ops, and keeps every
/// compute-bound output that feeds one until the backward starts. This crate's fused kernels
/// (attention, GELU, LayerNorm) leave nothing worth recomputing, so only the extra copies remain.
const CHECKPOINTING_ON_FLEX: &str = "warning: --gradient-checkpointing raises peak memory on the \
    cpu (flex) backend, whose fused kernels already keep only what the backward needs (adapter \
    step, batch 8 x 100 frames: 0.96 GB with it, 0.70 GB without); it pays on ndarray (0.81 vs \
    1.12 GB) and on backends without those kernels";

/// An `.npy` file's bytes holding `values` (f32, row-major) with `shape`.
pub fn npy_f32(shape: &[u64], values: &[f32]) -> std::io::Result<Vec<u8>> {
    use npyz::WriterBuilder;
    let mut bytes = Vec::new();
    let mut writer = npyz::WriteOptions::<f32>::new()
        .default_dtype()
        .shape(shape)
        .writer(&mut bytes)
        .begin_nd()?;
    writer.extend(values.iter().copied())?;
    writer.finish()?;
    Ok(bytes)
}
