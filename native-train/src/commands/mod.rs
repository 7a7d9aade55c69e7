//! One module per subcommand.

pub mod aggregate;
pub mod backend_check;
pub mod bench;
pub mod bench_kernels;
pub mod bench_train;
pub mod classify;
pub mod convert;
pub mod datasets;
pub mod features;
pub mod fewshot;
pub mod init;
pub mod params;
pub mod pretrain_demo;
pub mod quantize;
pub mod report;
pub mod train;

/// The autodiff device of a training command, and whether its model recomputes the MLP
/// expansions in the backward.
pub struct TrainingDevice {
    pub device: burn::tensor::Device,
    pub recompute_mlp: bool,
}

/// The training device on `backend`. `--gradient-checkpointing` means, on the cpu (flex)
/// backend, recomputing each layer's MLP expansion in the backward instead of keeping its GELU
/// input (`petl_ast::kernels::linear_gelu`); elsewhere burn's balanced checkpointing. burn's
/// strategy recomputes memory-bound ops and keeps every compute-bound output feeding one until
/// the backward starts: with the flex backend's fused kernels that raised peak memory
/// (BENCHMARKS.md, "Gradient checkpointing").
pub fn training_device(
    backend: petl_ast::backend::Backend,
    gradient_checkpointing: bool,
) -> anyhow::Result<TrainingDevice> {
    let device = backend.device().map_err(anyhow::Error::msg)?.autodiff();
    Ok(match (gradient_checkpointing, backend) {
        (false, _) => TrainingDevice {
            device,
            recompute_mlp: false,
        },
        (true, petl_ast::backend::Backend::Flex) => TrainingDevice {
            device,
            recompute_mlp: true,
        },
        (true, _) => TrainingDevice {
            device: device.gradient_checkpointing(),
            recompute_mlp: false,
        },
    })
}

/// `n` training devices of `backend` for `train --devices n` (see [`training_device`] for
/// `gradient_checkpointing`).
pub fn training_devices(
    backend: petl_ast::backend::Backend,
    n: usize,
    gradient_checkpointing: bool,
) -> anyhow::Result<Vec<burn::tensor::Device>> {
    let devices = backend.devices(n).map_err(anyhow::Error::msg)?;
    Ok(devices
        .into_iter()
        .map(|device| {
            let device = device.autodiff();
            if gradient_checkpointing && backend != petl_ast::backend::Backend::Flex {
                device.gradient_checkpointing()
            } else {
                device
            }
        })
        .collect())
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
