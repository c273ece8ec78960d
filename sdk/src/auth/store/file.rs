//! [`FileStore`]: one JSON file per session in a directory, written atomically, with a lock
//! that works across processes.

use std::borrow::Cow;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::keyed::{KeyedGuard, KeyedMutex};
use super::{BoxFuture, SessionData, SessionStore, StoreError, StoreLock};

/// Encoded names longer than this are replaced by a hash (file names are limited to 255 bytes,
/// and temporary names add to it).
const MAX_ENCODED_NAME: usize = 200;

/// Temporary files older than this are taken to be left over from a crash.
const STALE_TEMP_AGE: Duration = Duration::from_secs(10 * 60);

/// The version of the session file format.
const FILE_VERSION: u32 = 1;

/// A session store keeping one JSON file per key in a directory, written atomically, with a
/// lock that works across processes.
///
/// `Debug` shows only the directory.
///
/// # Layout
///
/// A key is never used as a path. It is encoded into a file name of its own: bytes `a-z`, `0-9`
/// and `-` stay, every other byte becomes `_` and two hex digits, behind the prefix `k-` (so
/// `password:did:plc:abc` is `k-password_3adid_3aplc_3aabc`). The encoding is one-to-one,
/// contains no `/`, `.` or upper-case letters (so it is safe on case-insensitive file systems
/// too) and cannot name a parent directory. Keys whose encoding would be longer than 200 bytes
/// use `h-` and the SHA-256 of the key instead; the file records its key, so a mismatch is
/// detected rather than returned. For each key there may be:
///
/// * `<name>.json`: the session, a JSON object `{"version": 1, "key": …, "session": …}` where
///   `session` is the stored text, with `"expiresAt"` (Unix time in milliseconds) for a value
///   written by `set_expiring`. An expired file is treated as absent and replaced by the next
///   write;
/// * `<name>.lock`: the file that `lock` locks (kept; deleting it while someone waits on it
///   would break the lock). It holds the key's fencing counter, a decimal number incremented
///   by every acquisition;
/// * `<name>.wlock`: locked for the moment of each write (`set`, `delete`, `compare_and_set`),
///   so that a compare-and-set reads and replaces the file atomically across processes;
/// * `.<name>.<pid>-<n>.tmp`: a write in progress.
///
/// # Durability
///
/// `set` writes a temporary file in the same directory, flushes it to disk (`fsync`), renames it
/// over `<name>.json` and flushes the directory. A crash at any point leaves either the old or
/// the new session, never a partial one. A temporary file left behind by a crash is never read;
/// [`FileStore::open`] removes those older than ten minutes (younger ones may belong to a write
/// in progress in another process).
///
/// # Permissions (Unix)
///
/// Session, lock and temporary files are created with mode `0600`; the directory, when
/// `open` creates it, with `0700`. An existing directory is left as it is: give the store a
/// directory of its own.
///
/// # Locking
///
/// `lock(key)` first takes an in-process async mutex for the key (tasks queue fairly, and only
/// one of them waits on the file), then an exclusive OS lock on `<name>.lock` (`File::lock`
/// from the standard library: `flock` on Unix, `LockFileEx` on Windows), taken on a blocking
/// thread so that waiting never blocks the async runtime. It excludes every process that uses
/// a `FileStore` on the same directory. The OS releases the lock when the guard is dropped or
/// when the holding process dies, so a crashed holder never leaves a key locked. File locks
/// may be unreliable on network file systems; keep the directory on a local disk.
///
/// The lock is not a lease: it cannot be lost while it is held (a stalled holder keeps it, and
/// others time out), so fenced writes are refused only for the lock of another key.
pub struct FileStore {
    dir: PathBuf,
    label: String,
    locks: KeyedMutex,
}

