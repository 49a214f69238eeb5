//! Row 26's test database: a MaxMind DB written in the test (`gatehouse_testkit::mmdb`) into
//! a temporary directory, and the routes that decide by it.

use std::path::PathBuf;

/// Germany, the United States, North Korea (IPv4 documentation ranges) and France (IPv6).
pub const DE: &str = "203.0.113.7";
pub const US: &str = "198.51.100.7";
pub const KP: &str = "192.0.2.7";
pub const FR: &str = "2001:db8::7";

pub const NETWORKS: &[(&str, &str)] = &[
    ("203.0.113.0/24", "DE"),
    ("198.51.100.0/24", "US"),
    ("192.0.2.0/24", "KP"),
    ("2001:db8::/32", "FR"),
];

/// The database file; its directory is removed on drop.
pub struct GeoDb {
    dir: PathBuf,
    pub path: PathBuf,
}

impl GeoDb {
    pub fn new(networks: &[(&str, &str)]) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "gatehouse-geo-{}-{:016x}",
            std::process::id(),
            u64::from_le_bytes(gatehouse_server::random::random_bytes::<8>())
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let db = Self {
            path: dir.join("countries.mmdb"),
            dir,
        };
        db.replace(networks);
        db
    }

    /// Writes a new database beside the file and renames it over, as a database updater does.
    pub fn replace(&self, networks: &[(&str, &str)]) {
        let tmp = self.dir.join("countries.mmdb.new");
        std::fs::write(&tmp, gatehouse_testkit::mmdb::country_db(networks)).unwrap();
        std::fs::rename(&tmp, &self.path).unwrap();
    }

    /// `[geoip]` and the country routes, appended to the semantics config.
    pub fn config(&self) -> String {
        format!(
            r#"
[[route]]
name = "geo-eu"
path = "/geo/eu/**"
auth = ["basic"]
countries = ["DE", "FR"]

[[route]]
name = "geo-store"
path = "/geo/store/**"
auth = ["basic"]
deny_countries = ["KP"]

[[route]]
name = "geo-video"
path = "/geo/video/**"
access = "public"
countries = ["US"]
geo_status = 451
blocked_by = "https://rights.example/licence"

[geoip]
database = "{}"
"#,
            self.path.display()
        )
    }
}

impl Drop for GeoDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
