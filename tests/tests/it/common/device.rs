//! The GPU handle of the tests, with its visible skip. A file of its own so the CLI's tests,
//! which need nothing else from `common`, include it by path.

use std::sync::OnceLock;

use sprnn::Gpu;

/// Device 0, opened once per test binary; `None` (after printing "skipped: no CUDA device"
/// straight to the terminal, past libtest's capture) on a machine without one. With
/// `SPRNN_REQUIRE_GPU=1` (the GPU bundle sets it) a missing device fails the test instead.
pub fn gpu() -> Option<Gpu> {
    static GPU: OnceLock<Option<Gpu>> = OnceLock::new();
    let g = GPU.get_or_init(|| match sprnn::try_default_gpu() {
        Ok(g) => g,
        Err(e) => panic!("opening the GPU failed: {e}"),
    });
    if g.is_none() {
        if std::env::var("SPRNN_REQUIRE_GPU").is_ok_and(|v| v == "1") {
            panic!("SPRNN_REQUIRE_GPU=1 but there is no CUDA device");
        }
        use std::io::Write;
        let _ = writeln!(std::io::stderr().lock(), "skipped: no CUDA device");
    }
    g.clone()
}
