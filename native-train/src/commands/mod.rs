//! One module per subcommand.

pub mod aggregate;
pub mod bench;
pub mod bench_train;
pub mod classify;
pub mod convert;
pub mod datasets;
pub mod features;
pub mod params;
pub mod pretrain_demo;
pub mod report;
pub mod train;

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