impl FileStore {
    /// Opens the store in `dir`, creating the directory (mode `0700` on Unix) if it does not
    /// exist, and removes temporary files left behind by crashed writes.
    pub async fn open(dir: impl AsRef<Path>) -> Result<FileStore, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        let label = format!("file store {}", dir.display());
        let prepared = {
            let label = label.clone();
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || prepare_dir(&label, &dir)).await
        };
        match prepared {
            Ok(result) => result?,
            Err(err) => {
                return Err(StoreError::new(
                    format!("{label}: open: the blocking task failed"),
                    Some(Box::new(err)),
                ));
            }
        }
        Ok(FileStore {
            dir,
            label,
            locks: KeyedMutex::default(),
        })
    }

    /// The directory holding the session files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn names(&self, key: &str) -> Names {
        Names::new(&self.dir, key)
    }
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl SessionStore for FileStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<SessionData>, StoreError>> {
        Box::pin(async move {
            let ctx = Ctx::new(&self.label, "get", key);
            let names = self.names(key);
            blocking(&self.label, "get", key, move || {
                Ok(read_session(&ctx, &names)?.map(|(value, _)| value))
            })
            .await
        })
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a SessionData,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.put(key, value, None))
    }

    fn set_expiring<'a>(
        &'a self,
        key: &'a str,
        value: &'a SessionData,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.put(key, value, Some(ttl)))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let ctx = Ctx::new(&self.label, "delete", key);
            let names = self.names(key);
            blocking(&self.label, "delete", key, move || {
                let _write = lock_file(&ctx, &names.write_lock)?;
                remove_session(&ctx, &names)
            })
            .await
        })
    }

    fn compare_and_set<'a>(
        &'a self,
        key: &'a str,
        current: Option<&'a SessionData>,
        new: Option<&'a SessionData>,
        fence: Option<&'a StoreLock>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let ctx = Ctx::new(&self.label, "compare_and_set", key);
            if let Some(lock) = fence {
                lock.check_for(&self.label, key)?;
            }
            let fence = fence.map(StoreLock::fence);
            let names = self.names(key);
            let current = current.cloned();
            let contents = match new {
                Some(value) => Some(encode_file(&ctx, key, value, None)?),
                None => None,
            };
            let label = self.label.clone();
            blocking(&self.label, "compare_and_set", key, move || {
                let _write = lock_file(&ctx, &names.write_lock)?;
                if let Some(fence) = fence
                    && read_fence(&ctx, &names.lock)? != fence
                {
                    return Err(super::lease_lost(&label, &ctx.key));
                }
                let stored = read_session(&ctx, &names)?.map(|(value, _)| value);
                if stored != current {
                    return Ok(false);
                }
                match contents {
                    Some(contents) => write_atomically(&ctx, &names, &contents)?,
                    None => remove_session(&ctx, &names)?,
                }
                Ok(true)
            })
            .await
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        Box::pin(async move {
            let ctx = Ctx::new(&self.label, "list", prefix);
            let dir = self.dir.clone();
            let prefix = prefix.to_owned();
            blocking(&self.label, "list", &ctx.key.clone(), move || {
                list_keys(&ctx, &dir, &prefix)
            })
            .await
        })
    }

    fn lock<'a>(
        &'a self,
        key: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<StoreLock, StoreError>> {
        Box::pin(super::within(&self.label, key, timeout, async move {
            let keyed = self.locks.lock(key).await;
            let ctx = Ctx::new(&self.label, "lock", key);
            let names = self.names(key);
            // If this future is dropped while the thread waits, the thread still gets the lock
            // eventually and then drops the file at once, which releases it.
            let (file, fence) = blocking(&self.label, "lock", key, move || {
                let mut file = lock_file(&ctx, &names.lock)?;
                let fence = bump_fence(&ctx, &names.lock, &mut file)?;
                Ok((file, fence))
            })
            .await?;
            Ok(StoreLock::new(
                key,
                fence,
                FileLockGuard {
                    file,
                    _keyed: keyed,
                },
            ))
        }))
    }
}

impl FileStore {
    async fn put(
        &self,
        key: &str,
        value: &SessionData,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        let ctx = Ctx::new(&self.label, "set", key);
        let names = self.names(key);
        let expires = ttl
            .map(|ttl| now_ms().saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)));
        let contents = encode_file(&ctx, key, value, expires)?;
        blocking(&self.label, "set", key, move || {
            let _write = lock_file(&ctx, &names.write_lock)?;
            write_atomically(&ctx, &names, &contents)
        })
        .await
    }
}

