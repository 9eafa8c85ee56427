//! Build facts for `beacon --version`: the git revision the binary is built from.
//!
//! `BUILD_REVISION` in the build's environment wins (a packaged build from a tarball has no
//! `.git`); otherwise `git rev-parse --short=10 HEAD` with `-modified` when tracked files
//! differ from it; otherwise `unknown`. The result is `BUILD_REVISION` for `env!`. Not a
//! `BEACON_…` name: cargo also sets the variable when it runs the binary (`cargo run`, the
//! tests), and every `BEACON_*` variable is a configuration override.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=BUILD_REVISION");
    let revision = std::env::var("BUILD_REVISION")
        .ok()
        .filter(|r| !r.trim().is_empty())
        .or_else(git_revision)
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BUILD_REVISION={revision}");
}

/// `abcdef1234` (or `abcdef1234-modified`), and rebuilds when HEAD or the index moves.
fn git_revision() -> Option<String> {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let head = git(&["rev-parse", "--short=10", "HEAD"])?;
    // A worktree's HEAD and index are in its own git dir; branch refs in the common one.
    for path in ["HEAD", "index"] {
        if let Some(file) = git(&["rev-parse", "--git-path", path]) {
            println!("cargo:rerun-if-changed={file}");
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(file) = git(&["rev-parse", "--git-path", &branch]) {
            if std::path::Path::new(&file).exists() {
                println!("cargo:rerun-if-changed={file}");
            }
        }
    }
    let modified = Command::new("git")
        .args(["diff-index", "--quiet", "HEAD", "--"])
        .status()
        .is_ok_and(|status| !status.success());
    Some(if modified {
        format!("{head}-modified")
    } else {
        head
    })
}
