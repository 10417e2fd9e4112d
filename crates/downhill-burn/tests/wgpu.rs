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
    common::fixtures::check_all(&wgpu(), DType::F32, common::fixtures::Route::Chosen);
}

mod readback {
    use burn::module::{Module, Param};
    use burn::optim::GradientsParams;
    use burn::tensor::{Distribution, Tensor};
    use downhill_burn::{host_reads, BurnOptimizer, Config, NonFinite, Path};

    #[derive(Module, Debug)]
    struct Two {
        a: Param<Tensor<2>>,
        b: Param<Tensor<1>>,
    }

    /// Reads the adapter makes over `steps` steps of `cfg` on wgpu.
    fn reads(cfg: Config, steps: usize) -> (usize, Path) {
        let d = super::wgpu().autodiff();
        let dist = Distribution::Normal(0.0, 1.0);
        let mut m = Two {
            a: Param::from_tensor(Tensor::random([64, 32], dist, &d)),
            b: Param::from_tensor(Tensor::random([32], dist, &d)),
        };
        let ga = Tensor::<2>::random([64, 32], dist, &d.clone().inner());
        let gb = Tensor::<1>::random([32], dist, &d.clone().inner());
        let mut opt = BurnOptimizer::new(cfg).unwrap();
        let before = host_reads();
        for _ in 0..steps {
            let mut g = GradientsParams::new();
            g.register(m.a.id, ga.clone());
            g.register(m.b.id, gb.clone());
            m = opt.step(m, g).unwrap();
        }
        let n = host_reads() - before;
        // The values are there to read, afterwards.
        assert!(m.a.val().into_data().iter::<f32>().all(f32::is_finite));
        (n, opt.path().unwrap())
    }

    /// The state stays on the device: without the non-finite check and
    /// clipping by norm a step reads nothing back; with the check, one
    /// small vector per step; a rule without a device form goes through the
    /// host, and the count shows it.
    #[test]
    fn a_step_on_the_device_reads_nothing_back() {
        let adamw = || {
            "adamw(lr=1e-3,weight_decay=0.01)"
                .parse::<Config>()
                .unwrap()
        };
        assert_eq!(
            reads(adamw().non_finite(NonFinite::Unchecked), 5),
            (0, Path::Device)
        );
        assert_eq!(
            reads(adamw().non_finite(NonFinite::Unchecked).clip_value(0.1), 5),
            (0, Path::Device)
        );
        assert_eq!(reads(adamw(), 5), (5, Path::Device));
        assert_eq!(reads(adamw().clip_norm(1.0), 5), (5, Path::Device));
        let lamb = "lamb"
            .parse::<Config>()
            .unwrap()
            .non_finite(NonFinite::Unchecked);
        assert_eq!(reads(lamb, 5), (5 * 4, Path::Host));
    }
}
