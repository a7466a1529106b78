//! Writing a model folder safely: whole files only, and one writer at a time.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Writes `bytes` to `path` so that a crash, a kill or a power loss leaves either the
/// old file or the new one: a synced temporary sibling `NAME.PID.tmp` (see
/// [`is_leftover_temporary`]), renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temporary_of(path);
    // A signal between this and the create leaves the file; the next lock removes it.
    held::set_temporary(Some(&tmp));
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    let written = write();
    held::set_temporary(None);
    written.with_context(|| {
        let _ = fs::remove_file(&tmp);
        format!("writing {} (via {})", path.display(), tmp.display())
    })?;
    // The rename itself reaches the disk with the folder's entry; not every
    // platform can sync a folder, and the file is whole either way.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// Makes the folder `dir` and its missing parents; true when it made `dir` itself.
/// An error names the path in the way: a file, or a link to nothing.
pub fn create_folder(dir: &Path) -> Result<bool> {
    let made = || -> std::io::Result<bool> {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)?;
        }
        match fs::create_dir(dir) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(false),
            Err(e) => Err(e),
        }
    };
    made().map_err(|e| {
        // Only one path of the chain can exist without being a folder.
        let in_the_way = dir
            .ancestors()
            .find(|p| !p.as_os_str().is_empty() && p.symlink_metadata().is_ok() && !p.is_dir());
        let why = match in_the_way {
            Some(p) if p.exists() => format!("{} is a file, not a folder", p.display()),
            Some(p) => match fs::read_link(p) {
                Ok(target) => format!(
                    "{} is a link to {}, which does not exist",
                    p.display(),
                    target.display()
                ),
                Err(_) => e.to_string(),
            },
            None => e.to_string(),
        };
        anyhow::anyhow!(
            "cannot create the folder {}: {why}; give another folder",
            dir.display()
        )
    })
}

fn temporary_of(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
}

