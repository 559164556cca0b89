//! One cache entry on disk: a block's spectrum and σ estimates in a compact binary layout,
//! trusted only when its length, checksum and key are right.
//!
//! Layout (little-endian), version 1:
//!
//! ```text
//! "MPSC"  u32 version  u64 total length (the whole entry, checksum included)
//! u32 key length, key bytes (UTF-8: engine, file stamp, tensor, block, options)
//! u64 rows  u64 cols  u8 precision (0 fast, 1 precise)  u8 flags (1 vector_p, 2 shuffled,
//!     4 fit failed)
//! f64 vector_p  f64 init σ  f64 σ entry  f64 σ fit  f64 σ init  u64 compute time (ns)
//! u64 n, n × f64 values  u64 s, s × f64 shuffled values
//! u64 xxh3 of every byte before it
//! ```
//!
//! f64 bits are stored as they are, so a value read back is the value computed. A 64-value
//! head takes about 0.9 KB (a third of it the key), a 2048² matrix 16.7 KB.

use std::time::Duration;

use xxhash_rust::xxh3::xxh3_64;

use super::error::EntryError;
use crate::spectrum::{Precision, Sigmas, Spectrum};

/// First bytes of every entry.
const MAGIC: &[u8; 4] = b"MPSC";
/// Layout version; an entry of another version is not read (it is recomputed).
pub const VERSION: u32 = 1;

const FLAG_VECTOR_P: u8 = 1;
const FLAG_SHUFFLED: u8 = 2;
const FLAG_FIT_FAILED: u8 = 4;

/// A block's spectrum and σ estimates as read back from an entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// The spectrum, as computed.
    pub spectrum: Spectrum,
    /// σ of every mode, as estimated.
    pub sigmas: Sigmas,
}

