//! Access tokens: the secret itself, made from the OS random number
//! generator, and the private files that keep it across restarts.

use app::access::Access;
use std::{
    fmt,
    fs::{DirBuilder, OpenOptions},
    io::{self, Read, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};
use subtle::ConstantTimeEq;

/// An access token: printed only where the user asked for it (the login URL
/// at start, `agentdeck token`), never by `Debug`, so it stays out of logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Shortest token accepted from the user: keeps out the guessable ones.
    const MIN_LEN: usize = 16;

    /// Checks a token given by the user. The reason never quotes the token.
    pub fn new(value: String) -> Result<Self, String> {
        if value.len() < Self::MIN_LEN {
            return Err(format!(
                "a token needs at least {} characters (`agentdeck token` makes a random one)",
                Self::MIN_LEN
            ));
        }
        // It travels in URLs and cookies unescaped.
        if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
        {
            return Err("a token may hold only letters, digits and - . _ ~".into());
        }
        Ok(Self(value))
    }

    /// A new token: 256 bits from the OS random number generator, as hex.
    fn generate() -> Result<Self, AccessError> {
        random_hex::<32>().map(Self).map_err(AccessError::Random)
    }

    /// The token's text, for the places that must show or send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares in constant time: how long a refusal takes says nothing
    /// about how much of a guess was right.
    pub(super) fn matches(&self, candidate: &str) -> bool {
        self.0.as_bytes().ct_eq(candidate.as_bytes()).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// `N` random bytes as lowercase hex.
pub(crate) fn random_hex<const N: usize>() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Why access could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("cannot make a token: the OS random number generator failed: {0}")]
    Random(getrandom::Error),
    #[error("token file {}: {source}", path.display())]
    File { path: PathBuf, source: io::Error },
    #[error(
        "token file {path} can be read by other users (mode {mode:03o}): run `chmod 600 {path}`, \
         or `agentdeck token --rotate` if it may have leaked",
        path = path.display()
    )]
    NotPrivate { path: PathBuf, mode: u32 },
    #[error(
        "token file {} does not hold a usable token ({reason}): \
         replace it with `agentdeck token --rotate`",
        path.display()
    )]
    NotAToken { path: PathBuf, reason: String },
    #[error("the read-only token must differ from the full token")]
    SameTokens,
}

/// The token files in the data directory: `token` for full access,
/// `read-only-token` for viewing. Private to the user (0600), so a restart
/// keeps the token and other local users cannot read it.
pub struct TokenStore {
    dir: PathBuf,
}

impl TokenStore {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// Where the token for `access` is kept.
    pub fn path(&self, access: Access) -> PathBuf {
        self.dir.join(match access {
            Access::Full => "token",
            Access::ReadOnly => "read-only-token",
        })
    }

    /// The stored token, if there is one.
    pub fn load(&self, access: Access) -> Result<Option<Secret>, AccessError> {
        let path = self.path(access);
        let file_error = |source| AccessError::File {
            path: path.clone(),
            source,
        };
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(file_error(err)),
        };
        if !meta.is_file() {
            return Err(AccessError::NotAToken {
                path,
                reason: "not a regular file".into(),
            });
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(AccessError::NotPrivate { path, mode });
        }
        let mut text = String::new();
        std::fs::File::open(&path)
            .and_then(|mut file| file.read_to_string(&mut text))
            .map_err(file_error)?;
        Secret::new(text.trim().to_owned())
            .map(Some)
            .map_err(|reason| AccessError::NotAToken { path, reason })
    }

    /// The stored token, made and stored first if there is none.
    pub fn load_or_create(&self, access: Access) -> Result<Secret, AccessError> {
        if let Some(token) = self.load(access)? {
            return Ok(token);
        }
        let token = Secret::generate()?;
        match self.write(&self.path(access), &token) {
            Ok(()) => Ok(token),
            // Another process made it in the meantime: use theirs.
            Err(AccessError::File { source, .. })
                if source.kind() == io::ErrorKind::AlreadyExists =>
            {
                self.load(access)?.ok_or_else(|| AccessError::File {
                    path: self.path(access),
                    source,
                })
            }
            Err(err) => Err(err),
        }
    }

    /// Replaces the stored token with a new one (atomically: a server
    /// starting meanwhile reads the old or the new, never half of one).
    pub fn rotate(&self, access: Access) -> Result<Secret, AccessError> {
        let path = self.path(access);
        let staged = path.with_extension("new");
        let token = Secret::generate()?;
        match std::fs::remove_file(&staged) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => {
                return Err(AccessError::File {
                    path: staged,
                    source: err,
                })
            }
            _ => {}
        }
        self.write(&staged, &token)?;
        std::fs::rename(&staged, &path).map_err(|source| AccessError::File { path, source })?;
        Ok(token)
    }

    /// Writes a new file, readable by the user only from its first byte.
    fn write(&self, path: &Path, token: &Secret) -> Result<(), AccessError> {
        let file_error = |source| AccessError::File {
            path: path.to_owned(),
            source,
        };
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|source| AccessError::File {
                path: self.dir.clone(),
                source,
            })?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(file_error)?;
        writeln!(file, "{}", token.expose())
            .and_then(|()| file.sync_all())
            .map_err(file_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_256_bit_hex_and_differ() {
        let (a, b) = (Secret::generate().unwrap(), Secret::generate().unwrap());
        assert_eq!(a.expose().len(), 64);
        assert!(a.expose().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert!(Secret::new(a.expose().to_owned()).is_ok());
    }
}
