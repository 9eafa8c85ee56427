//! A small filesystem of its own for the data directory, to fill it up without touching the
//! machine's disk: a size-limited tmpfs (needs root / CAP_SYS_ADMIN). Unmounted on drop.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted tmpfs and the ballast file that fills it.
pub struct SmallDisk {
    dir: tempfile::TempDir,
    mounted: bool,
    ballast: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `megabytes` on a new directory. `Err` says why it could not.
    pub fn mount(megabytes: u32) -> Result<SmallDisk, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m,mode=0700")])
            .arg("tmpfs")
            .arg(dir.path())
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount -t tmpfs refused: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        let ballast = dir.path().join("ballast");
        Ok(SmallDisk {
            dir,
            mounted: true,
            ballast,
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes the ballast until the filesystem is full (ENOSPC). Returns the bytes written.
    pub fn fill(&self) -> u64 {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.ballast)
            .expect("ballast");
        let chunk = vec![0xA5u8; 64 * 1024];
        let mut written = 0u64;
        let mut size = chunk.len();
        // Big chunks first, then smaller ones, so that the last bytes are taken too.
        while size > 0 {
            match file.write(&chunk[..size]) {
                Ok(0) => size /= 2,
                Ok(n) => written += n as u64,
                Err(_) => size /= 2,
            }
        }
        let _ = file.sync_all();
        written
    }

    /// Removes the ballast: space is back.
    pub fn free(&self) {
        let _ = std::fs::remove_file(&self.ballast);
    }

    /// Bytes available now.
    pub fn available(&self) -> u64 {
        let path = std::ffi::CString::new(self.path().as_os_str().as_encoded_bytes())
            .expect("path without NUL");
        // SAFETY: statvfs writes into the zeroed struct we own; the path is NUL-terminated.
        unsafe {
            let mut stat: libc::statvfs = std::mem::zeroed();
            if libc::statvfs(path.as_ptr(), &mut stat) == 0 {
                stat.f_bavail as u64 * stat.f_frsize as u64
            } else {
                0
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(self.dir.path()).status();
        }
    }
}
