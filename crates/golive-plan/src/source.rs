//! Reading plan and checklist files: bounded in size, strict about encoding.
//!
//! The errors name the file and, for bad bytes, the line, so that a user
//! who fed golive the wrong file sees why at once.

use std::io::Read;
use std::path::Path;

/// Largest plan or checklist golive reads. Real ones are a few kilobytes.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// Why a file could not be read as text.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error("{path} is larger than {} MiB; a plan or checklist is a few kilobytes, is this the right file?", MAX_FILE_BYTES / 1024 / 1024)]
    TooLarge {
        /// The file.
        path: String,
    },
    /// The file is UTF-16 (a Windows editor's "Unicode"), or binary.
    #[error(
        "{path} is not UTF-8 text: {what}; save it as UTF-8 (for example `iconv -f UTF-16 -t UTF-8`)"
    )]
    NotText {
        /// The file.
        path: String,
        /// What it looks like instead.
        what: &'static str,
    },
    /// The file is not UTF-8.
    #[error("{path} is not UTF-8 text: invalid byte at line {line}, column {column}")]
    NotUtf8 {
        /// The file.
        path: String,
        /// 1-based line of the first invalid byte.
        line: usize,
        /// 1-based byte column.
        column: usize,
    },
}

/// Reads a UTF-8 text file of at most [`MAX_FILE_BYTES`] (a leading BOM is dropped).
pub fn read_text(path: &Path) -> Result<String, ReadError> {
    let name = path.display().to_string();
    let io = |source| ReadError::Io {
        path: name.clone(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge { path: name });
    }
    decode(&name, bytes)
}

/// Decodes bytes as UTF-8, pointing at the first bad byte.
pub fn decode(name: &str, bytes: Vec<u8>) -> Result<String, ReadError> {
    // UTF-16 is valid UTF-8 often enough (ASCII with NULs between) to be
    // read as garbage; it is named instead, as is a binary file.
    let what = if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
        Some("it is UTF-16 (byte order mark)")
    } else if bytes.contains(&0) {
        Some("it has NUL bytes (UTF-16 without a byte order mark, or a binary file)")
    } else {
        None
    };
    if let Some(what) = what {
        return Err(ReadError::NotText {
            path: name.to_string(),
            what,
        });
    }
    match String::from_utf8(bytes) {
        Ok(mut s) => {
            if s.starts_with('\u{feff}') {
                s.drain(..3);
            }
            Ok(s)
        }
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let bytes = e.as_bytes();
            let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
            let line_start = bytes[..at]
                .iter()
                .rposition(|b| *b == b'\n')
                .map(|i| i + 1)
                .unwrap_or(0);
            Err(ReadError::NotUtf8 {
                path: name.to_string(),
                line,
                column: at - line_start + 1,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_bytes_are_located() {
        let e = decode("x.md", b"# ok\nfine\nbad \xff here\n".to_vec()).expect_err("not utf8");
        assert_eq!(
            e.to_string(),
            "x.md is not UTF-8 text: invalid byte at line 3, column 5"
        );
    }

    #[test]
    fn utf16_and_binary_files_are_named() {
        let e = decode("x.md", b"\xff\xfe#\x00 \x00T\x00".to_vec()).expect_err("utf-16");
        assert!(
            e.to_string()
                .starts_with("x.md is not UTF-8 text: it is UTF-16"),
            "{e}"
        );
        let e = decode("x.md", b"#\x00 \x00T\x00".to_vec()).expect_err("nul");
        assert!(e.to_string().contains("NUL bytes"), "{e}");
    }

    #[test]
    fn bom_is_dropped() {
        assert_eq!(
            decode("x", b"\xef\xbb\xbfname: x".to_vec()).expect("ok"),
            "name: x"
        );
    }
}
