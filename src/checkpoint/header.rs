//! Reading and validating one safetensors header.
//!
//! Layout: 8 bytes little-endian header length N, N bytes of UTF-8 JSON mapping tensor names
//! to `{dtype, shape, data_offsets: [begin, end]}` (plus an optional `__metadata__`), then the
//! data; offsets are relative to the first byte after the header.
//!
//! The safetensors crate's own parser (`SafeTensors::read_metadata`) reports most of these
//! faults without the tensor's name (`TensorInvalidInfo`), folds an unknown dtype into a generic
//! JSON error, and keeps the last of two entries with the same name; so the header is parsed
//! here, and the crate's `Dtype` decides which dtype strings exist and their bit sizes.

use std::fmt;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};

use super::{CheckpointError, Dtype};

/// One validated tensor entry of a file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// Absolute byte range within the file.
    pub bytes: Range<usize>,
}

/// The header's top-level object, entries kept in file order, duplicates kept.
struct RawHeader(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for RawHeader {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawHeader;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object of tensor entries")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<RawHeader, A::Error> {
                let mut v = Vec::with_capacity(m.size_hint().unwrap_or(0));
                while let Some(kv) = m.next_entry::<String, serde_json::Value>()? {
                    v.push(kv);
                }
                Ok(RawHeader(v))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Deserialize)]
struct RawEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: (usize, usize),
}

/// Maps a safetensors dtype name to ours and its size in bits; `None` if safetensors does not
/// know the name.
fn dtype_of(name: &str) -> Option<(Dtype, usize)> {
    let st: safetensors::Dtype =
        serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()?;
    let ours = match st {
        safetensors::Dtype::F64 => Dtype::F64,
        safetensors::Dtype::F32 => Dtype::F32,
        safetensors::Dtype::F16 => Dtype::F16,
        safetensors::Dtype::BF16 => Dtype::BF16,
        safetensors::Dtype::F8_E4M3 => Dtype::F8E4M3,
        safetensors::Dtype::F8_E5M2 => Dtype::F8E5M2,
        other => Dtype::Unsupported(other.to_string()),
    };
    Some((ours, st.bitsize()))
}

/// Largest header accepted (the safetensors crate's own limit).
pub(crate) const MAX_HEADER: u64 = 100_000_000;

