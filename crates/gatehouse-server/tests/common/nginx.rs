//! A real nginx for the tests that put it in front of Gatehouse: found on the machine (or the
//! test prints `skipped`), started on a free port with a config of the test's own, killed and
//! its directory removed on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpStream;

/// An installed nginx with `auth_request`, and its (major, minor) version.
pub fn find_nginx() -> Option<(PathBuf, (u32, u32))> {
    let bin = gatehouse_testkit::program("nginx")?;
    let out = Command::new(&bin).arg("-V").output().ok()?;
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    if !text.contains("http_auth_request_module") {
        return None;
    }
    let version = text.split("nginx/").nth(1)?.split_whitespace().next()?;
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    Some((bin, (parts.next()??, parts.next()??)))
}

/// [`find_nginx`], or the one `skipped: …` line (a failure under `GATEHOUSE_TEST_REQUIRE`).
pub fn nginx_or_skip() -> Option<(PathBuf, (u32, u32))> {
    gatehouse_testkit::NGINX.found(find_nginx())
}

/// A running nginx; killed and its directory removed on drop.
pub struct Nginx {
    child: Child,
    dir: PathBuf,
    pub addr: SocketAddr,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Nginx {
    /// Starts nginx with `http_block(listen)` inside its `http { … }` block, where `listen`
    /// is the free loopback address it must listen on.
    pub async fn start(bin: &Path, http_block: impl FnOnce(SocketAddr) -> String) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gatehouse-nginx-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let d = dir.display();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\n\
             error_log {d}/error.log info;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 128; }}\n\
             http {{\n\
             access_log off;\n\
             client_body_temp_path {d}/client_body;\nproxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\nuwsgi_temp_path {d}/uwsgi;\nscgi_temp_path {d}/scgi;\n\
             {}\n}}\n",
            http_block(addr)
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let stderr = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let child = Command::new(bin)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut n = Self { child, dir, addr };
        for _ in 0..400 {
            if let Some(status) = n.child.try_wait().unwrap() {
                panic!("nginx exited ({status}):\n{}", n.logs());
            }
            if TcpStream::connect(addr).await.is_ok() {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("nginx did not listen on {addr}:\n{}", n.logs());
    }

    pub fn logs(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        format!("{}{}", read("stderr.log"), read("error.log"))
    }
}