/// Unix time in milliseconds.
fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// Reads the fencing counter from a held `.lock` file, increments and writes it back.
fn bump_fence(ctx: &Ctx, path: &Path, file: &mut File) -> Result<u64, StoreError> {
    let mut text = String::new();
    file.seek(io::SeekFrom::Start(0))
        .and_then(|_| file.read_to_string(&mut text))
        .map_err(|err| ctx.io("cannot read the fencing counter in", path, err))?;
    // A counter that cannot be read (an empty file of an earlier version) starts over at 0.
    let next = text.trim().parse::<u64>().unwrap_or(0).saturating_add(1);
    file.set_len(0)
        .and_then(|()| file.seek(io::SeekFrom::Start(0)))
        .and_then(|_| file.write_all(next.to_string().as_bytes()))
        .map_err(|err| ctx.io("cannot write the fencing counter in", path, err))?;
    Ok(next)
}

/// The fencing counter of a `.lock` file.
fn read_fence(ctx: &Ctx, path: &Path) -> Result<u64, StoreError> {
    let text = fs::read_to_string(path)
        .map_err(|err| ctx.io("cannot read the fencing counter in", path, err))?;
    Ok(text.trim().parse::<u64>().unwrap_or(0))
}

/// The keys under `prefix` of every live session file in `dir`.
fn list_keys(ctx: &Ctx, dir: &Path, prefix: &str) -> Result<Vec<String>, StoreError> {
    let entries = fs::read_dir(dir).map_err(|err| ctx.io("cannot list", dir, err))?;
    let mut keys = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|err| ctx.io("cannot list", dir, err))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        if !(stem.starts_with("k-") || stem.starts_with("h-")) {
            continue;
        }
        let path = entry.path();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            // Removed since the listing was read.
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(ctx.io("cannot read", &path, err)),
        };
        let Ok(file) = serde_json::from_slice::<SessionFile<'_>>(&bytes) else {
            // Not a session file (or a corrupt one, reported by `get` of its key).
            continue;
        };
        if file.key.starts_with(prefix) && file.is_live(now_ms()) {
            keys.push(file.key.into_owned());
        }
    }
    keys.sort();
    Ok(keys)
}

/// Holds the OS lock on a `.lock` file, then the in-process mutex.
struct FileLockGuard {
    file: File,
    _keyed: KeyedGuard,
}

impl Drop for FileLockGuard {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first makes the release explicit
        // and immediate even if something else still holds the descriptor. The in-process
        // mutex is released after this (field order).
        let _ = self.file.unlock();
    }
}

/// The file names of one key.
struct Names {
    dir: PathBuf,
    /// The encoded key (no extension).
    name: String,
    session: PathBuf,
    lock: PathBuf,
    write_lock: PathBuf,
}

impl Names {
    fn new(dir: &Path, key: &str) -> Names {
        let name = encode_key(key);
        Names {
            dir: dir.to_path_buf(),
            session: dir.join(format!("{name}.json")),
            lock: dir.join(format!("{name}.lock")),
            write_lock: dir.join(format!("{name}.wlock")),
            name,
        }
    }
}

/// The file name (without extension) for `key`: injective, and never a path.
fn encode_key(key: &str) -> String {
    let mut name = String::with_capacity(2 + key.len());
    name.push_str("k-");
    for byte in key.bytes() {
        match byte {
            b'a'..=b'z' | b'0'..=b'9' | b'-' => name.push(char::from(byte)),
            _ => {
                name.push('_');
                name.push(hex_digit(byte >> 4));
                name.push(hex_digit(byte & 0x0f));
            }
        }
    }
    if name.len() <= MAX_ENCODED_NAME {
        return name;
    }
    let digest = Sha256::digest(key.as_bytes());
    let mut name = String::with_capacity(2 + 64);
    name.push_str("h-");
    for byte in digest {
        name.push(hex_digit(byte >> 4));
        name.push(hex_digit(byte & 0x0f));
    }
    name
}

fn hex_digit(nibble: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(nibble & 0x0f)])
}

/// Which store, operation and key an error belongs to.
struct Ctx {
    label: String,
    op: &'static str,
    key: String,
}

