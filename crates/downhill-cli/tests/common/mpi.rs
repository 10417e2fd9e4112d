//! Running `downhill` under `mpirun` (feature `mpi`), shared by the MPI
//! test files: one job at a time, each under a timeout (a mismatched
//! collective would hang, not fail).

use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_downhill");
pub const DATA: &str = "builtin:fashion-mnist-small";
/// One job at a time.
pub static JOBS: Mutex<()> = Mutex::new(());

#[derive(Clone, Copy, Debug)]
pub enum Transport {
    /// Shared memory (OpenMPI's vader), the default between ranks on one machine.
    Shm,
    /// TCP over the loopback interface, as between machines.
    Tcp,
}

pub fn mpirun(ranks: usize, transport: Transport) -> Command {
    let mut c = Command::new("mpirun");
    c.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .args(["-n", &ranks.to_string(), "--oversubscribe"])
        .args(["--mca", "btl_vader_single_copy_mechanism", "none"]);
    if let Transport::Tcp = transport {
        c.args([
            "--mca",
            "btl",
            "self,tcp",
            "--mca",
            "btl_tcp_if_include",
            "lo",
        ]);
    }
    c
}

/// Waits for `child` at most `limit`; kills it and fails the test beyond.
pub fn wait(mut child: Child, limit: Duration, what: &str) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{what}: no end after {limit:?}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn spawn(mut c: Command) -> Child {
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpirun starts (apt-get install openmpi-bin)")
}

/// `downhill` on `ranks` ranks: under `mpirun`, or a plain process for 1.
pub fn downhill_on(ranks: usize, transport: Transport) -> Command {
    if ranks == 1 {
        return Command::new(BIN);
    }
    let mut c = mpirun(ranks, transport);
    c.arg(BIN);
    c
}