/// The bytes of an entry holding `spectrum` and `sigmas` under `key`.
pub fn encode(key: &str, spectrum: &Spectrum, sigmas: &Sigmas) -> Vec<u8> {
    // Every field named: a field added to `Spectrum` or `Sigmas` does not compile here until
    // the layout (and VERSION) says where it goes.
    let Spectrum {
        values,
        rows,
        cols,
        precision,
        vector_p,
        init_sigma,
        shuffled,
        compute_time,
    } = spectrum;
    let Sigmas {
        entry,
        fit,
        init,
        fit_failed,
    } = sigmas;
    let shuffled_len = shuffled.as_ref().map_or(0, Vec::len);
    let total = 4
        + 4
        + 8
        + 4
        + key.len()
        + 8 * 2
        + 2
        + 8 * 6
        + 8
        + 8 * values.len()
        + 8
        + 8 * shuffled_len
        + 8;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(total as u64).to_le_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&(*rows as u64).to_le_bytes());
    out.extend_from_slice(&(*cols as u64).to_le_bytes());
    out.push(match precision {
        Precision::Fast => 0,
        Precision::Precise => 1,
    });
    let mut flags = 0;
    if vector_p.is_some() {
        flags |= FLAG_VECTOR_P;
    }
    if shuffled.is_some() {
        flags |= FLAG_SHUFFLED;
    }
    if *fit_failed {
        flags |= FLAG_FIT_FAILED;
    }
    out.push(flags);
    let nanos = u64::try_from(compute_time.as_nanos()).unwrap_or(u64::MAX);
    for x in [vector_p.unwrap_or(0.0), *init_sigma, *entry, *fit, *init] {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.extend_from_slice(&nanos.to_le_bytes());
    for list in [values.as_slice(), shuffled.as_deref().unwrap_or(&[])] {
        out.extend_from_slice(&(list.len() as u64).to_le_bytes());
        for v in list {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    let sum = xxh3_64(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    debug_assert_eq!(out.len(), total);
    out
}

/// Reads an entry back: its spectrum and σ estimates, if `bytes` is a whole, undamaged entry
/// of this version written under exactly `key`.
pub fn decode(bytes: &[u8], key: &str) -> Result<Stored, EntryError> {
    if bytes.len() < 28 || &bytes[..4] != MAGIC {
        return Err(EntryError::NotAnEntry);
    }
    let mut r = Reader { bytes, at: 4 };
    let version = r.u32()?;
    if version != VERSION {
        return Err(EntryError::Version(version));
    }
    let total = r.u64()?;
    if total != bytes.len() as u64 {
        return Err(EntryError::Length {
            expected: total,
            found: bytes.len() as u64,
        });
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    let sum = u64::from_le_bytes(sum.try_into().map_err(|_| EntryError::Truncated)?);
    if xxh3_64(body) != sum {
        return Err(EntryError::Checksum);
    }
    let key_len = r.u32()? as usize;
    if r.take(key_len)? != key.as_bytes() {
        return Err(EntryError::OtherKey);
    }
    let rows = r.usize()?;
    let cols = r.usize()?;
    let precision = match r.u8()? {
        0 => Precision::Fast,
        1 => Precision::Precise,
        _ => return Err(EntryError::Truncated),
    };
    let flags = r.u8()?;
    let vector_p = r.f64()?;
    let init_sigma = r.f64()?;
    let (entry, fit, init) = (r.f64()?, r.f64()?, r.f64()?);
    let compute_time = Duration::from_nanos(r.u64()?);
    let values = r.f64s()?;
    let shuffled = r.f64s()?;
    if r.at != body.len() || values.len() > rows.min(cols) {
        return Err(EntryError::Truncated);
    }
    Ok(Stored {
        spectrum: Spectrum {
            values,
            rows,
            cols,
            precision,
            vector_p: (flags & FLAG_VECTOR_P != 0).then_some(vector_p),
            init_sigma,
            shuffled: (flags & FLAG_SHUFFLED != 0).then_some(shuffled),
            compute_time,
        },
        sigmas: Sigmas {
            entry,
            fit,
            init,
            fit_failed: flags & FLAG_FIT_FAILED != 0,
        },
    })
}

/// Reads fields off the front of an entry's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], EntryError> {
        let end = self.at.checked_add(n).ok_or(EntryError::Truncated)?;
        let s = self.bytes.get(self.at..end).ok_or(EntryError::Truncated)?;
        self.at = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], EntryError> {
        self.take(N)?.try_into().map_err(|_| EntryError::Truncated)
    }

    fn u8(&mut self) -> Result<u8, EntryError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, EntryError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, EntryError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn usize(&mut self) -> Result<usize, EntryError> {
        usize::try_from(self.u64()?).map_err(|_| EntryError::Truncated)
    }

    fn f64(&mut self) -> Result<f64, EntryError> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    fn f64s(&mut self) -> Result<Vec<f64>, EntryError> {
        let n = self.usize()?;
        let bytes = self.take(n.checked_mul(8).ok_or(EntryError::Truncated)?)?;
        Ok(bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(shuffled: bool) -> (Spectrum, Sigmas) {
        let spectrum = Spectrum {
            values: vec![3.5, 2.25, 1.0 / 3.0, f64::MIN_POSITIVE],
            rows: 4,
            cols: 9,
            precision: Precision::Precise,
            vector_p: Some(0.123_456_789),
            init_sigma: 0.02,
            shuffled: shuffled.then(|| vec![2.0, 1.5, 1.0, 0.5]),
            compute_time: Duration::from_nanos(1_234_567),
        };
        let sigmas = Sigmas {
            entry: 0.7,
            fit: 0.6,
            init: 0.02,
            fit_failed: true,
        };
        (spectrum, sigmas)
    }

    #[test]
    fn an_entry_reads_back_bit_for_bit() {
        for shuffled in [false, true] {
            let (s, sig) = sample(shuffled);
            let bytes = encode("k", &s, &sig);
            let back = decode(&bytes, "k").unwrap();
            assert_eq!(back.spectrum, s);
            assert_eq!(back.sigmas, sig);
        }
        let (mut s, sig) = sample(false);
        s.vector_p = None;
        let back = decode(&encode("k", &s, &sig), "k").unwrap();
        assert_eq!(back.spectrum.vector_p, None);
    }

    #[test]
    fn truncated_flipped_or_foreign_entries_are_refused() {
        let (s, sig) = sample(true);
        let bytes = encode("key", &s, &sig);
        for cut in [0, 3, 27, 40, bytes.len() - 1] {
            assert!(decode(&bytes[..cut], "key").is_err(), "cut at {cut}");
        }
        for at in [30, 60, bytes.len() - 20, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x10;
            assert!(
                matches!(decode(&bad, "key"), Err(EntryError::Checksum)),
                "flip at {at}"
            );
        }
        assert!(matches!(decode(&bytes, "other"), Err(EntryError::OtherKey)));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            decode(&longer, "key"),
            Err(EntryError::Length { .. })
        ));
        let mut v2 = bytes;
        v2[4] = 2;
        assert!(matches!(decode(&v2, "key"), Err(EntryError::Version(2))));
    }
}