impl Ctx {
    fn new(label: &str, op: &'static str, key: &str) -> Ctx {
        Ctx {
            label: label.to_owned(),
            op,
            key: key.to_owned(),
        }
    }

    fn io(&self, what: impl fmt::Display, path: &Path, err: io::Error) -> StoreError {
        StoreError::during(
            &self.label,
            self.op,
            &self.key,
            &format!("{what} {}", path.display()),
            Some(Box::new(err)),
        )
    }

    fn invalid(&self, path: &Path, why: impl fmt::Display) -> StoreError {
        StoreError::during(
            &self.label,
            self.op,
            &self.key,
            &format!("{} is not a valid session file: {why}", path.display()),
            None,
        )
    }
}

/// Runs blocking file work off the async runtime.
async fn blocking<T: Send + 'static>(
    label: &str,
    op: &str,
    key: &str,
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(err) => Err(StoreError::during(
            label,
            op,
            key,
            "the blocking task failed",
            Some(Box::new(err)),
        )),
    }
}

/// The on-disk form of one session.
#[derive(Serialize, Deserialize)]
struct SessionFile<'a> {
    version: u32,
    #[serde(borrow)]
    key: Cow<'a, str>,
    #[serde(borrow)]
    session: Cow<'a, str>,
    /// Unix time in milliseconds after which the session is absent.
    #[serde(rename = "expiresAt", default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

impl SessionFile<'_> {
    fn is_live(&self, now_ms: i64) -> bool {
        self.expires_at.is_none_or(|at| now_ms < at)
    }
}

fn encode_file(
    ctx: &Ctx,
    key: &str,
    value: &SessionData,
    expires_at: Option<i64>,
) -> Result<Vec<u8>, StoreError> {
    let file = SessionFile {
        version: FILE_VERSION,
        key: Cow::Borrowed(key),
        session: Cow::Borrowed(value.as_str()),
        expires_at,
    };
    // Serialising strings cannot fail; the error carries no contents anyway.
    let mut bytes = serde_json::to_vec_pretty(&file).map_err(|err| {
        StoreError::during(
            &ctx.label,
            ctx.op,
            &ctx.key,
            "cannot encode the session file",
            Some(Box::new(err)),
        )
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn prepare_dir(label: &str, dir: &Path) -> Result<(), StoreError> {
    let fail = |what: &str, err: io::Error| {
        StoreError::new(
            format!("{label}: open: {what} {}", dir.display()),
            Some(Box::new(err)),
        )
    };
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|err| fail("cannot create the directory", err))?;
    let entries = fs::read_dir(dir).map_err(|err| fail("cannot list the directory", err))?;
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !is_temp_name(name) {
            continue;
        }
        let Ok(modified) = entry.metadata().and_then(|meta| meta.modified()) else {
            continue;
        };
        if now.duration_since(modified).unwrap_or_default() >= STALE_TEMP_AGE {
            // Best effort: another process may be cleaning up at the same time.
            let _ = fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// Whether `name` is one of our temporary files (`.<k-…|h-…>.<pid>-<n>.tmp`).
fn is_temp_name(name: &str) -> bool {
    name.strip_prefix('.')
        .and_then(|rest| rest.strip_suffix(".tmp"))
        .is_some_and(|middle| middle.starts_with("k-") || middle.starts_with("h-"))
}

/// The live session of `names` and its expiry.
fn read_session(
    ctx: &Ctx,
    names: &Names,
) -> Result<Option<(SessionData, Option<i64>)>, StoreError> {
    let bytes = match fs::read(&names.session) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(ctx.io("cannot read", &names.session, err)),
    };
    // serde_json's messages may quote parts of the input, which is secret: report only the
    // kind of error and where it is.
    let file: SessionFile<'_> = serde_json::from_slice(&bytes).map_err(|err| {
        let kind = match err.classify() {
            serde_json::error::Category::Io => "read error",
            serde_json::error::Category::Syntax => "JSON syntax error",
            serde_json::error::Category::Data => "unexpected JSON structure",
            serde_json::error::Category::Eof => "truncated JSON",
        };
        ctx.invalid(
            &names.session,
            format!("{kind} at line {} column {}", err.line(), err.column()),
        )
    })?;
    if file.version != FILE_VERSION {
        return Err(ctx.invalid(
            &names.session,
            format!(
                "format version {} (this version of atlex reads {FILE_VERSION})",
                file.version
            ),
        ));
    }
    if file.key != ctx.key {
        return Err(ctx.invalid(
            &names.session,
            format!("it holds the session of key {:?}", file.key),
        ));
    }
    if !file.is_live(now_ms()) {
        return Ok(None);
    }
    Ok(Some((
        SessionData::new(file.session.into_owned()),
        file.expires_at,
    )))
}

/// Distinguishes temporary files of one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

fn write_atomically(ctx: &Ctx, names: &Names, contents: &[u8]) -> Result<(), StoreError> {
    let (temp_path, mut temp) = create_temp(ctx, names)?;
    let written = (|| {
        temp.write_all(contents)
            .map_err(|err| ctx.io("cannot write", &temp_path, err))?;
        temp.sync_all()
            .map_err(|err| ctx.io("cannot flush", &temp_path, err))?;
        drop(temp);
        fs::rename(&temp_path, &names.session).map_err(|err| {
            ctx.io(
                format!("cannot rename {} to", temp_path.display()),
                &names.session,
                err,
            )
        })
    })();
    if written.is_err() {
        // Best effort; a leftover is ignored by readers and removed by a later `open`.
        let _ = fs::remove_file(&temp_path);
    }
    written?;
    sync_dir(ctx, &names.dir)
}

fn create_temp(ctx: &Ctx, names: &Names) -> Result<(PathBuf, File), StoreError> {
    let pid = std::process::id();
    let mut attempts = 0;
    loop {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = names.dir.join(format!(".{}.{pid}-{n}.tmp", names.name));
        match create_private(&path) {
            Ok(file) => return Ok((path, file)),
            // A leftover of a crashed process that had the same process id.
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists && attempts < 16 => {
                attempts += 1;
            }
            Err(err) => return Err(ctx.io("cannot create", &path, err)),
        }
    }
}

fn remove_session(ctx: &Ctx, names: &Names) -> Result<(), StoreError> {
    match fs::remove_file(&names.session) {
        Ok(()) => sync_dir(ctx, &names.dir),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(ctx.io("cannot remove", &names.session, err)),
    }
}

/// Makes a rename or removal in `dir` durable.
#[cfg(unix)]
fn sync_dir(ctx: &Ctx, dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|err| ctx.io("cannot flush the directory", dir, err))
}

