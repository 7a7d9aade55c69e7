//! The fused AdamW update on burn-flex tensors.

use burn::backend::tensor::FloatTensor;
use burn::backend::Flex;
use burn::tensor::DType;

use super::{contiguous, spans_buffer};
use crate::kernels::adamw::AdamWStep;

/// [`super::FusedKernels::adamw_step`] on burn-flex: the update runs in the buffers of `param`
/// and the moments when nothing else holds them (burn-flex copies a shared buffer first).
pub fn step(
    param: FloatTensor<Flex>,
    grad: FloatTensor<Flex>,
    moment_1: FloatTensor<Flex>,
    moment_2: FloatTensor<Flex>,
    step: AdamWStep,
) -> (FloatTensor<Flex>, FloatTensor<Flex>, FloatTensor<Flex>) {
    let shape = param.layout().shape().clone();
    for (name, x) in [
        ("gradient", &grad),
        ("moment", &moment_1),
        ("moment", &moment_2),
    ] {
        assert_eq!(x.layout().shape(), &shape, "adamw: {name} shape differs");
    }
    for x in [&param, &grad, &moment_1, &moment_2] {
        assert_eq!(x.dtype(), DType::F32, "adamw: the fused update takes f32");
    }
    let grad = contiguous(grad);
    let (mut param, mut moment_1, mut moment_2) = (
        whole_buffer(param),
        whole_buffer(moment_1),
        whole_buffer(moment_2),
    );
    crate::kernels::adamw::step(
        param.storage_mut(),
        super::f32_slice(&grad),
        moment_1.storage_mut(),
        moment_2.storage_mut(),
        step,
    );
    (param, moment_1, moment_2)
}

/// `x` when its elements are its whole buffer in order, else a contiguous copy: the update
/// writes the buffer from its first element to its last.
fn whole_buffer(x: FloatTensor<Flex>) -> FloatTensor<Flex> {
    if spans_buffer(&x) {
        x
    } else {
        x.to_contiguous()
    }
}
