//! The in-place path's reach into burn's CPU backends: a parameter's or a
//! gradient's own storage as a slice, on flex and on ndarray.

// burn 0.22 deprecates ndarray in favour of flex; it is still used, and the
// adapter supports it.
#![allow(deprecated)]

use burn::tensor::{DType, Device, Tensor};
use downhill::Real;

/// The element types the in-place path updates: f32 and f64.
pub(crate) trait Direct: Real + burn::tensor::Element {
    /// burn's name for the type.
    const DTYPE: DType;
    /// The storage of `t` as one contiguous slice of `Self`, made unique
    /// and contiguous first (a copy only when it is shared or strided).
    fn slice_mut(t: &mut Prim) -> &mut [Self];
    /// The storage of `t` as one contiguous slice to read, made contiguous
    /// first if it is strided (never copied for being shared).
    fn slice(t: &mut Prim) -> &[Self];
}

/// A float tensor of a CPU backend whose storage the adapter can reach.
pub(crate) enum Prim {
    #[cfg(feature = "flex")]
    Flex(burn::backend::flex::FlexTensor),
    #[cfg(feature = "ndarray")]
    NdArray(burn::backend::ndarray::NdArrayTensor),
}

/// Whether `device` (autodiff or not) is a CPU backend the in-place path
/// reaches.
pub(crate) fn reachable(device: &Device) -> bool {
    use burn::backend::DispatchDevice;
    #[allow(unreachable_patterns)]
    match device.clone().inner().as_dispatch() {
        #[cfg(feature = "flex")]
        DispatchDevice::Flex(_) => true,
        #[cfg(feature = "ndarray")]
        DispatchDevice::NdArray(_) => true,
        _ => false,
    }
}

impl Prim {
    /// The primitive of a tensor without autodiff on a reachable device
    /// (checked by the caller with [`reachable`]).
    pub(crate) fn take<const D: usize>(t: Tensor<D>) -> Prim {
        #[cfg(feature = "flex")]
        if matches!(
            t.device().as_dispatch(),
            burn::backend::DispatchDevice::Flex(_)
        ) {
            return Prim::Flex(
                t.try_into_primitive::<burn::backend::Flex>()
                    .expect("a flex tensor on the flex device"),
            );
        }
        #[cfg(feature = "ndarray")]
        {
            Prim::NdArray(
                t.try_into_primitive::<burn::backend::NdArray>()
                    .expect("checked by the caller: the device is reachable"),
            )
        }
        #[cfg(not(feature = "ndarray"))]
        unreachable!("checked by the caller: the device is reachable")
    }

    /// Back into a tensor.
    pub(crate) fn into_tensor<const D: usize>(self) -> Tensor<D> {
        match self {
            #[cfg(feature = "flex")]
            Prim::Flex(t) => Tensor::from_primitive::<burn::backend::Flex>(t),
            #[cfg(feature = "ndarray")]
            Prim::NdArray(t) => Tensor::from_primitive::<burn::backend::NdArray>(t),
        }
    }
}

macro_rules! direct {
    ($t:ty, $dtype:expr, $nd:ident) => {
        impl Direct for $t {
            const DTYPE: DType = $dtype;

            fn slice(t: &mut Prim) -> &[Self] {
                match t {
                    #[cfg(feature = "flex")]
                    Prim::Flex(f) => {
                        if f.as_slice::<$t>().is_none() {
                            *f = f.to_contiguous();
                        }
                        f.as_slice::<$t>().expect("contiguous after to_contiguous")
                    }
                    #[cfg(feature = "ndarray")]
                    Prim::NdArray(n) => match n {
                        burn::backend::ndarray::NdArrayTensor::$nd(s) => {
                            if s.view().as_slice().is_none() {
                                let a = s.ensure_owned();
                                *a = a.as_standard_layout().into_owned().into_shared();
                            }
                            s.view().to_slice().expect("standard layout")
                        }
                        _ => panic!("checked by the caller: the dtype is {:?}", $dtype),
                    },
                }
            }

            fn slice_mut(t: &mut Prim) -> &mut [Self] {
                match t {
                    #[cfg(feature = "flex")]
                    Prim::Flex(f) => {
                        let offsets = f.layout().contiguous_offsets();
                        if offsets.is_none() {
                            *f = f.to_contiguous();
                        }
                        let (start, end) = f
                            .layout()
                            .contiguous_offsets()
                            .expect("contiguous after to_contiguous");
                        &mut f.storage_mut::<$t>()[start..end]
                    }
                    #[cfg(feature = "ndarray")]
                    Prim::NdArray(n) => match n {
                        burn::backend::ndarray::NdArrayTensor::$nd(s) => {
                            let a = s.ensure_owned();
                            if !a.is_standard_layout() {
                                *a = a.as_standard_layout().into_owned().into_shared();
                            }
                            a.as_slice_mut().expect("standard layout")
                        }
                        _ => panic!("checked by the caller: the dtype is {:?}", $dtype),
                    },
                }
            }
        }
    };
}

direct!(f32, DType::F32, F32);
direct!(f64, DType::F64, F64);
