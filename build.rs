//! Build script: the git revision the binary is built from, as `BUILD_REVISION` (for
//! `beacon_build_info` and Home Assistant's `sw_version`). A `BUILD_REVISION` set in the
//! environment (a package built outside git) wins; without either it is `unknown`.
//! Not `BEACON_…`: cargo also sets this variable when it runs the tests, and every
//! `BEACON_*` variable is read as a setting (an unknown one is an error).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=BUILD_REVISION");
    let revision = std::env::var("BUILD_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(git_revision)
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BUILD_REVISION={revision}");
}

/// The short commit id of HEAD; reruns when HEAD or the branch it names moves.
fn git_revision() -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    for path in ["HEAD", "packed-refs"].into_iter().chain(branch.as_deref()) {
        // A missing file would make cargo rerun this script on every build.
        if let Some(file) = git(&["rev-parse", "--git-path", path]) {
            if std::path::Path::new(&file).exists() {
                println!("cargo:rerun-if-changed={file}");
            }
        }
    }
    git(&["rev-parse", "--short=12", "HEAD"])
}
