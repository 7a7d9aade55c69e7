//! Picking the compute device by name (`--backend cpu|flex|ndarray|wgpu|cuda`).

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
    /// CUDA on NVIDIA GPUs.
    Cuda,
}

impl Backend {
    /// Names accepted by [`Backend::from_str`], for help texts (`cpu` = [`Backend::cpu`]).
    pub const NAMES: &'static [&'static str] = &["cpu", "flex", "ndarray", "wgpu", "cuda"];

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
        if cfg!(feature = "cuda") {
            out.push(Backend::Cuda);
        }
        out
    }

    /// The CPU backend of this build: burn-flex when compiled in, else burn-ndarray.
    pub fn cpu() -> Backend {
        if cfg!(feature = "flex") || !cfg!(feature = "ndarray") {
            Backend::Flex
        } else {
            Backend::Ndarray
        }
    }

    /// The default device of this backend, or an error saying which cargo feature enables it.
    #[allow(unreachable_code)]
    pub fn device(self) -> Result<Device, String> {
        match self {
            Backend::Flex => {
                #[cfg(feature = "flex")]
                return Ok(Device::flex());
                Err(not_built("flex"))
            }
            Backend::Ndarray => {
                #[cfg(feature = "ndarray")]
                #[allow(deprecated)]
                return Ok(Device::ndarray());
                Err(not_built("ndarray"))
            }
            Backend::Wgpu => {
                #[cfg(feature = "wgpu")]
                return Ok(Device::wgpu(Default::default()));
                Err(not_built("wgpu"))
            }
            Backend::Cuda => {
                #[cfg(feature = "cuda")]
                return Ok(Device::cuda(0));
                Err(not_built("cuda"))
            }
        }
    }
}

/// The device of the build's CPU backend ([`Backend::cpu`]), or an error when no CPU backend
/// was compiled in.
pub fn cpu_device() -> Result<Device, String> {
    Backend::cpu().device()
}

fn not_built(name: &str) -> String {
    format!("this build has no {name} backend; rebuild with `--features {name}`")
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