/// Parses and checks the header of the safetensors file at `path`, `file_len` bytes long,
/// whose first bytes are `buf` (at least the 8-byte length and the header, when the file
/// holds them).
pub(crate) fn parse(
    path: &Path,
    file_len: usize,
    buf: &[u8],
) -> Result<Vec<Entry>, CheckpointError> {
    let p = || path.to_path_buf();
    let Some((len_bytes, rest)) = buf.split_first_chunk::<8>() else {
        return Err(CheckpointError::ShortFile {
            path: p(),
            len: file_len as u64,
        });
    };
    let header_len = u64::from_le_bytes(*len_bytes);
    let header = usize::try_from(header_len)
        .ok()
        .filter(|&n| n <= file_len - 8)
        .and_then(|n| rest.get(..n))
        .ok_or(CheckpointError::HeaderPastEnd {
            path: p(),
            header_len,
            file_len: file_len as u64,
        })?;
    let data_start = 8 + header.len();
    let data_len = file_len - data_start;

    let text = std::str::from_utf8(header)
        .map_err(|source| CheckpointError::HeaderNotUtf8 { path: p(), source })?;
    let RawHeader(raw) = serde_json::from_str(text)
        .map_err(|source| CheckpointError::HeaderNotJson { path: p(), source })?;

    let mut entries: Vec<Entry> = Vec::with_capacity(raw.len());
    let mut seen = std::collections::HashSet::with_capacity(raw.len());
    for (name, value) in raw {
        if name == "__metadata__" {
            continue;
        }
        if !seen.insert(name.clone()) {
            return Err(CheckpointError::DuplicateTensor {
                tensor: name,
                first: p(),
                second: p(),
            });
        }
        let bad = |problem: String| CheckpointError::BadEntry {
            path: p(),
            tensor: name.clone(),
            problem,
        };
        let e: RawEntry = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        let Some((dtype, bits)) = dtype_of(&e.dtype) else {
            return Err(CheckpointError::UnknownDtype {
                path: p(),
                tensor: name,
                dtype: e.dtype,
            });
        };
        let (begin, end) = e.data_offsets;
        if begin > end {
            return Err(CheckpointError::OffsetsReversed {
                path: p(),
                tensor: name,
                begin,
                end,
            });
        }
        if end > data_len {
            return Err(CheckpointError::OffsetsPastEnd {
                path: p(),
                tensor: name,
                begin,
                end,
                data_len,
            });
        }
        let numel = e
            .shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| bad(format!("shape {:?} overflows", e.shape)))?;
        let nbits = numel
            .checked_mul(bits)
            .ok_or_else(|| bad(format!("shape {:?} overflows", e.shape)))?;
        if nbits % 8 != 0 {
            return Err(bad(format!(
                "{numel} elements of {} ({bits} bits each) do not fill whole bytes",
                e.dtype
            )));
        }
        if nbits / 8 != end - begin {
            return Err(CheckpointError::SizeMismatch {
                path: p(),
                tensor: name,
                dtype: e.dtype,
                shape: e.shape,
                expected: nbits / 8,
                actual: end - begin,
            });
        }
        entries.push(Entry {
            name,
            dtype,
            shape: e.shape,
            bytes: data_start + begin..data_start + end,
        });
    }

    // No two non-empty tensors may share bytes.
    let mut order: Vec<&Entry> = entries.iter().filter(|e| !e.bytes.is_empty()).collect();
    order.sort_by_key(|e| (e.bytes.start, e.bytes.end));
    for w in order.windows(2) {
        if let [a, b] = w
            && b.bytes.start < a.bytes.end
        {
            return Err(CheckpointError::OffsetsOverlap {
                path: p(),
                tensor: b.name.clone(),
                begin: b.bytes.start - data_start,
                end: b.bytes.end - data_start,
                other: a.name.clone(),
            });
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn file(header: &str, data: usize) -> Vec<u8> {
        let mut v = (header.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(header.as_bytes());
        v.resize(v.len() + data, 0);
        v
    }

    fn err(header: &str, data: usize) -> String {
        {
            let buf = file(header, data);
            parse(&PathBuf::from("w.safetensors"), buf.len(), &buf)
        }
        .unwrap_err()
        .to_string()
    }

    #[test]
    fn matches_safetensors_crate_on_a_valid_file() {
        use safetensors::tensor::TensorView;
        let a: Vec<u8> = (0..24).collect();
        let b: Vec<u8> = (100..106).collect();
        let views = [
            (
                "a",
                TensorView::new(safetensors::Dtype::F32, vec![2, 3], &a).unwrap(),
            ),
            (
                "b",
                TensorView::new(safetensors::Dtype::I8, vec![6], &b).unwrap(),
            ),
        ];
        let mut meta = std::collections::HashMap::new();
        meta.insert("format".to_string(), "pt".to_string());
        let buf = safetensors::serialize(views, Some(meta)).unwrap();
        let ours = parse(Path::new("x"), buf.len(), &buf).unwrap();
        let theirs = safetensors::SafeTensors::deserialize(&buf).unwrap();
        assert_eq!(ours.len(), 2);
        for e in &ours {
            let t = theirs.tensor(&e.name).unwrap();
            assert_eq!(&buf[e.bytes.clone()], t.data());
            assert_eq!(e.shape, t.shape());
        }
        let b = ours.iter().find(|e| e.name == "b").unwrap();
        assert_eq!(b.dtype, Dtype::Unsupported("I8".into()));
    }

    #[test]
    fn faults_name_the_file_tensor_and_problem() {
        let e = err(
            r#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[4,0]}}"#,
            8,
        );
        assert!(e.contains("w.safetensors") && e.contains("`t`") && e.contains("reversed"));
        let e = err(
            r#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"u":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
            8,
        );
        assert!(
            e.contains("`u`") && e.contains("overlaps tensor `t`"),
            "{e}"
        );
        let e = err(r#"{"t":{"dtype":"F32","shape":[2]}}"#, 8);
        assert!(e.contains("`t`") && e.contains("data_offsets"), "{e}");
        let e = err(
            r#"{"t":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#,
            2,
        );
        assert!(e.contains("whole bytes"), "{e}");
        let e = err(
            r#"{"t":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}}"#,
            0,
        );
        assert!(e.contains("overflows"), "{e}");
        let e = err(
            r#"{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
            8,
        );
        assert!(e.contains("`t` is defined again"), "{e}");
        let e = err(r#"[1,2]"#, 0);
        assert!(e.contains("not valid JSON"), "{e}");
    }

    #[test]
    fn empty_tensors_and_metadata_are_fine() {
        let h = r#"{"__metadata__":{"format":"pt"},"e":{"dtype":"BF16","shape":[0,4],"data_offsets":[0,0]},"t":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}"#;
        let buf = file(h, 4);
        let v = parse(Path::new("x"), buf.len(), &buf).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].bytes, 8 + h.len()..8 + h.len() + 4);
    }
}
