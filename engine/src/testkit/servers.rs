//! Throwaway backend servers for tests that stop, kill or restart a backend: a Redis and a
//! PostgreSQL of their own on free ports, so the shared ones are never touched. Each is
//! removed when dropped.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

fn wait_for_port(port: u16, what: &str) {
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{what} on port {port} did not come up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A Redis that keeps nothing on disk: started again, it is empty (the worst case for a queue).
pub struct ThrowawayRedis {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl ThrowawayRedis {
    pub fn start() -> ThrowawayRedis {
        let mut r = ThrowawayRedis {
            port: free_port(),
            dir: tempfile::tempdir().expect("tempdir"),
            child: None,
        };
        r.start_again();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills it at once (SIGKILL): every key is gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it (again) on the same port, empty.
    pub fn start_again(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        wait_for_port(self.port, "redis-server");
    }
}

impl Drop for ThrowawayRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A PostgreSQL cluster of its own (initdb + pg_ctl as user `postgres`), trust auth, database
/// `postgres`.
pub struct ThrowawayPostgres {
    pub port: u16,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

/// `initdb` / `pg_ctl`: from `PATH`, else the newest of Debian's `/usr/lib/postgresql/*/bin`.
fn pg_binary(name: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    on_path.unwrap_or_else(|| {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin").join(name))
            .filter(|p| p.is_file())
            .collect();
        versions.sort();
        versions
            .pop()
            .unwrap_or_else(|| panic!("{name} is not installed"))
    })
}

/// pg_ctl and initdb refuse to run as root: as root they run as `postgres`.
fn as_postgres(program: &str) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(pg_binary(program));
        c
    } else {
        Command::new(pg_binary(program))
    }
}

fn run(mut c: Command, what: &str) {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl ThrowawayPostgres {
    /// A new cluster allowing `max_connections` connections.
    pub fn start(max_connections: u32) -> ThrowawayPostgres {
        let dir = tempfile::Builder::new()
            .prefix("aisha-pg")
            .tempdir()
            .expect("tempdir");
        let data = dir.path().join("data");
        // As root, the cluster belongs to `postgres` (a no-op otherwise).
        let _ = Command::new("chown")
            .arg("postgres")
            .arg(dir.path())
            .stderr(Stdio::null())
            .status();
        run(
            {
                let mut c = as_postgres("initdb");
                c.args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
                    .arg(&data);
                c
            },
            "initdb",
        );
        let options = format!(
            "\n# aisha test cluster\nmax_connections = {max_connections}\nfsync = off\n\
             unix_socket_directories = '{}'\nlisten_addresses = '127.0.0.1'\n",
            dir.path().display()
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, options.as_bytes()))
            .expect("configure the cluster");
        let pg = ThrowawayPostgres {
            port: free_port(),
            data,
            _dir: dir,
        };
        pg.start_again();
        pg
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl(&self, args: &[&str]) -> Command {
        let mut c = as_postgres("pg_ctl");
        c.arg("-D").arg(&self.data).args(args);
        c
    }

    /// `pg_ctl stop -m immediate`: a crash as far as every client is concerned.
    pub fn stop_immediately(&self) {
        run(
            self.pg_ctl(&["stop", "-m", "immediate", "-w"]),
            "pg_ctl stop",
        );
    }

    /// Starts it (again) on its port; returns once it takes connections.
    pub fn start_again(&self) {
        let log = self.data.join("server.log");
        let mut start = self.pg_ctl(&["start", "-w", "-t", "60", "-o"]);
        start.arg(format!("-p {}", self.port)).arg("-l").arg(&log);
        run(start, "pg_ctl start");
        wait_for_port(self.port, "postgres");
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        let _ = self
            .pg_ctl(&["stop", "-m", "immediate", "-w"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