/// Directories cannot be opened as files here; the rename itself is durable enough.
#[cfg(not(unix))]
fn sync_dir(_ctx: &Ctx, _dir: &Path) -> Result<(), StoreError> {
    Ok(())
}

fn lock_file(ctx: &Ctx, path: &Path) -> Result<File, StoreError> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(path)
        .map_err(|err| ctx.io("cannot open the lock file", path, err))?;
    file.lock()
        .map_err(|err| ctx.io("cannot lock", path, err))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::store::suite::{Fixture, ODD_KEYS, long_key, store_suite};
    use std::sync::Arc;

    struct Files {
        // Keeps the directory alive; the store lives in a sub-directory so that tests can
        // check nothing is written beside it.
        root: tempfile::TempDir,
        store: Arc<FileStore>,
    }

    impl Files {
        fn dir(&self) -> PathBuf {
            self.root.path().join("sessions")
        }
    }

    impl Fixture for Files {
        type Store = FileStore;

        async fn new() -> Option<Files> {
            let root = tempfile::tempdir().unwrap();
            let store = FileStore::open(root.path().join("sessions")).await.unwrap();
            Some(Files {
                root,
                store: Arc::new(store),
            })
        }

        fn store(&self) -> &Arc<FileStore> {
            &self.store
        }

        async fn reopen(&self) -> Option<FileStore> {
            Some(FileStore::open(self.dir()).await.unwrap())
        }
    }

    store_suite!(Files);

    fn list(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn key_encoding_is_readable_and_safe() {
        assert_eq!(
            encode_key("password:did:plc:abc"),
            "k-password_3adid_3aplc_3aabc"
        );
        assert_eq!(encode_key(""), "k-");
        assert_eq!(encode_key(".."), "k-_2e_2e");
        assert_eq!(encode_key("a/b"), "k-a_2fb");
        assert_eq!(encode_key("a_2fb"), "k-a_5f2fb");
        assert_eq!(encode_key("Key"), "k-_4bey");
        assert_eq!(encode_key("é"), "k-_c3_a9");
        let long = encode_key(&long_key('a'));
        assert!(long.starts_with("h-") && long.len() == 66, "{long}");
        assert_ne!(long, encode_key(&long_key('b')));
        for key in ODD_KEYS {
            let name = encode_key(key);
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_".contains(&b)),
                "{key:?} -> {name:?}"
            );
        }
    }

    #[tokio::test]
    async fn odd_keys_never_escape_the_directory() {
        let fx = Files::new().await.unwrap();
        let mut keys: Vec<String> = ODD_KEYS.iter().map(|k| (*k).to_owned()).collect();
        keys.push(long_key('x'));
        for key in &keys {
            fx.store.set(key, &SessionData::new("{}")).await.unwrap();
            drop(fx.store.lock(key, Duration::from_secs(30)).await.unwrap());
        }
        // Only the store's own directory exists beside it...
        assert_eq!(list(fx.root.path()), vec!["sessions".to_owned()]);
        // ...and it holds one session file and two lock files per key, nothing else.
        let names = list(&fx.dir());
        assert_eq!(names.len(), 3 * keys.len(), "{names:?}");
        for name in &names {
            assert!(
                (name.starts_with("k-") || name.starts_with("h-"))
                    && (name.ends_with(".json")
                        || name.ends_with(".lock")
                        || name.ends_with(".wlock")),
                "unexpected file {name:?}"
            );
            assert!(fs::metadata(fx.dir().join(name)).unwrap().is_file());
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn files_and_directory_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let fx = Files::new().await.unwrap();
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&fx.dir()), 0o700);
        fx.store
            .set("password:did:plc:abc", &SessionData::new("{}"))
            .await
            .unwrap();
        drop(
            fx.store
                .lock("password:did:plc:abc", Duration::from_secs(30))
                .await
                .unwrap(),
        );
        for name in list(&fx.dir()) {
            assert_eq!(mode(&fx.dir().join(&name)), 0o600, "{name}");
        }
        // Nested directories created by `open` are private too.
        let nested = fx.root.path().join("a").join("b");
        FileStore::open(&nested).await.unwrap();
        assert_eq!(mode(&fx.root.path().join("a")), 0o700);
        assert_eq!(mode(&nested), 0o700);
    }

    #[tokio::test]
    async fn file_is_readable_json_with_its_key() {
        let fx = Files::new().await.unwrap();
        fx.store
            .set("password:did:plc:abc", &SessionData::new(r#"{"a":1}"#))
            .await
            .unwrap();
        let path = fx.dir().join("k-password_3adid_3aplc_3aabc.json");
        let json: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"version": 1, "key": "password:did:plc:abc", "session": "{\"a\":1}"})
        );
    }

    /// A crash between writing the temporary file and renaming it leaves the old session in
    /// place; the leftover is never read, and `open` removes it once it is stale.
    #[tokio::test]
    async fn torn_write_keeps_the_old_session() {
        let fx = Files::new().await.unwrap();
        let key = "password:did:plc:abc";
        let old = SessionData::new(r#"{"refreshJwt":"old"}"#);
        fx.store.set(key, &old).await.unwrap();

        // What a crashed `set` leaves: a complete or partial temporary file, never renamed.
        let name = encode_key(key);
        let partial = fx.dir().join(format!(".{name}.999999-0.tmp"));
        fs::write(
            &partial,
            br#"{"version":1,"key":"password:did:plc:abc","sess"#,
        )
        .unwrap();
        let complete = fx.dir().join(format!(".{name}.999999-1.tmp"));
        fs::write(
            &complete,
            encode_file(
                &Ctx::new("t", "set", key),
                key,
                &SessionData::new(r#"{"refreshJwt":"new"}"#),
                None,
            )
            .unwrap(),
        )
        .unwrap();

        assert_eq!(fx.store.get(key).await.unwrap(), Some(old.clone()));

        // A reopen leaves young leftovers alone (they may be another process's write in
        // progress) and removes stale ones.
        let reopened = FileStore::open(fx.dir()).await.unwrap();
        assert!(partial.exists() && complete.exists());
        let stale = SystemTime::now() - STALE_TEMP_AGE - Duration::from_secs(1);
        for path in [&partial, &complete] {
            File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(stale)
                .unwrap();
        }
        let unrelated = fx.dir().join(".not-ours.tmp");
        fs::write(&unrelated, b"x").unwrap();
        File::options()
            .write(true)
            .open(&unrelated)
            .unwrap()
            .set_modified(stale)
            .unwrap();
        let reopened_again = FileStore::open(fx.dir()).await.unwrap();
        assert!(!partial.exists() && !complete.exists());
        assert!(unrelated.exists(), "files that are not ours are left alone");

        assert_eq!(reopened.get(key).await.unwrap(), Some(old.clone()));
        assert_eq!(reopened_again.get(key).await.unwrap(), Some(old));
        // And writing still works after the crash.
        let newer = SessionData::new(r#"{"refreshJwt":"newer"}"#);
        reopened_again.set(key, &newer).await.unwrap();
        assert_eq!(fx.store.get(key).await.unwrap(), Some(newer));
        // A successful write leaves no temporary file behind.
        assert!(
            list(&fx.dir()).iter().all(|name| !is_temp_name(name)),
            "{:?}",
            list(&fx.dir())
        );
    }

    #[tokio::test]
    async fn corrupt_file_is_an_error_without_contents() {
        let fx = Files::new().await.unwrap();
        let key = "password:did:plc:abc";
        let path = fx.dir().join(format!("{}.json", encode_key(key)));
        for (contents, expect) in [
            (
                &br#"{"version":1,"key":"password:did:plc:abc","session":"secret-tok"#[..],
                "truncated JSON",
            ),
            (
                &br#"{"version":1,"key":7,"session":"secret-tok"}"#[..],
                "unexpected JSON",
            ),
            (
                &br#"{"version":2,"key":"password:did:plc:abc","session":"secret-tok"}"#[..],
                "format version 2",
            ),
            (
                &br#"{"version":1,"key":"other","session":"secret-tok"}"#[..],
                "key \"other\"",
            ),
            (&br#"secret-tok"#[..], "JSON syntax error"),
        ] {
            fs::write(&path, contents).unwrap();
            let err = fx.store.get(key).await.unwrap_err();
            let shown = format!("{err} / {err:?}");
            assert!(shown.contains(expect), "{shown}");
            assert!(shown.contains("password:did:plc:abc"), "{shown}");
            assert!(shown.contains("get"), "{shown}");
            assert!(!shown.contains("secret-tok"), "{shown}");
        }
    }

    #[tokio::test]
    async fn open_fails_clearly_when_the_path_is_a_file() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("not-a-dir");
        fs::write(&path, b"").unwrap();
        let err = FileStore::open(&path).await.unwrap_err();
        let shown = err.to_string();
        assert!(shown.contains("file store"), "{shown}");
        assert!(shown.contains("not-a-dir"), "{shown}");
    }

    #[tokio::test]
    async fn two_stores_on_one_directory_exclude_each_other() {
        // Two stores do not share the in-process mutex, so this exercises the OS lock alone
        // (as two processes would).
        let fx = Files::new().await.unwrap();
        let other = fx.reopen().await.unwrap();
        let held = fx.store.lock("k", Duration::from_secs(30)).await.unwrap();
        let attempt = tokio::time::timeout(
            Duration::from_millis(300),
            other.lock("k", Duration::from_secs(30)),
        )
        .await;
        assert!(
            attempt.is_err(),
            "the OS lock did not exclude a second store"
        );
        assert!(
            tokio::time::timeout(
                Duration::from_secs(5),
                other.lock("k2", Duration::from_secs(30))
            )
            .await
            .is_ok()
        );
        drop(held);
        assert!(
            tokio::time::timeout(
                Duration::from_secs(5),
                other.lock("k", Duration::from_secs(30))
            )
            .await
            .is_ok()
        );
    }
}
