//! What the adapter's tests share: a module of any number of parameters of
//! any rank, built from flat values, and its values read back.

#![allow(dead_code)]

pub mod fixtures;

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Device, Tensor, TensorData};

/// One parameter of rank 1 to 4.
#[derive(Module, Debug)]
pub enum AnyRank {
    R1(Param<Tensor<1>>),
    R2(Param<Tensor<2>>),
    R3(Param<Tensor<3>>),
    R4(Param<Tensor<4>>),
}

/// Parameters in a given order, as a fixture lists them.
#[derive(Module, Debug)]
pub struct Params {
    pub params: Vec<AnyRank>,
}

fn tensor<const D: usize>(
    values: &[f64],
    shape: &[usize],
    dtype: DType,
    device: &Device,
) -> Tensor<D> {
    Tensor::from_data(
        TensorData::new(values.to_vec(), shape.to_vec()),
        (device, dtype),
    )
}

impl Params {
    /// Trainable parameters with these values and shapes, in `dtype` on
    /// `device` (an autodiff device gives them gradients to track).
    pub fn new(values: &[Vec<f64>], shapes: &[Vec<usize>], dtype: DType, device: &Device) -> Self {
        let params = values
            .iter()
            .zip(shapes)
            .map(|(v, s)| match s.len() {
                1 => AnyRank::R1(Param::from_tensor(tensor(v, s, dtype, device))),
                2 => AnyRank::R2(Param::from_tensor(tensor(v, s, dtype, device))),
                3 => AnyRank::R3(Param::from_tensor(tensor(v, s, dtype, device))),
                4 => AnyRank::R4(Param::from_tensor(tensor(v, s, dtype, device))),
                r => panic!("rank {r}"),
            })
            .collect();
        Params { params }
    }

    /// The gradients `grads` (flat, in order) for these parameters.
    pub fn grads(&self, grads: &[Vec<f64>], dtype: DType) -> GradientsParams {
        let mut out = GradientsParams::new();
        for (p, g) in self.params.iter().zip(grads) {
            match p {
                AnyRank::R1(p) => out.register(p.id, like(&p.val(), g, dtype)),
                AnyRank::R2(p) => out.register(p.id, like(&p.val(), g, dtype)),
                AnyRank::R3(p) => out.register(p.id, like(&p.val(), g, dtype)),
                AnyRank::R4(p) => out.register(p.id, like(&p.val(), g, dtype)),
            }
        }
        out
    }

    /// Every parameter's values, flat, as f64.
    pub fn values(&self) -> Vec<Vec<f64>> {
        self.params
            .iter()
            .map(|p| match p {
                AnyRank::R1(p) => flat(p.val()),
                AnyRank::R2(p) => flat(p.val()),
                AnyRank::R3(p) => flat(p.val()),
                AnyRank::R4(p) => flat(p.val()),
            })
            .collect()
    }
}

/// `values` shaped like `t`, on its device without autodiff.
fn like<const D: usize>(t: &Tensor<D>, values: &[f64], dtype: DType) -> Tensor<D> {
    let device = t.device().inner();
    tensor(values, &t.dims(), dtype, &device)
}

/// A tensor's values, flat, as f64.
pub fn flat<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .expect("f64 values")
}
