//! Picking the compute device by name (`--backend cpu|flex|ndarray|wgpu|cuda|libtorch`).

use std::str::FromStr;

use burn::tensor::Device;

/// A compute backend compiled into this build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// burn-flex on the CPU with this crate's kernels (matmuls on OpenBLAS with the `blas`
    /// feature, else the `gemm` crate): the default CPU backend.
    Flex,
    /// burn-ndarray on the CPU (deprecated in burn 0.22; kept for comparison).
    Ndarray,
    /// burn-wgpu: Vulkan, Metal or DX12 natively, WebGPU in the browser.
    Wgpu,
    /// CUDA on NVIDIA GPUs: burn-cuda with the `cuda` feature, else LibTorch's CUDA device
    /// with the `tch` feature.
    Cuda,
    /// LibTorch (burn-tch) on the CPU, for comparing against PyTorch's own kernels.
    LibTorch,
}

impl Backend {
    /// Names accepted by [`Backend::from_str`], for help texts (`cpu` = [`Backend::cpu`]).
    pub const NAMES: &'static [&'static str] =
        &["cpu", "flex", "ndarray", "wgpu", "cuda", "libtorch"];

    /// The backends compiled into this build.
    pub fn available() -> Vec<Backend> {
        let mut out = Vec::new();
        if cfg!(feature = "flex") {
            out.push(Backend::Flex);
        }
        if cfg!(feature = "ndarray") {
            out.push(Backend::Ndarray);
        }
        if cfg!(feature = "wgpu") {
            out.push(Backend::Wgpu);
        }
        if cfg!(any(feature = "cuda", feature = "tch")) {
            out.push(Backend::Cuda);
        }
        if cfg!(feature = "tch") {
            out.push(Backend::LibTorch);
        }
        out
    }

    /// [`Backend::available`] as a comma-separated list, for messages.
    pub fn available_names() -> String {
        Backend::available()
            .iter()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The CPU backend of this build: burn-flex when compiled in, else burn-ndarray.
    pub fn cpu() -> Backend {
        if cfg!(feature = "flex") || !cfg!(feature = "ndarray") {
            Backend::Flex
        } else {
            Backend::Ndarray
        }
    }

    /// The default device of this backend, checked to work (natively, a GPU backend runs one
    /// small op first), or one line saying what is missing: the cargo feature, the driver or
    /// the device, and the backends this build has.
    pub fn device(self) -> Result<Device, String> {
        let device = self.unchecked_device().map_err(|e| {
            format!(
                "{e}; backends in this build: {}",
                Backend::available_names()
            )
        })?;
        #[cfg(not(target_family = "wasm"))]
        if !matches!(self, Backend::Flex | Backend::Ndarray) {
            try_first_op(&device).map_err(|cause| {
                format!(
                    "the {self} backend cannot start ({}): {cause}; backends in this build: {}",
                    self.needs(),
                    Backend::available_names()
                )
            })?;
        }
        Ok(device)
    }

    /// `n` devices of this backend for data-parallel training, each checked to work: the GPUs
    /// 0…n−1 of a GPU backend; on a CPU backend `n` times the one device (replicas that share the
    /// cores, which checks the arithmetic of a split batch, not its speed).
    pub fn devices(self, n: usize) -> Result<Vec<Device>, String> {
        let main = self.device()?;
        if matches!(self, Backend::Flex | Backend::Ndarray | Backend::LibTorch) {
            return Ok(vec![main; n]);
        }
        (0..n)
            .map(|i| {
                let device = self.indexed_device(i)?;
                #[cfg(not(target_family = "wasm"))]
                try_first_op(&device)
                    .map_err(|cause| format!("{self} device {i} cannot start: {cause}"))?;
                Ok(device)
            })
            .collect()
    }

    /// GPU `index` of this backend.
    #[allow(unreachable_code, unused_variables)]
    fn indexed_device(self, index: usize) -> Result<Device, String> {
        match self {
            Backend::Wgpu => {
                #[cfg(feature = "wgpu")]
                return Ok(Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(index)));
            }
            Backend::Cuda => {
                #[cfg(feature = "cuda")]
                return Ok(Device::cuda(index));
                #[cfg(feature = "tch")]
                #[allow(deprecated)]
                return Ok(Device::libtorch_cuda(index));
            }
            Backend::Flex | Backend::Ndarray | Backend::LibTorch => {}
        }
        self.unchecked_device()
    }

    /// The burn backend that runs this name in this build (e.g. `burn-tch-cuda` for `cuda` built
    /// with the `tch` feature), for benchmark reports.
    pub fn implementation(self) -> &'static str {
        match self {
            Backend::Flex => "burn-flex",
            Backend::Ndarray => "burn-ndarray",
            Backend::Wgpu => "burn-wgpu",
            Backend::Cuda if cfg!(feature = "cuda") => "burn-cuda",
            Backend::Cuda => "burn-tch-cuda",
            Backend::LibTorch => "burn-tch-cpu",
        }
    }

    /// What a GPU backend needs from the machine, for messages.
    #[cfg(not(target_family = "wasm"))]
    fn needs(self) -> &'static str {
        match self {
            Backend::Wgpu => "it needs a GPU with a Vulkan, Metal or DX12 driver",
            Backend::Cuda if cfg!(feature = "cuda") => "it needs an NVIDIA GPU and its driver",
            Backend::Cuda => {
                "it needs an NVIDIA GPU, its driver and a CUDA build of LibTorch on the library path"
            }
            Backend::LibTorch => "it needs LibTorch's libraries on the library path",
            Backend::Flex | Backend::Ndarray => "",
        }
    }

    /// The default device of this backend, not yet used.
    #[allow(unreachable_code)]
    fn unchecked_device(self) -> Result<Device, String> {
        match self {
            Backend::Flex => {
                #[cfg(feature = "flex")]
                return Ok(Device::flex());
                Err(not_built("flex", "flex"))
            }
            Backend::Ndarray => {
                #[cfg(feature = "ndarray")]
                #[allow(deprecated)]
                return Ok(Device::ndarray());
                Err(not_built("ndarray", "ndarray"))
            }
            Backend::Wgpu => {
                #[cfg(feature = "wgpu")]
                return Ok(Device::wgpu(Default::default()));
                Err(not_built("wgpu", "wgpu"))
            }
            Backend::Cuda => {
                #[cfg(feature = "cuda")]
                return Ok(Device::cuda(0));
                // burn marks burn-tch deprecated in favour of its CubeCL backends; burn-cuda's
                // build downloads LLVM, so LibTorch is the CUDA backend that builds offline.
                #[cfg(feature = "tch")]
                #[allow(deprecated)]
                return Ok(Device::libtorch_cuda(0));
                Err(
                    "this build has no cuda backend; rebuild with `--features tch` (LibTorch's \
                     CUDA, docs/gpu.md) or `--features cuda` (burn-cuda)"
                        .into(),
                )
            }
            Backend::LibTorch => {
                #[cfg(feature = "tch")]
                #[allow(deprecated)]
                return Ok(Device::libtorch());
                Err(not_built("libtorch", "tch"))
            }
        }
    }
}

