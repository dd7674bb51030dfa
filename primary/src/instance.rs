//! The instance lock and the runtime files an instance leaves behind.

use std::fs::File;
use std::path::{Path, PathBuf};

use conf::Config;
use shm_layout::Shm;

/// Why the instance could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another primary holds it.
    #[error("instance {name:?} (file prefix {prefix:?}) is already running{pid}; stop it first")]
    Busy { name: String, prefix: String, pid: String },
    /// The lock file could not be created.
    #[error("cannot create the instance lock {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// Exclusive locks on the instance name and on its EAL file prefix, held for the primary's
/// life (released by the kernel when the process dies, however it dies). Both matter: the
/// name owns the shm file, the prefix owns the hugepage files and DPDK's runtime directory.
#[derive(Debug)]
pub struct InstanceLock {
    _files: [File; 2],
    paths: [PathBuf; 2],
}

fn lock_file(path: &Path) -> Result<Option<File>, std::io::Error> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = File::options().create(true).truncate(false).write(true).open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

impl InstanceLock {
    /// Takes `<shm_dir>/<name>.lock` and `<dpdk runtime base>/<prefix>.lock`.
    ///
    /// # Errors
    /// [`LockError::Busy`] naming the live primary's pid when another instance holds either.
    pub fn acquire(cfg: &Config) -> Result<InstanceLock, LockError> {
        let name_path = cfg.instance.shm_dir.join(format!("{}.lock", cfg.instance.name));
        let prefix_dir = dpdk_runtime_dir(&cfg.instance.file_prefix);
        let prefix_path = prefix_dir.with_file_name(format!("{}.lock", cfg.instance.file_prefix));
        let busy = || {
            let pid = Shm::open(&cfg.shm_path())
                .map(|s| format!(" as pid {}", s.layout().header.primary_pid))
                .unwrap_or_default();
            LockError::Busy { name: cfg.instance.name.clone(), prefix: cfg.instance.file_prefix.clone(), pid }
        };
        let take = |p: &Path| lock_file(p).map_err(|source| LockError::Io { path: p.to_owned(), source });
        let name = take(&name_path)?.ok_or_else(busy)?;
        let prefix = take(&prefix_path)?.ok_or_else(busy)?;
        Ok(InstanceLock { _files: [name, prefix], paths: [name_path, prefix_path] })
    }

    /// The name's lock file.
    pub fn path(&self) -> &Path {
        &self.paths[0]
    }

    /// Removes the lock files, then releases the locks: the last step of a clean shutdown.
    /// (A starter that opened a file before its removal may then lock the removed file; it
    /// would need a third concurrent starter to do harm, and only to itself.)
    pub fn release(self) {
        for p in &self.paths {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// DPDK's runtime directory for a file prefix (`/var/run/dpdk/<prefix>` as root).
pub fn dpdk_runtime_dir(prefix: &str) -> PathBuf {
    let base = if nix::unistd::geteuid().is_root() {
        PathBuf::from("/var/run/dpdk")
    } else {
        std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp")).join("dpdk")
    };
    base.join(prefix)
}

/// Removes what an instance leaves on disk: its hugepage files (`<huge_dir>/<prefix>map_*`),
/// DPDK's runtime directory and the shm file. Returns the paths removed. Only call it while
/// holding the instance lock, with no process of the instance alive.
pub fn remove_runtime_files(cfg: &Config) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let map_prefix = format!("{}map_", cfg.instance.file_prefix);
    if let Ok(entries) = std::fs::read_dir(&cfg.instance.huge_dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&map_prefix) && std::fs::remove_file(e.path()).is_ok() {
                removed.push(e.path());
            }
        }
    }
    let rt = dpdk_runtime_dir(&cfg.instance.file_prefix);
    if std::fs::remove_dir_all(&rt).is_ok() {
        removed.push(rt);
    }
    let shm = cfg.shm_path();
    if std::fs::remove_file(&shm).is_ok() {
        removed.push(shm.clone());
    }
    for slot in 0..shm_layout::MAX_WORKERS {
        let p = shm_layout::conn::conn_shard_path(&shm, slot);
        if std::fs::remove_file(&p).is_ok() {
            removed.push(p);
        }
    }
    removed
}

/// The filesystem socket a memif vdev listens on, when it is a server on a socket file:
/// `(path, is_server)`. `None` for other vdevs and for abstract sockets.
fn memif_socket(vdev: &str) -> Option<(PathBuf, bool)> {
    let mut parts = vdev.split(',');
    if !parts.next()?.starts_with("net_memif") {
        return None;
    }
    let (mut path, mut server, mut abstract_ns) = (PathBuf::from("/run/memif.sock"), true, true);
    for kv in parts {
        match kv.split_once('=') {
            Some(("socket", v)) => path = PathBuf::from(v),
            Some(("role", v)) => server = v != "client",
            Some(("socket-abstract", v)) => abstract_ns = v != "no",
            _ => {}
        }
    }
    (!abstract_ns).then_some((path, server))
}

/// Makes the directories of memif socket files exist, and removes a memif server's socket file
/// left by an instance that died (DPDK refuses to listen on an existing path). Only call it
/// while holding the instance lock.
///
/// # Errors
/// The directory that cannot be created, or the stale socket that cannot be removed.
pub fn prepare_memif_sockets(cfg: &Config) -> Result<(), std::io::Error> {
    for p in &cfg.ports {
        let conf::Device::Vdev(v) = &p.device else { continue };
        let Some((path, server)) = memif_socket(v) else { continue };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        if server {
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::info!(port = %p.name, path = %path.display(), "removed a stale memif socket"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memif_socket_paths() {
        assert_eq!(
            memif_socket("net_memif0,role=server,socket=/run/x/a.sock,socket-abstract=no"),
            Some((PathBuf::from("/run/x/a.sock"), true))
        );
        assert_eq!(
            memif_socket("net_memif1,role=client,socket=/run/b.sock,socket-abstract=no"),
            Some((PathBuf::from("/run/b.sock"), false))
        );
        assert_eq!(memif_socket("net_memif0,socket=/run/a.sock"), None, "abstract by default");
        assert_eq!(memif_socket("net_tap0,iface=x"), None);
    }
}
