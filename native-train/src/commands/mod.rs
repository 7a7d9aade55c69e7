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
    Ok(if gradient_checkpointing {
        device.gradient_checkpointing()
    } else {
        device
    })
}

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