/// Runs one small op on `device`. GPU backends start their driver on first use and panic when
/// there is none; the panic is caught here (with the panic message kept off stderr) and returned.
#[cfg(not(target_family = "wasm"))]
fn try_first_op(device: &Device) -> Result<(), String> {
    use burn::tensor::Tensor;
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        (Tensor::<1>::ones([4], device) * 2.0)
            .sum()
            .into_scalar::<f32>()
    }));
    std::panic::set_hook(hook);
    match result {
        Ok(8.0) => Ok(()),
        Ok(sum) => Err(format!("a test sum gave {sum} instead of 8")),
        Err(panic) => Err(panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the driver failed to start".into())
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()),
    }
}

/// The device of the build's CPU backend ([`Backend::cpu`]), or an error when no CPU backend
/// was compiled in.
pub fn cpu_device() -> Result<Device, String> {
    Backend::cpu().device()
}

fn not_built(name: &str, feature: &str) -> String {
    format!("this build has no {name} backend; rebuild with `--features {feature}`")
}

impl FromStr for Backend {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(Backend::cpu()),
            "flex" => Ok(Backend::Flex),
            "ndarray" => Ok(Backend::Ndarray),
            "wgpu" | "webgpu" | "vulkan" => Ok(Backend::Wgpu),
            "cuda" => Ok(Backend::Cuda),
            "libtorch" | "tch" | "torch" => Ok(Backend::LibTorch),
            other => Err(format!(
                "unknown backend \"{other}\" (expected one of: {})",
                Backend::NAMES.join(", ")
            )),
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Flex => "flex",
            Backend::Ndarray => "ndarray",
            Backend::Wgpu => "wgpu",
            Backend::Cuda => "cuda",
            Backend::LibTorch => "libtorch",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_cpu_is_a_built_backend() {
        for name in Backend::NAMES {
            assert!(name.parse::<Backend>().is_ok(), "{name}");
        }
        assert!("tpu"
            .parse::<Backend>()
            .unwrap_err()
            .contains("expected one of"));
        assert!(Backend::available().contains(&Backend::cpu()));
        assert!(cpu_device().is_ok());
    }
}
