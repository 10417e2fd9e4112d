//! The reference fixtures through the adapter on flex and ndarray: in
//! place in f64 and f32, and on the device path forced on the CPU
//! (`common/fixtures.rs` says how they are run and to what tolerance).

// burn 0.22 deprecates ndarray; it is still used, and the adapter supports it.
#![allow(deprecated)]

mod common;

use burn::tensor::{DType, Device};
use common::fixtures::{check_all, Route};

#[test]
fn every_fixture_passes_in_place_on_flex_f64() {
    check_all(&Device::flex(), DType::F64, Route::InPlace);
}

#[test]
fn every_fixture_passes_in_place_on_flex_f32() {
    check_all(&Device::flex(), DType::F32, Route::InPlace);
}

#[test]
fn every_fixture_passes_in_place_on_ndarray_f64() {
    check_all(&Device::ndarray(), DType::F64, Route::InPlace);
}

#[test]
fn every_fixture_passes_on_the_device_path_on_flex() {
    check_all(&Device::flex(), DType::F64, Route::Forced);
    check_all(&Device::flex(), DType::F32, Route::Forced);
}

#[test]
fn every_fixture_passes_on_the_device_path_on_ndarray() {
    check_all(&Device::ndarray(), DType::F64, Route::Forced);
}
