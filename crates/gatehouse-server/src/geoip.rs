//! Row 26's IO: the MaxMind DB (`[geoip] database`, GeoIP2/GeoLite2 Country or City) that
//! gives the trusted client address its country. Core decides on the answer
//! ([`gatehouse_core::geo::CountryRule::check`]); this only reads.
//!
//! The file is read whole into memory. A config reload (SIGHUP) opens it again with the new
//! runtime; besides, a background task of the gateway asks [`GeoIp::reload_if_changed`]
//! every [`WATCH_EVERY`], which swaps in a changed file without a reload. A changed file that cannot be read keeps the database in force (and
//! says why in the log), as a failed config reload keeps the old config.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use gatehouse_core::config::GeoIpConfig;
use gatehouse_core::geo::Country;
use maxminddb::{PathElement, Reader};

/// How often the database file is checked for a change.
pub const WATCH_EVERY: Duration = Duration::from_secs(1);

/// The country database of a runtime.
pub struct GeoIp {
    path: PathBuf,
    current: RwLock<Arc<Reader<Vec<u8>>>>,
    /// Modification time and length of the file when last loaded.
    stamp: Mutex<Option<(SystemTime, u64)>>,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Reads and checks a database file; the error names the file.
fn load(path: &Path) -> Result<Reader<Vec<u8>>, String> {
    let show = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("[geoip] database `{show}`: {e}"))?;
    let reader = Reader::from_source(bytes)
        .map_err(|e| format!("[geoip] database `{show}` is not a MaxMind DB: {e}"))?;
    Ok(reader)
}

/// `country.iso_code`, the path GeoIP2/GeoLite2 Country and City records share.
const ISO_CODE: [PathElement<'static>; 2] =
    [PathElement::Key("country"), PathElement::Key("iso_code")];

impl GeoIp {
    /// Opens the configured database.
    pub fn open(cfg: &GeoIpConfig) -> Result<Self, String> {
        let before = stamp(&cfg.database);
        let reader = load(&cfg.database)?;
        tracing::info!(
            database = %cfg.database.display(),
            kind = %reader.metadata().database_type,
            "country database loaded"
        );
        Ok(Self {
            path: cfg.database.clone(),
            current: RwLock::new(Arc::new(reader)),
            stamp: Mutex::new(before),
        })
    }

    fn reader(&self) -> Arc<Reader<Vec<u8>>> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// The country of `ip`: `Ok(None)` when the database does not know it (private ranges,
    /// an IPv6 address in an IPv4-only database); `Err` when the database is broken there.
    pub fn country(&self, ip: IpAddr) -> Result<Option<Country>, String> {
        let ip = ip.to_canonical();
        let reader = self.reader();
        if ip.is_ipv6() && reader.metadata().ip_version == 4 {
            return Ok(None);
        }
        let found = reader.lookup(ip).map_err(|e| e.to_string())?;
        let code: Option<&str> = found.decode_path(&ISO_CODE).map_err(|e| e.to_string())?;
        Ok(code.and_then(Country::parse))
    }

    /// The database file, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the file again if it changed since it was last loaded. `Ok(true)`: swapped in.
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let now = stamp(&self.path);
        let mut last = match self.stamp.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if now.is_none() || now == *last {
            return Ok(false);
        }
        // Remember the attempt either way: a broken file is reported once, not every second.
        *last = now;
        let reader = load(&self.path)?;
        match self.current.write() {
            Ok(mut g) => *g = Arc::new(reader),
            Err(p) => *p.into_inner() = Arc::new(reader),
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(bytes: &[u8]) -> (GeoIp, PathBuf) {
        let path = std::env::temp_dir().join(format!(
            "gatehouse-geoip-{}-{}.mmdb",
            std::process::id(),
            u64::from_le_bytes(crate::random::random_bytes::<8>())
        ));
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
        let db = GeoIp::open(&GeoIpConfig {
            database: path.clone(),
            line: 1,
        })
        .unwrap_or_else(|e| panic!("{e}"));
        (db, path)
    }

    #[test]
    fn the_test_writer_makes_a_valid_database_that_answers_countries() {
        let bytes = gatehouse_testkit::mmdb::country_db(&[
            ("203.0.113.0/24", "DE"),
            ("203.0.113.128/25", "FR"),
            ("2001:db8::/32", "JP"),
        ]);
        let reader = Reader::from_source(bytes.clone()).unwrap_or_else(|e| panic!("{e}"));
        reader.verify().unwrap_or_else(|e| panic!("{e}"));
        let (db, path) = open(&bytes);
        let c = |ip: &str| {
            db.country(ip.parse().unwrap_or_else(|e| panic!("{e}")))
                .unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(c("203.0.113.7"), Country::parse("DE"));
        assert_eq!(c("203.0.113.200"), Country::parse("FR"));
        assert_eq!(c("::ffff:203.0.113.7"), Country::parse("DE"));
        assert_eq!(c("2001:db8::1"), Country::parse("JP"));
        assert_eq!(c("198.51.100.1"), None);
        assert_eq!(c("127.0.0.1"), None);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn a_changed_file_is_swapped_in_and_a_broken_one_is_not() {
        let (db, path) = open(&gatehouse_testkit::mmdb::country_db(&[(
            "203.0.113.0/24",
            "DE",
        )]));
        let ip: IpAddr = [203, 0, 113, 9].into();
        assert_eq!(db.reload_if_changed(), Ok(false));
        // Same mtime granularity is possible: a different length tells the change apart.
        std::fs::write(
            &path,
            gatehouse_testkit::mmdb::country_db(&[
                ("203.0.113.0/24", "AT"),
                ("198.51.100.0/24", "CH"),
            ]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(db.reload_if_changed(), Ok(true));
        assert_eq!(db.country(ip), Ok(Country::parse("AT")));
        std::fs::write(&path, b"not a database").unwrap_or_else(|e| panic!("{e}"));
        let e = db.reload_if_changed().expect_err("garbage loaded");
        assert!(e.contains("is not a MaxMind DB"), "{e}");
        assert_eq!(db.country(ip), Ok(Country::parse("AT")));
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let e = GeoIp::open(&GeoIpConfig {
            database: "/nonexistent/countries.mmdb".into(),
            line: 3,
        })
        .expect_err("opened");
        assert!(
            e.starts_with("[geoip] database `/nonexistent/countries.mmdb`:"),
            "{e}"
        );
    }
}
