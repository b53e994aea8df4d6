//! Finding the etcd binary and checking that it is a version we speak to.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::EtcdError;

/// An etcd binary whose version was read from `etcd --version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdBinary {
    pub path: PathBuf,
    /// As printed, e.g. `3.4.23`.
    pub version: String,
}

impl EtcdBinary {
    /// `explicit` if given, otherwise `etcd` on `PATH`. Fails with a message
    /// that says how to install etcd when there is none, and rejects
    /// versions before 3.4 (whose JSON gateway lives under `/v3beta/`).
    pub fn locate(explicit: Option<&Path>) -> Result<Self, EtcdError> {
        let path = match explicit {
            Some(p) => {
                if !is_executable(p) {
                    return Err(EtcdError::NotExecutable {
                        path: p.display().to_string(),
                    });
                }
                p.to_path_buf()
            }
            None => find_on_path("etcd").ok_or_else(|| EtcdError::NotFound {
                path: std::env::var("PATH").unwrap_or_default(),
            })?,
        };
        let version = read_version(&path)?;
        let (major, minor) = major_minor(&version).ok_or_else(|| EtcdError::Version {
            path: path.display().to_string(),
            detail: format!("cannot parse version {version:?}"),
        })?;
        if (major, minor) < (3, 4) {
            return Err(EtcdError::Unsupported {
                path: path.display().to_string(),
                version,
            });
        }
        Ok(EtcdBinary { path, version })
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn read_version(path: &Path) -> Result<String, EtcdError> {
    let fail = |detail: String| EtcdError::Version {
        path: path.display().to_string(),
        detail,
    };
    let out = Command::new(path)
        .arg("--version")
        .output()
        .map_err(|e| fail(e.to_string()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(fail(format!("exit {}: {}", out.status, text.trim())));
    }
    parse_version(&text).ok_or_else(|| fail(format!("no `etcd Version:` line in {text:?}")))
}

/// The `etcd Version: X.Y.Z` line of `etcd --version`.
fn parse_version(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("etcd Version:"))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut it = version.split('.');
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_line_is_parsed() {
        let text = "etcd Version: 3.4.23\nGit SHA: Not provided\nGo Version: go1.19.8\n";
        assert_eq!(parse_version(text).as_deref(), Some("3.4.23"));
        assert_eq!(major_minor("3.4.23"), Some((3, 4)));
        assert_eq!(parse_version("etcdctl version: 3.4.23"), None);
    }

    #[test]
    fn a_missing_binary_says_how_to_install_etcd() {
        let e = EtcdBinary::locate(Some(Path::new("/nonexistent/etcd"))).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/etcd"), "{e}");
        let e = EtcdError::NotFound {
            path: "/bin".into(),
        };
        assert!(
            e.to_string().contains("apt-get install -y etcd-server"),
            "{e}"
        );
    }
}
