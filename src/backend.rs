//! Picking the compute device by name (`--backend ndarray|wgpu|cuda`).

use std::str::FromStr;

use burn::tensor::Device;

/// A compute backend compiled into this build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// burn-ndarray on the CPU.
    Ndarray,
    /// burn-wgpu: Vulkan, Metal or DX12 natively, WebGPU in the browser.
    Wgpu,
    /// CUDA on NVIDIA GPUs.
    Cuda,
}

impl Backend {
    /// Names accepted by [`Backend::from_str`], for help texts.
    pub const NAMES: &'static [&'static str] = &["ndarray", "wgpu", "cuda"];

    /// The backends compiled into this build.
    pub fn available() -> Vec<Backend> {
        let mut out = Vec::new();
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

    /// The default device of this backend, or an error saying which cargo feature enables it.
    #[allow(unreachable_code)]
    pub fn device(self) -> Result<Device, String> {
        match self {
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

fn not_built(name: &str) -> String {
    format!("this build has no {name} backend; rebuild with `--features {name}`")
}

impl FromStr for Backend {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "ndarray" | "cpu" => Ok(Backend::Ndarray),
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
            Backend::Ndarray => "ndarray",
            Backend::Wgpu => "wgpu",
            Backend::Cuda => "cuda",
        })
    }
}
