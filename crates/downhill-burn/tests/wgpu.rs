//! The adapter on wgpu: on a machine without a GPU, Mesa's software Vulkan
//! driver (lavapipe, `apt-get install mesa-vulkan-drivers libvulkan1`),
//! which runs the very shaders a GPU would. Every fixture of a rule with a
//! device form passes on the device path in f32, within the fixtures
//! README's tolerance; a rule without one takes the host path and passes
//! too. Built with the crate's `wgpu` feature (`.ci/run`).

#![cfg(feature = "wgpu")]

mod common;

use burn::tensor::{DType, Device, DeviceKind};

fn wgpu() -> Device {
    Device::wgpu(DeviceKind::DefaultDevice)
}

#[test]
fn every_fixture_passes_on_wgpu_f32() {
    // Element-wise rules on the device path, the others through the host.
    common::fixtures::check_all(&wgpu(), DType::F32, false);
}
