//! What this binary is: the package version and the git revision it was built from (set by
//! `build.rs`), for `/metrics` (`beacon_build_info`) and Home Assistant's `sw_version`.

/// The package version (`Cargo.toml`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The short git commit id of the build, or `unknown` when built outside git.
pub const REVISION: &str = env!("BUILD_REVISION");

/// `0.1.0 (3f2a9c1d0b7e)`: the version with the revision.
pub fn version_with_revision() -> String {
    format!("{VERSION} ({REVISION})")
}