/// Whether a file name is a temporary that [`write_atomic`] left for one of `names`
/// when its process was killed.
pub fn is_leftover_temporary(file_name: &str, names: &[&str]) -> bool {
    names.iter().any(|name| {
        file_name
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// Held while a command writes a model folder, so that two commands cannot mix their
/// files in one folder. It is an OS lock on `.lstm-edge.lock`, which names the holding
/// process: the lock ends with its process however that ends, so a killed run's
/// file is simply taken over. Taking it also shows that the folder takes files (a
/// read-only mount fails here, not when the first epoch's checkpoint is due).
#[derive(Debug)]
pub struct FolderLock {
    path: PathBuf,
    _file: File,
    /// Lets [`release_on_signal`] remove the file (and a folder the command made).
    registered: held::Registration,
    /// The command made the folder: it goes with the lock if it is still empty.
    made_folder: bool,
}

impl FolderLock {
    pub const FILE: &'static str = ".lstm-edge.lock";

    pub fn take(dir: &Path) -> Result<Self> {
        let path = dir.join(Self::FILE);
        // A holder removes the file as it ends: a lock won on a file that was
        // removed meanwhile guards nothing, so take the new one.
        for _ in 0..3 {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .with_context(|| match dir.is_dir() {
                    _ if path.is_dir() => format!(
                        "{} is a folder, where lstm-edge keeps its lock file: remove it",
                        path.display()
                    ),
                    true => format!(
                        "cannot write in {}: make it writable, or use another folder",
                        dir.display()
                    ),
                    false => format!("cannot write in {}: it does not exist", dir.display()),
                })?;
            match Self::try_lock_briefly(&file) {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    let holder = Self::holder_named_in(&mut file);
                    bail!(
                        "{holder} is writing to {}: wait for it to end, or use another folder",
                        dir.display()
                    );
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(e).with_context(|| {
                        format!(
                            "cannot lock {} (the folder's file system may not support locks): \
                             give an --out on a local disk",
                            path.display()
                        )
                    })
                }
            }
            if !is_same_file(&file, &path) {
                continue;
            }
            // Before the file names this process: once it does, a signal removes it.
            let lock = FolderLock {
                registered: held::register(&path, None),
                path,
                _file: file,
                made_folder: false,
            };
            let mut file = &lock._file;
            let named = file
                .set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| file.write_all(std::process::id().to_string().as_bytes()));
            named.with_context(|| format!("writing {}", lock.path.display()))?;
            return Ok(lock);
        }
        bail!(
            "cannot take {}: other lstm-edge commands keep replacing it; try again",
            path.display()
        )
    }
}

impl FolderLock {
    /// Who holds `dir`'s lock now (`another lstm-edge (process N)`), if another
    /// process does: for a reader to explain why the folder's files are not all there
    /// yet. The probe holds a shared lock for a moment, which [`Self::take`] waits out.
    pub fn holder(dir: &Path) -> Option<String> {
        let mut file = File::open(dir.join(Self::FILE)).ok()?;
        let mut pid = String::new();
        file.read_to_string(&mut pid).ok()?;
        if pid.trim() == std::process::id().to_string() {
            return None;
        }
        match file.try_lock_shared() {
            Err(std::fs::TryLockError::WouldBlock) => Some(Self::holder_named(&pid)),
            _ => None,
        }
    }

    /// `try_lock`, tried again for a few milliseconds: a [`Self::holder`] probe holds
    /// the lock that briefly, and must not make a command fail.
    fn try_lock_briefly(file: &File) -> Result<(), std::fs::TryLockError> {
        for _ in 0..5 {
            match file.try_lock() {
                Err(std::fs::TryLockError::WouldBlock) => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                done => return done,
            }
        }
        file.try_lock()
    }

    fn holder_named_in(file: &mut File) -> String {
        let mut pid = String::new();
        let _ = file.read_to_string(&mut pid);
        Self::holder_named(&pid)
    }

    fn holder_named(pid: &str) -> String {
        match pid.trim() {
            "" => "another lstm-edge".to_string(),
            pid => format!("another lstm-edge (process {pid})"),
        }
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        // Unless a signal handler has removed it already (see `release_on_signal`).
        if held::unregister(self.registered) {
            // Removed while still locked, so a waiting taker sees it gone (see `take`).
            let _ = fs::remove_file(&self.path);
            if let Some(folder) = self.path.parent().filter(|_| self.made_folder) {
                // Fails, as it should, once the folder holds anything.
                let _ = fs::remove_dir(folder);
            }
        }
    }
}

impl FolderLock {
    /// Says whether this command `made` the folder, which then goes with the lock
    /// if it is still empty (a command that failed or was stopped before it wrote
    /// anything; parents it made as well stay), whether the lock is dropped or
    /// released by [`release_on_signal`].
    pub fn remove_folder_if_made(&mut self, made: bool) {
        self.made_folder = made;
        let folder = self.path.parent().filter(|_| made);
        self.registered = held::register(&self.path, folder);
    }
}

/// For a signal handler that ends the process: removes the temporary of a
/// [`write_atomic`] under way, the file of the latest [`FolderLock`] taken and not
/// yet dropped, then its folder if the command made it and it is empty (see
/// [`FolderLock::remove_folder_if_made`]).
/// Async-signal-safe: lock-free atomics, `unlink(2)` and `rmdir(2)` on paths
/// that are never freed.
pub fn release_on_signal() {
    held::release();
}

#[cfg(unix)]
mod held {
    use std::ffi::{c_char, CString};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;
    use std::ptr::null_mut;
    use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

    /// The registered lock file and the folder to remove with it (null: none).
    static LOCK_FILE: AtomicPtr<c_char> = AtomicPtr::new(null_mut());
    static NEW_FOLDER: AtomicPtr<c_char> = AtomicPtr::new(null_mut());
    /// Set once a handler has released a lock: no drop removes a file after that.
    static RELEASED: AtomicBool = AtomicBool::new(false);
    /// The temporary file `write_atomic` is writing (null: none).
    static TEMPORARY: AtomicPtr<c_char> = AtomicPtr::new(null_mut());

    /// Leaks one path per write: a handler may still hold the previous one.
    pub(super) fn set_temporary(path: Option<&Path>) {
        TEMPORARY.store(path.map_or(null_mut(), leaked), Ordering::SeqCst);
    }

    /// A registered lock file's string, compared to know whose registration is current.
    #[derive(Clone, Copy, Debug)]
    pub struct Registration(*mut c_char);

    /// Leaked on purpose: a handler on another thread may still hold the pointer.
    fn leaked(path: &Path) -> *mut c_char {
        CString::new(path.as_os_str().as_bytes()).map_or(null_mut(), CString::into_raw)
    }

    pub(super) fn register(lock_file: &Path, folder: Option<&Path>) -> Registration {
        let lock_file = leaked(lock_file);
        NEW_FOLDER.store(folder.map_or(null_mut(), leaked), Ordering::SeqCst);
        LOCK_FILE.store(lock_file, Ordering::SeqCst);
        Registration(lock_file)
    }

    /// Ends `registration` if it is still the current one; false when a handler
    /// released the lock, so the file is gone (or, by now, another process's).
    pub(super) fn unregister(registration: Registration) -> bool {
        let current = LOCK_FILE.compare_exchange(
            registration.0,
            null_mut(),
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        if current.is_ok() {
            NEW_FOLDER.store(null_mut(), Ordering::SeqCst);
        }
        !RELEASED.load(Ordering::SeqCst)
    }

    pub(super) fn release() {
        let temporary = TEMPORARY.swap(null_mut(), Ordering::SeqCst);
        if !temporary.is_null() {
            // SAFETY: a NUL-terminated string that lives for the process. The name
            // carries this process's id, so it is no other process's file.
            unsafe { libc::unlink(temporary) };
        }
        RELEASED.store(true, Ordering::SeqCst);
        let folder = NEW_FOLDER.swap(null_mut(), Ordering::SeqCst);
        let lock_file = LOCK_FILE.swap(null_mut(), Ordering::SeqCst);
        if lock_file.is_null() {
            return;
        }
        // SAFETY: both are NUL-terminated strings that live for the process.
        unsafe {
            libc::unlink(lock_file);
            if !folder.is_null() {
                // Fails, as it should, once the folder holds anything.
                libc::rmdir(folder);
            }
        }
    }
}

#[cfg(not(unix))]
mod held {
    #[derive(Clone, Copy, Debug)]
    pub struct Registration;

    pub(super) fn register(_: &std::path::Path, _: Option<&std::path::Path>) -> Registration {
        Registration
    }

    pub(super) fn unregister(_: Registration) -> bool {
        true
    }

    pub(super) fn release() {}

    pub(super) fn set_temporary(_: Option<&std::path::Path>) {}
}

/// Whether the open `file` is the one at `path` now.
#[cfg(unix)]
fn is_same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

#[cfg(not(unix))]
fn is_same_file(_: &File, path: &Path) -> bool {
    path.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.blob");
        fs::write(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["model.blob"]);
        // A folder that does not exist: the error names the file.
        let err = write_atomic(&dir.path().join("gone/card.json"), b"x").unwrap_err();
        assert!(format!("{err:#}").contains("gone/card.json"), "{err:#}");
    }

    #[test]
    fn leftover_temporaries_are_told_from_other_files() {
        let names = ["model.blob", "card.json"];
        assert!(is_leftover_temporary("model.blob.123.tmp", &names));
        assert!(is_leftover_temporary(
            &temporary_of(Path::new("card.json")).display().to_string(),
            &names
        ));
        for other in [
            "model.blob",
            "model.blob.tmp",
            "model.blob.x1.tmp",
            "notes.1.tmp",
        ] {
            assert!(!is_leftover_temporary(other, &names), "{other}");
        }
    }

    #[test]
    fn one_command_at_a_time_writes_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let lock = FolderLock::take(dir.path()).unwrap();
        let err = FolderLock::take(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "another lstm-edge (process {}) is writing to",
                std::process::id()
            )),
            "{err}"
        );
        // This process's own lock is no other command's.
        assert_eq!(FolderLock::holder(dir.path()), None);
        fs::write(dir.path().join(FolderLock::FILE), "12345").unwrap();
        assert_eq!(
            FolderLock::holder(dir.path()),
            Some("another lstm-edge (process 12345)".to_string())
        );
        drop(lock);
        assert!(!dir.path().join(FolderLock::FILE).exists());
        assert_eq!(FolderLock::holder(dir.path()), None);
        // The file a killed run left holds no lock: it is taken over, whatever
        // process its number names now.
        fs::write(
            dir.path().join(FolderLock::FILE),
            std::process::id().to_string(),
        )
        .unwrap();
        assert_eq!(FolderLock::holder(dir.path()), None);
        let again = FolderLock::take(dir.path()).unwrap();
        drop(again);
        assert!(!dir.path().join(FolderLock::FILE).exists());
    }

    #[test]
    fn a_holder_probe_does_not_make_a_taker_fail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FolderLock::FILE);
        fs::write(&path, "12345").unwrap();
        // As `holder` does, for longer than one try but less than all of them.
        let probe = File::open(&path).unwrap();
        probe.try_lock_shared().unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(15));
            drop(probe);
        });
        let lock = FolderLock::take(dir.path()).expect("taken once the probe let go");
        release.join().unwrap();
        drop(lock);
    }

    #[test]
    fn a_folder_that_takes_no_files_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = FolderLock::take(&dir.path().join("missing")).unwrap_err();
        assert!(
            err.to_string().ends_with("missing: it does not exist"),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_folder_that_cannot_be_made_names_what_is_in_the_way() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("afile");
        fs::write(&file, b"x").unwrap();
        for out in [file.join("sub"), file.clone()] {
            let err = create_folder(&out).unwrap_err().to_string();
            assert!(
                err.contains(&format!("{} is a file, not a folder", file.display())),
                "{err}"
            );
        }
        let link = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("gone"), &link).unwrap();
        let err = create_folder(&link).unwrap_err().to_string();
        assert!(
            err.contains("dangling is a link to") && err.contains("gone, which does not exist"),
            "{err}"
        );
        let made = dir.path().join("a/b");
        assert!(create_folder(&made).unwrap());
        assert!(!create_folder(&made).unwrap());
    }
}
