//! A cap on what unpacking an archive or a layer may write. A 10 KB tar
//! can claim a terabyte (a sparse file, a header with a huge size, a gzip
//! of zeros); without a cap, `import`, `load` and `pull` would write it.
//!
//! The default, 32 GiB, is about twice the largest images in common use
//! (CUDA and ML framework images unpack to 10-20 GB), so no real image
//! hits it, while a compression bomb is stopped long before the disk
//! fills; and an entry that *claims* more than what is left is refused
//! before a byte of it is written. `--max-size` (import, load) or
//! `BERTH_MAX_SIZE` override it.

use anyhow::{bail, Context, Result};
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};

pub const DEFAULT_MAX: u64 = 32 << 30;
pub const ENV: &str = "BERTH_MAX_SIZE";

/// Bytes one operation may still write, shared by its threads and layers.
pub struct SizeLimit {
    max: u64,
    used: AtomicU64,
}

/// `10g`, `512MiB`, `1.5G`, `4096` (bytes).
pub fn parse(s: &str) -> Result<u64> {
    let l = s.trim().to_ascii_lowercase();
    let l = l
        .strip_suffix("ib")
        .or_else(|| l.strip_suffix('b'))
        .unwrap_or(&l);
    let (num, mult) = match l.chars().last() {
        Some('k') => (&l[..l.len() - 1], 1u64 << 10),
        Some('m') => (&l[..l.len() - 1], 1 << 20),
        Some('g') => (&l[..l.len() - 1], 1 << 30),
        Some('t') => (&l[..l.len() - 1], 1 << 40),
        _ => (l, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .with_context(|| format!("invalid size {s:?} (expected e.g. 512m, 32g)"))?;
    if !n.is_finite() || n <= 0.0 {
        bail!("invalid size {s:?}: must be more than 0");
    }
    Ok((n * mult as f64) as u64)
}

impl SizeLimit {
    pub fn new(max: u64) -> SizeLimit {
        SizeLimit {
            max,
            used: AtomicU64::new(0),
        }
    }

    /// `flag` if given, else `$BERTH_MAX_SIZE`, else the default.
    pub fn from_flag_or_env(flag: Option<&str>) -> Result<SizeLimit> {
        if let Some(f) = flag {
            return Ok(SizeLimit::new(
                parse(f).with_context(|| format!("--max-size {f:?}"))?,
            ));
        }
        match std::env::var(ENV) {
            Ok(v) => Ok(SizeLimit::new(
                parse(&v).with_context(|| format!("{ENV}={v:?}"))?,
            )),
            Err(_) => Ok(SizeLimit::new(DEFAULT_MAX)),
        }
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    fn over(&self, what: &str) -> String {
        format!(
            "{what}: over the size limit of {} bytes (--max-size or {ENV})",
            self.max
        )
    }

    /// Accounts for `n` bytes about to be written; refuses them, before
    /// any is written, if they would cross the limit.
    pub fn charge(&self, n: u64, what: &str) -> Result<()> {
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            let next = cur.saturating_add(n);
            if next > self.max {
                bail!(self.over(what));
            }
            match self
                .used
                .compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(c) => cur = c,
            }
        }
    }

    /// Wraps a (decompressed) stream that may not be longer than the limit,
    /// whatever it is used for: the data after a tar's end is read too.
    pub fn reader<'a, R: Read + 'a>(&'a self, inner: R, what: &str) -> LimitedReader<'a, R> {
        LimitedReader {
            inner,
            left: self.max,
            limit: self,
            what: what.to_string(),
        }
    }
}

pub struct LimitedReader<'a, R> {
    inner: R,
    left: u64,
    limit: &'a SizeLimit,
    what: String,
}

impl<R: Read> Read for LimitedReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(io::Error::other(self.limit.over(&self.what)));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse("4096").unwrap(), 4096);
        assert_eq!(parse("512m").unwrap(), 512 << 20);
        assert_eq!(parse("32GiB").unwrap(), 32 << 30);
        assert_eq!(parse("1.5k").unwrap(), 1536);
        assert!(parse("-1g").is_err() && parse("lots").is_err() && parse("0").is_err());
    }

    #[test]
    fn charges_are_shared_and_refused_before_crossing() {
        let l = SizeLimit::new(100);
        l.charge(60, "a").unwrap();
        let e = l.charge(41, "b").unwrap_err().to_string();
        assert!(e.contains("b: over the size limit of 100 bytes"), "{e}");
        l.charge(40, "c").unwrap();
        let mut out = Vec::new();
        let r = l.reader(&[0u8; 101][..], "s").read_to_end(&mut out);
        assert!(r.is_err());
        assert!(l.reader(&[0u8; 100][..], "s").read_to_end(&mut out).is_ok());
    }
}
