//! A private PostgreSQL cluster for machines that have PostgreSQL installed but no server
//! running: `initdb` into a data directory, `pg_ctl start` on a free local port, `pg_ctl stop`
//! when asked. As root the binaries run as the `postgres` user, since initdb refuses root. A
//! server already running in the directory (another process's) is used as it is.
//! The binaries are found on `PATH` or under `/usr/lib/postgresql/<version>/bin`.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::Error;

/// A cluster in a data directory of ours, started (or found running) by this process.
#[derive(Debug)]
pub struct PrivateCluster {
    data_dir: PathBuf,
    bin_dir: PathBuf,
    port: u16,
    started: bool,
}

impl PrivateCluster {
    /// Initialises the cluster if the directory holds none, starts it unless it is already
    /// running, and returns a handle. Idempotent: a second call finds the running server.
    pub fn start(data_dir: &Path) -> Result<Self, Error> {
        let bin_dir = find_bin_dir()?;
        fs::create_dir_all(data_dir).map_err(|e| cluster_err("create data directory", e))?;
        let data_dir = data_dir
            .canonicalize()
            .map_err(|e| cluster_err("resolve data directory", e))?;
        let pgdata = data_dir.join("pgdata");
        let as_root = is_root();
        if as_root {
            chown_postgres(&data_dir)?;
        }
        if !pgdata.join("PG_VERSION").exists() {
            run(
                &bin_dir.join("initdb"),
                &[
                    "-D",
                    path_str(&pgdata)?,
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                as_root,
            )?;
        }
        if let Some(port) = running_port(&pgdata) {
            // A server claims the directory: it may still be starting (or shutting down), so
            // give it a while to answer before deciding it is gone.
            for _ in 0..30 {
                if pg_ready(&bin_dir, port) {
                    return Ok(Self {
                        data_dir,
                        bin_dir,
                        port,
                        started: false,
                    });
                }
                if !pgdata.join("postmaster.pid").exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
        let port = free_port()?;
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} -c max_connections=300 -c fsync=on",
            path_str(&data_dir)?
        );
        let log = data_dir.join("postgres.log");
        run(
            &bin_dir.join("pg_ctl"),
            &[
                "-D",
                path_str(&pgdata)?,
                "-o",
                &options,
                "-l",
                path_str(&log)?,
                "-w",
                "-t",
                "60",
                "start",
            ],
            as_root,
        )?;
        Ok(Self {
            data_dir,
            bin_dir,
            port,
            started: true,
        })
    }

    /// Whether [`start`](Self::start) started the server, rather than finding it running (then
    /// it is another process's, which stops it when it is done).
    pub fn started(&self) -> bool {
        self.started
    }

    /// The URL of the cluster's `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (fast shutdown: open sessions are ended, nothing committed is lost).
    pub fn stop(&self) -> Result<(), Error> {
        let pgdata = self.data_dir.join("pgdata");
        run(
            &self.bin_dir.join("pg_ctl"),
            &["-D", path_str(&pgdata)?, "-m", "fast", "-w", "stop"],
            is_root(),
        )
    }
}

fn cluster_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Cluster(format!("{what}: {e}"))
}

fn path_str(p: &Path) -> Result<&str, Error> {
    p.to_str()
        .ok_or_else(|| Error::Cluster(format!("path is not UTF-8: {}", p.display())))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn chown_postgres(dir: &Path) -> Result<(), Error> {
    let status = Command::new("chown")
        .args(["-R", "postgres:", path_str(dir)?])
        .status()
        .map_err(|e| cluster_err("chown data directory", e))?;
    if !status.success() {
        return Err(Error::Cluster(
            "chown of the data directory to the postgres user failed".into(),
        ));
    }
    Ok(())
}

/// Runs a PostgreSQL binary, as the `postgres` user when we are root.
fn run(bin: &Path, args: &[&str], as_root: bool) -> Result<(), Error> {
    let mut cmd = if as_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    let out = cmd
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| cluster_err(&format!("run {}", bin.display()), e))?;
    if !out.status.success() {
        return Err(Error::Cluster(format!(
            "{} failed: {}",
            bin.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn find_bin_dir() -> Result<PathBuf, Error> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        if out.status.success() {
            candidates.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        }
    }
    if let Ok(entries) = fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries.flatten().map(|e| e.path().join("bin")).collect();
        versions.sort();
        versions.reverse();
        candidates.extend(versions);
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    candidates
        .into_iter()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
        .ok_or_else(|| {
            Error::Cluster(
                "no PostgreSQL server binaries (initdb, pg_ctl) found; install PostgreSQL \
                 (README: Installing PostgreSQL and Redis) or set DATABASE_URL"
                    .into(),
            )
        })
}

/// The port recorded in `postmaster.pid` (line 4), if a server claims the directory.
fn running_port(pgdata: &Path) -> Option<u16> {
    let pid_file = fs::read_to_string(pgdata.join("postmaster.pid")).ok()?;
    pid_file.lines().nth(3)?.trim().parse().ok()
}

fn pg_ready(bin_dir: &Path, port: u16) -> bool {
    Command::new(bin_dir.join("pg_isready"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", "5"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn free_port() -> Result<u16, Error> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| cluster_err("find a free port", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| cluster_err("find a free port", e))?
        .port();
    Ok(port)
}
